"""One origin per trust level (issue 26): ``[hub] subdomain_host`` puts each user's server on
its own host, so a page one user's server serves cannot read or act on another user's lab.

A real hub with ``subdomain_host = "http://echoes.localhost:PORT"`` (Chromium resolves
``*.localhost`` to the loopback address, RFC 6761; the mapping is also given to it
explicitly; Python's resolver does not, so requests send the ``Host`` header to 127.0.0.1),
configurable-http-proxy routing by host, alice and carol under their own system accounts.
carol, who runs her own server and so serves what she likes (here a page through
jupyter-server's ``extra_static_paths`` in her own ``~/.jupyter``), shares her lab with
alice; alice, signed in with her lab open, opens carol's page. The page's script tries what a
script on the shared origin can do (tests/reliability/test_sharing_attacks.py, reproduction
3): read alice's files, write one, start a kernel, frame her lab, read the hub's API, see her
cookies. On its own origin the same script reads and writes alice's files (the control); from
carol's host every attempt fails, and nothing reached alice's server.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap

import pytest
import requests
import tomli_w

from harness import CHROMIUM, CHROMIUM_FLAGS, lean, wait_for

DOMAIN = "echoes.localhost"
ALICE, CAROL = "sdalice", "sdcarol"
LEAN = lean("reports")


# -- the setting ------------------------------------------------------------------------------

def _settings(tmp_path, line: str) -> str:
    path = tmp_path / "settings.toml"
    path.write_text(f'profile = "test"\n[hub]\nstate_dir = "state"\n{line}\n')
    return str(path)


@pytest.mark.parametrize("value", ["echoes.example.org", "https://echoes.example.org/hub",
                                   "https://Echoes.example.org", "ftp://echoes.example.org",
                                   "https://echoes.example.org:80:80"])
def test_subdomain_host_must_be_an_origin(tmp_path, value):
    from echoes_lab.errors import SettingsError
    from echoes_lab.hub.settings import load_settings

    with pytest.raises(SettingsError, match=r"key 'hub.subdomain_host' must be an origin"):
        load_settings(_settings(tmp_path, f"subdomain_host = {json.dumps(value)}"))


def test_users_on_subdomains_services_on_the_hubs_origin(tmp_path):
    """The setting becomes JupyterHub's ``subdomain_host``; users get JupyterHub's IDNA
    subdomains, services (ours, trusted like the hub) stay at the hub's own host; without the
    setting nothing changes."""
    from traitlets.config import Config

    from echoes_lab.hub.config import configure

    c = Config()
    configure(c, _settings(tmp_path, 'subdomain_host = "https://echoes.example.org"'))
    assert c.JupyterHub.subdomain_host == "https://echoes.example.org"
    hook = c.JupyterHub.subdomain_hook
    assert hook("alice", "echoes.example.org", "user") == "alice.echoes.example.org"
    assert hook("Jean Dupont", "echoes.example.org", "user").endswith(".echoes.example.org")
    assert hook("reports", "echoes.example.org", "service") == "echoes.example.org"
    # the labs' knowledge and commons clients go to the services' host (the proxy routes by
    # host), and the commons' IRIs start there
    environment = c.Spawner.environment.get_value({})
    assert environment["ECHOES_KNOWLEDGE_URL"] == "https://echoes.example.org/services/knowledge/"
    assert environment["ECHOES_COMMONS_URL"] == "https://echoes.example.org/services/commons/"
    from echoes_lab.hub.services.commons.feature import public_base
    from echoes_lab.hub.settings import load_settings

    settings = load_settings(tmp_path / "settings.toml")
    assert public_base(settings) == "https://echoes.example.org/services/commons/"
    plain = Config()
    (tmp_path / "plain").mkdir()
    configure(plain, _settings(tmp_path / "plain", ""))
    assert "subdomain_host" not in plain.JupyterHub


# -- a real hub with subdomains ---------------------------------------------------------------

@pytest.fixture(scope="module")
def hub(module_hubs):
    hub = module_hubs(start=False, **LEAN)
    hub.port = hub.settings["hub"]["port"]
    hub.public = f"http://{DOMAIN}:{hub.port}"
    hub.settings["hub"]["subdomain_host"] = hub.public
    hub.settings_file.write_text(tomli_w.dumps(hub.settings))
    return hub.start(timeout=120)


def lab_url(hub, user: str) -> str:
    return f"http://{user}.{DOMAIN}:{hub.port}/user/{user}"


def at_host(hub, user: str, method: str, path: str, host: str | None = None, **kw):
    """A request to ``user``'s lab through the proxy, as addressed to ``host`` (default: the
    user's own subdomain) with the hub's token."""
    headers = {"Host": f"{host or user}.{DOMAIN}:{hub.port}",
               "Authorization": f"token {hub.token}"}
    return requests.request(method, f"{hub.url}/user/{user}{path}", headers=headers,
                            timeout=60, allow_redirects=False, **kw)


@pytest.mark.integration
def test_each_lab_answers_at_its_own_host_only(hub):
    hub.create_user(ALICE)
    model = hub.start_server(ALICE)
    assert model["servers"][""]["url"] == lab_url(hub, ALICE) + "/"
    r = at_host(hub, ALICE, "GET", "/api/status")
    assert r.status_code == 200 and "kernels" in r.json(), r.text[:300]
    # the same path at the hub's host or another user's host is the hub's (a redirect to the
    # lab's own host), never the lab's answer
    for host in (None, CAROL):
        r = requests.get(f"{hub.url}/user/{ALICE}/api/status", timeout=60, allow_redirects=False,
                         headers={"Authorization": f"token {hub.token}",
                                  **({"Host": f"{host}.{DOMAIN}:{hub.port}"} if host else {})})
        assert r.status_code in (302, 303, 307), (host, r.status_code, r.text[:200])


#: run in a page: what a script of that page's origin can do to alice's lab and the hub
ATTACK = """async ([alice, hub]) => {
  const out = {origin: location.origin, cookies: document.cookie};
  const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "";
  async function attempt(name, url, init) {
    try {
      const r = await fetch(url, {credentials: "include", ...init});
      out[name] = r.status + " " + (await r.text()).slice(0, 2000);
    } catch (e) { out[name] = "blocked " + e.name; }
  }
  const me = location.hostname.split(".")[0];
  await attempt("read", alice + "/api/contents", {headers: {"X-XSRFToken": xsrf}});
  await attempt("write", alice + "/api/contents/written-from-" + me + ".txt", {
    method: "PUT", headers: {"X-XSRFToken": xsrf, "Content-Type": "application/json"},
    body: JSON.stringify({type: "file", format: "text", content: "from " + me})});
  await attempt("kernel", alice + "/api/kernels", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: '{"name": "echoes"}'});
  await attempt("hub", hub + "/hub/api/user", {});
  out.frame = await new Promise(resolve => {
    const f = document.createElement("iframe");
    f.onload = () => {
      try { resolve("read " + f.contentWindow.document.body.innerText.slice(0, 200)); }
      catch (e) { resolve("blocked " + e.name); }
    };
    setTimeout(() => resolve("blocked: no load"), 15000);
    f.src = alice + "/api/contents";
    document.body.appendChild(f);
  });
  return out;
}"""


def _evil_lab(hub) -> None:
    """carol's server, restarted with a folder of her own served at /user/carol/static/."""
    hub.create_user(CAROL)
    hub.start_server(CAROL)  # makes her account and home
    home = hub.state / "homes" / CAROL
    uid, gid = os.stat(home).st_uid, os.stat(home).st_gid
    for folder in (home / ".jupyter", home / "www"):
        folder.mkdir(exist_ok=True)
        os.chown(folder, uid, gid)
    (home / ".jupyter" / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"extra_static_paths": [str(home / "www")]}}))
    (home / "www" / "evil.html").write_text(textwrap.dedent(f"""\
        <!doctype html><html><body><p>carol's page</p><script>
        window.results = ({ATTACK})(["{lab_url(hub, ALICE)}", "{hub.public}"]);
        </script></body></html>"""))
    for path in (home / ".jupyter" / "jupyter_server_config.json", home / "www" / "evil.html"):
        os.chown(path, uid, gid)
    assert hub.api("DELETE", f"/users/{CAROL}/server").status_code in (202, 204)
    wait_for(lambda: not hub.api("GET", f"/users/{CAROL}").json()["servers"], 60,
             "carol's server to stop")
    hub.start_server(CAROL)
    r = at_host(hub, CAROL, "GET", "/static/evil.html")
    assert r.status_code == 200 and "carol's page" in r.text, (r.status_code, r.text[:300])


