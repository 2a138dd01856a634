"""A real hub whose settings name the site's identity provider (``[auth] authenticator``) with
workshops on: seats sign in with their cards, everyone else through the identity provider
(JupyterHub's ``dummy`` authenticator standing for a password-form one such as LDAP), through
the hub's own sign-in page."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from harness import login

pytestmark = pytest.mark.integration

SITE_PASSWORD = "idp-password-3f9a"


@pytest.fixture(scope="module")
def hub(module_hubs):
    from echoes_lab.hub.services.workshops import registry

    hub = module_hubs(auth={"authenticator": "dummy", "options": {"password": SITE_PASSWORD}})
    # a workshop as `echoes-lab workshop create` records it (the hub re-reads the registry)
    registry.save(hub.state, registry.Workshop(
        name="idpws", trainers=["idpws-tina"],
        ends=(registry.now() + timedelta(hours=2)).isoformat(),
        seats={"idpws-01": registry.hash_password("card-3141")}))
    return hub


def _signed_in_as(session: requests.Session, hub) -> str:
    r = session.get(f"{hub.url}/hub/home", timeout=30)
    assert r.status_code == 200 and r.url.endswith("/hub/home"), r.url
    return r.text


def test_the_identity_provider_signs_in_everyone_but_seats(hub):
    page = _signed_in_as(login(hub, "idpws-oscar", SITE_PASSWORD, "/hub/home"), hub)
    assert "idpws-oscar" in page
    with pytest.raises(requests.HTTPError, match="403"):
        login(hub, "idpws-oscar", "not-the-idp-password", "/hub/home")
    # the hub's shared user password opens nothing once the site has its own sign-in
    from echoes_lab.hub.secrets import read_secrets

    with pytest.raises(requests.HTTPError, match="403"):
        login(hub, "idpws-oscar", read_secrets(hub.state).user_password, "/hub/home")


def test_a_seat_signs_in_with_its_card_only(hub):
    page = _signed_in_as(login(hub, "idpws-01", "card-3141", "/hub/home"), hub)
    assert "idpws-01" in page
    with pytest.raises(requests.HTTPError, match="403"):
        login(hub, "idpws-01", SITE_PASSWORD, "/hub/home")


def test_a_trainer_signs_in_through_the_site_with_the_workshops_role(hub):
    login(hub, "idpws-tina", SITE_PASSWORD, "/hub/home")
    roles = hub.api("GET", "/users/idpws-tina").json()["roles"]
    assert "workshop-idpws-trainer" in roles
