"""A French browser on a real hub (issue 34's acceptance): Debian's chromium driven by
Playwright with the locale fr-FR (its ``Accept-Language`` and ``navigator.language``) gets the
sign-in page, JupyterLab, the hub's home, token and not-found pages, a Voilà app and the
reports form in French, with
numbers and times written the French way; the language switch then turns every page German
through its cookie. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re

import pytest

from harness import REPO, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
USER = "amelie34"  # Unix users are shared between test hubs: a name of this module's own
APP = "examples/apps/climate-dashboard.ipynb"
#: CLDR's abbreviated French month names, as Intl writes them in a medium date
FRENCH_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.",
                 "oct.", "nov.", "déc.")


def test_a_french_browser_gets_the_workbench_in_french(hub_factory, browser):
    hub = hub_factory(data={"install_demo": True})
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(locale="fr-FR", viewport={"width": 1300, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # the sign-in page: JupyterHub's form in French, the switch offering every language
        page.goto(f"{hub.url}/hub/login")
        assert page.evaluate("document.documentElement.lang") == "fr"
        assert page.inner_text(".auth-form-header h1") == "Connexion"
        assert page.inner_text("label[for=username_input]") == "Nom d'utilisateur :"
        assert page.get_attribute("#login_submit", "value") == "Connexion"
        assert "Un atelier de recherche pour le patrimoine culturel" in page.inner_text("body")
        assert page.locator("#language-switch a").all_inner_texts() == [
            "en", "fr", "de", "it", "es"]
        page.screenshot(path=str(ARTIFACTS / "french-sign-in.png"), full_page=True)

        # signing in spawns the lab, which opens in French: the hub passed the language of
        # the request that started it, and the server wrote it as the user's lab setting
        sign_in(page, hub, USER)
        page.wait_for_url(f"**/user/{USER}/lab**", timeout=120_000)
        page.wait_for_selector(".jp-LabShell", timeout=120_000)
        hub.remember_processes()
        menus = page.locator(".lm-MenuBar-itemLabel")
        menus.filter(has_text="Fichier").first.wait_for(timeout=60_000)
        assert {"Fichier", "Édition", "Affichage", "Aide"} <= set(menus.all_inner_texts())
        setting = hub.server_get(
            USER, "/lab/api/settings/@jupyterlab/translation-extension:plugin").json()
        assert setting["settings"]["locale"] == "fr_FR"
        page.screenshot(path=str(ARTIFACTS / "french-lab.png"))

        # the hub's home page: JupyterHub's buttons and ours, the apps by their French names
        page.goto(f"{hub.url}/hub/home")
        page.wait_for_selector("#echoes-apps")
        assert page.evaluate("document.documentElement.lang") == "fr"
        assert page.inner_text("#stop") == "Arrêter mon serveur"
        assert page.inner_text("#echoes-apps h2") == "Applications"
        apps = page.locator("a.echoes-app")
        assert apps.all_inner_texts() == ["Tableau de bord climatique",
                                          "Explorateur de collections",
                                          "Lecteur d'histoire orale", "Sites en danger"]
        # the browser's own language: the app is told nothing, it reads Accept-Language
        href = apps.first.get_attribute("href")
        assert href == f"/user/{USER}/voila/render/{APP}"
        page.screenshot(path=str(ARTIFACTS / "french-home.png"), full_page=True)

        # the token page and a page that does not exist, JupyterHub's own, in French too
        page.goto(f"{hub.url}/hub/token")
        assert page.inner_text("#request-token-form button") == "Demander un nouveau jeton d'API"
        page.goto(f"{hub.url}/hub/nowhere")
        assert page.inner_text(".error h1") == "404 : Page introuvable"

        # the Voilà app: its title, labels, button and messages in French, numbers too
        page.goto(f"{hub.url}{href}")
        sensor = page.locator(".widget-dropdown:has(label:text-is('Capteur')) select")
        sensor.wait_for(timeout=120_000)
        dataset = page.locator(".widget-dropdown:has(label:text-is('Jeu de données')) select")
        if len(dataset.locator("option").all()) > 1:  # more than the demo here: the app waits
            dataset.select_option(value="demo-climate")
        page.wait_for_selector(".widget-html:has-text('capteurs. Choisissez-en un.')",
                               timeout=120_000)
        body = page.inner_text("body")
        assert "Tableau de bord climatique" in body and "Climate dashboard" not in body
        assert "import echoes_lab" not in body
        assert page.locator("button:has-text('Mettre à jour')").count() == 1
        assert page.locator("label:text-is('Jeu de données')").count() == 1
        page.screenshot(path=str(ARTIFACTS / "french-app.png"), full_page=True)

        # the reports form: the page, its script's words and its times in French
        page.goto(f"{hub.url}/services/reports/")
        page.wait_for_selector("#notebook option[value='']", state="attached")
        assert page.evaluate("document.documentElement.lang") == "fr"
        assert page.inner_text("h1") == "Rapports planifiés"
        page.wait_for_function(
            "document.querySelector('#notebook option').textContent === 'choisissez un notebook…'",
            timeout=120_000)
        page.fill("#cron", "30 7 * * 1-5")
        page.wait_for_function(  # the new expression's times (the default's came first)
            "(li => li.length === 3 && li.every(t => t.innerText.includes('07:30')))"
            "([...document.querySelectorAll('#cron-preview li')])", timeout=30_000)
        assert "Prochaines exécutions :" in page.inner_text("#cron-preview")
        times = page.locator("#cron-preview li").all_inner_texts()
        assert len(times) == 3
        for text in times:  # "8 déc. 2026, 07:30 UTC": CLDR's French medium date, 24 h
            assert text.endswith("07:30 UTC") and "AM" not in text, text
            assert any(month in text for month in FRENCH_MONTHS), text
            assert not re.search(r"\d{4}-\d\d-\d\d", text), text
        page.screenshot(path=str(ARTIFACTS / "french-reports.png"), full_page=True)

        # the switch: German, remembered in a cookie for the whole deployment, so the hub's
        # pages follow, and the apps are told through their link (the browser still says fr)
        page.click("#language-switch a[hreflang=de]")
        page.wait_for_function("document.documentElement.lang === 'de'")
        assert page.inner_text("h1") == "Geplante Berichte"
        page.goto(f"{hub.url}/hub/home")
        page.wait_for_selector("#echoes-apps")
        assert page.inner_text("#stop") == "Meinen Server stoppen"
        assert page.locator("a.echoes-app").first.get_attribute("href") == (
            f"/user/{USER}/voila/render/{APP}?lang=de")
        assert not errors, f"JavaScript errors: {errors[:3]}"
    finally:
        page.screenshot(path=str(ARTIFACTS / "french-last.png"))
        context.close()