def _authorize(page) -> None:
    """JupyterHub asks once before a user's browser uses a server shared with them."""
    if "oauth2/authorize" in page.url:
        page.click("button[type=submit]")
        page.wait_for_load_state()


@pytest.mark.integration
@pytest.mark.browser
def test_a_page_of_one_users_server_cannot_act_on_anothers_lab(hub):
    from playwright.sync_api import sync_playwright

    hub.create_user(ALICE)
    hub.start_server(ALICE)
    _evil_lab(hub)
    carol_token = hub.api("POST", f"/users/{CAROL}/tokens", json={}).json()["token"]
    r = hub.api("POST", f"/shares/{CAROL}/", token=carol_token,
                json={"user": ALICE, "scopes": [f"access:servers!server={CAROL}/"]})
    assert r.status_code in (200, 201), r.text
    r = at_host(hub, ALICE, "PUT", "/api/contents/alice-secret.txt",
                json={"type": "file", "format": "text", "content": "alice's secret"})
    assert r.status_code in (200, 201), r.text
    rules = f"MAP {DOMAIN} 127.0.0.1, MAP *.{DOMAIN} 127.0.0.1"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=[*CHROMIUM_FLAGS, f"--host-resolver-rules={rules}"])
        try:
            page = browser.new_context().new_page()
            page.goto(f"{hub.public}/hub/login?next=%2Fhub%2Fhome")
            page.fill("#username_input", ALICE)
            page.fill("#password_input", hub.secrets["user_password"])
            page.click("#login_submit")
            page.wait_for_url(f"{hub.public}/hub/home", timeout=60_000)
            # the home page's "My Server" leads to her lab at her own host; the lab works there
            page.click("#start")
            page.wait_for_selector(".jp-LabShell", timeout=120_000)
            assert page.url.startswith(lab_url(hub, ALICE) + "/lab")
            # the control: the same script, run at her lab's own origin, reads and writes
            own = page.evaluate(ATTACK, [lab_url(hub, ALICE), hub.public])
            assert own["read"].startswith("200") and "alice-secret.txt" in own["read"], own
            assert own["write"].startswith("201"), own

            visit = page.context.new_page()
            visit.goto(lab_url(hub, CAROL) + "/static/evil.html")
            _authorize(visit)
            assert "carol's page" in visit.content()
            got = visit.evaluate("window.results")
            assert got["origin"] == f"http://{CAROL}.{DOMAIN}:{hub.port}", got
            for attempt in ("read", "write", "hub"):  # CORS: no reply, nor a preflight passed
                assert got[attempt].startswith("blocked"), (attempt, got)
            assert got["frame"].startswith("blocked"), got
            assert "alice-secret" not in json.dumps(got)
            assert "jupyterhub" not in got["cookies"], got  # nothing of alice's or the hub's

            # the hub's pages and services stay at the hub's host, signed in through OAuth
            page.goto(f"{hub.public}/services/projects/")
            page.wait_for_selector("h1:has-text('Team projects')", timeout=60_000)
            # a git-pull link reaches alice's lab at her host, and its page links the hub's
            page.goto(f"{hub.public}/hub/user-redirect/git-pull?repo="
                      "https%3A%2F%2Fexample.org%2Fr.git")
            page.wait_for_selector("text=https://example.org/r.git", timeout=60_000)
            assert page.url.startswith(lab_url(hub, ALICE) + "/echoes/git-pull"), page.url
            assert page.locator(f"a[href='{hub.public}/hub/home']").count() >= 1
        finally:
            browser.close()
    # nothing reached her server from carol's page
    home = hub.state / "homes" / ALICE
    assert (home / f"written-from-{ALICE}.txt").exists()
    assert not (home / f"written-from-{CAROL}.txt").exists()
    kernels = at_host(hub, ALICE, "GET", "/api/kernels").json()
    assert kernels == [], kernels


