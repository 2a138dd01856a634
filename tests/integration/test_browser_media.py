"""The oral history player app in a real browser (Playwright + Debian's chromium), real hub.

A user's lab holds an interview (a known text spoken by espeak-ng, made in their own kernel) and
its transcript; they open the app from the home page (Voilà, in their own server), click the
second line of the transcript and the player seeks there and highlights it; a search keeps the
matching line; they mark what the line is about and the annotation reaches the hub's commons on
``t=start,end`` of the recording. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import shutil

import pytest

from harness import REPO, open_app, open_page

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
APP = "examples/apps/oral-history-player.ipynb"
USER = "oralhist"
CUES = [(0.0, 2.5, "My grandmother taught me basket weaving."),
        (2.5, 5.0, "We gathered willow by the river."),
        (5.0, 7.5, "My grandfather played the fiddle.")]
PREPARE = f"""
import subprocess
from pathlib import Path
import pandas as pd
from echoes_lab import media
out = Path.home() / "examples" / "oral-history"
out.mkdir(parents=True, exist_ok=True)
subprocess.run(["espeak-ng", "-v", "en-us+klatt", "-s", "160", "-w", str(out / "interview.wav"),
                " ".join(t for *_, t in {CUES!r})], check=True)
cues = pd.DataFrame({CUES!r}, columns=["start", "end", "text"]).assign(
    tier="captions", speaker="Anna", language="en", source="interview.wav")
media.write_vtt(cues, out / "interview.vtt")
print("ready", media.probe(out / "interview.wav")["duration"])
"""


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng speaks the interview")
def test_player_seeks_to_a_clicked_line_and_annotates_into_the_commons(hub, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    hub.create_user(USER)
    hub.start_server(USER)
    ran = hub.execute(USER, PREPARE, timeout=120)
    assert "ready" in json.dumps(ran), ran
    errors: list[str] = []
    page = open_page(browser, viewport={"width": 1200, "height": 900}, errors=errors)
    try:
        # the home page lists the app (a link to a new tab); it runs in the user's own server
        open_app(page, hub, USER, "Oral history player", APP)
        page.wait_for_selector(".echoes-cue", timeout=180_000)
        assert page.locator(".echoes-cue").count() == 3
        assert "import echoes_lab" not in page.inner_text("body")
        page.wait_for_function(
            "document.querySelector('.echoes-player-media').readyState >= 1", timeout=60_000)

        page.locator(".echoes-cue").nth(1).click()
        page.wait_for_function(
            "Math.abs(document.querySelector('.echoes-player-media').currentTime - 2.5) < 0.05",
            timeout=30_000)
        page.wait_for_selector(".echoes-cue.echoes-current[data-index='1']", timeout=30_000)
        # the click reached the kernel: the range fields hold the line's times
        page.wait_for_function(
            """() => [...document.querySelectorAll('.widget-text input')]
                     .map(i => i.value).join(' ').includes('2.5')""", timeout=60_000)

        page.fill(".echoes-player-search", "fiddle")
        visible = page.locator(".echoes-cue:not([hidden])")
        assert visible.count() == 1 and "fiddle" in visible.inner_text()
        page.fill(".echoes-player-search", "")

        page.fill(".echoes-annotation-text input", "Willow gathering by the river")
        page.click(".echoes-annotate button, button.echoes-annotate")
        page.wait_for_selector(".echoes-annotation-status:has-text('recorded')", timeout=60_000)
        assert "t=2.5,5" in page.inner_text(".echoes-annotation-status")
        page.screenshot(path=str(ARTIFACTS / "media-player.png"), full_page=True)
        assert not errors, f"JavaScript errors: {errors[:3]}"
    finally:
        page.screenshot(path=str(ARTIFACTS / "media-player-last.png"))
        page.close()

    # the annotation is in the hub's commons service (the kernel's commons is the service)
    found = hub.execute(USER, """
from echoes_lab import commons
a = commons.annotations(tag="theme")
print(commons.where().startswith("http"), a.selector.tolist(), a.text.tolist())
""")
    out = json.dumps(found)
    assert "True" in out and "t=2.5,5" in out and "Willow gathering by the river" in out, out
