"""Our services on a real hub: pages in the hub's look, a clean SIGTERM, one instance only."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import requests

from harness import gone, wait_gone

pytestmark = pytest.mark.integration

STYLESHEET = '<link rel="stylesheet" href="/hub/static/css/style.min.css">'


def sign_in(hub, user: str, password: str) -> requests.Session:
    """The hub's login form, as a browser; no server is started (``next`` is the home page)."""
    session = requests.Session()
    session.get(f"{hub.url}/hub/login", timeout=30)
    r = session.post(f"{hub.url}/hub/login?next=%2Fhub%2Fhome", allow_redirects=False,
                     data={"username": user, "password": password,
                           "_xsrf": session.cookies.get("_xsrf")}, timeout=60)
    assert r.status_code == 302, r.text[:300]
    return session


@pytest.mark.parametrize("name", ["workshops", "reports"])
def test_service_pages_look_like_the_hub(hub, name):
    session = sign_in(hub, "admin", hub.secrets["admin_password"])
    page = session.get(f"{hub.url}/services/{name}/", timeout=60)  # through hub OAuth
    assert page.status_code == 200, page.text[:500]
    assert page.url.rstrip("/").endswith(f"/services/{name}")
    assert STYLESHEET in page.text
    assert '<span class="me-1" id="user-name">admin</span>' in page.text
    assert 'href="/hub/home"' in page.text
    # the stylesheet the page links is the hub's own
    css = session.get(f"{hub.url}/hub/static/css/style.min.css", timeout=30)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")


def test_second_instance_refuses_and_sigterm_stops_in_bounded_time(hub):
    # the workshops service's process (with the others sharing it: echoes_lab.hub.services.host)
    running = hub.service_processes()["workshops"][0]
    # started by hand exactly as the hub started it: refused, the first one holds the lock
    second = subprocess.run(running.cmdline(), env=running.environ(), capture_output=True,
                            text=True, timeout=60)
    assert second.returncode != 0
    assert f"another workshops service (pid {running.pid}) holds" in second.stderr
    assert not gone(running)

    start = time.monotonic()
    running.send_signal(signal.SIGTERM)
    # the hub reaps its child only at its next poll: a zombie has ended (harness.gone)
    wait_gone([running], 10, "the workshops service to exit after SIGTERM")
    assert time.monotonic() - start < 10
    assert "workshops service stopped" in hub.log_path.read_text(errors="replace")