@pytest.mark.integration
def test_the_reports_service_reaches_an_owners_server_at_its_host(hub):
    """The reports service talks to an owner's named server through the proxy; with hosts
    per user it sends the server's own ``Host`` (the proxy routes by host): it starts the
    server, reads a file and runs code in a kernel there, as for a scheduled run."""
    from echoes_lab.hub.services.reports.servers import OwnerServers

    hub.create_user(ALICE)
    hub.start_server(ALICE)
    r = at_host(hub, ALICE, "PUT", "/api/contents/for-reports.txt",
                json={"type": "file", "format": "text", "content": "read by reports"})
    assert r.status_code in (200, 201), r.text
    name = hub.settings["reports"].get("server", "reports")

    async def use() -> tuple[dict, list[str]]:
        servers = OwnerServers(f"{hub.url}/hub/api", hub.token, hub.url, name=name, linger=0)
        lines: list[str] = []
        async with servers.lease(ALICE):
            assert servers.hosts[ALICE] == f"{ALICE}.{DOMAIN}:{hub.port}"
            model = await servers.contents(ALICE, "for-reports.txt", content=1)
            await servers.execute(ALICE, "print(6 * 7)", lines.append, timeout=120)
        await servers.stop(ALICE)
        return model, lines

    model, lines = asyncio.run(use())
    assert model["content"] == "read by reports"
    assert "42" in lines, lines
