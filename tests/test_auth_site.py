"""One authenticator on every profile: the site's identity provider from ``[auth]
authenticator`` in the settings, composed with workshop seats (``WorkshopAuthenticator``).

The hub's configuration is built by ``echoes_lab.hub.config.configure`` from a settings file;
the authenticators are JupyterHub's own classes (its ``dummy`` authenticator stands for a
password-form identity provider such as LDAP or PAM), instantiated from that configuration as
the hub does.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from echoes_lab.errors import EchoesError

SITE_PASSWORD = "site-idp-password-7c1e"


def _settings(tmp_path, auth: str, workshops: bool = True) -> str:
    path = tmp_path / "settings.toml"
    path.write_text(f'''profile = "test"
[hub]
state_dir = "state"
[auth]
admins = ["admin"]
{auth}
[workshops]
enabled = {str(workshops).lower()}
''')
    return str(path)


def _configured(tmp_path, auth: str, workshops: bool = True) -> Config:
    from echoes_lab.hub.config import configure

    c = Config()
    configure(c, _settings(tmp_path, auth, workshops))
    return c


def _authenticator(c: Config):
    """The hub's authenticator, made from ``c`` as JupyterHub makes it."""
    from traitlets import import_item

    cls = c.JupyterHub.authenticator_class
    cls = import_item(cls) if isinstance(cls, str) else cls
    return cls(config=c)


def _seat_workshop(state):
    from echoes_lab.hub.services.workshops import registry

    w = registry.Workshop(
        name="siteauth", trainers=["siteauth-tina"],
        ends=(registry.now() + timedelta(hours=2)).isoformat(),
        seats={"siteauth-01": registry.hash_password("card-pw-1")})
    registry.save(state, w)


def _login(auth, name, password):
    """JupyterHub's sign-in path: authenticate, then the allow checks."""
    data = {"username": name, "password": password}
    return asyncio.run(auth.get_authenticated_user(None, data))


def test_local_profile_takes_another_authenticator_from_the_settings(tmp_path):
    from jupyterhub.auth import DummyAuthenticator

    c = _configured(tmp_path, f'authenticator = "dummy"\noptions = {{password = '
                              f'"{SITE_PASSWORD}"}}', workshops=False)
    assert c.JupyterHub.authenticator_class is DummyAuthenticator
    auth = _authenticator(c)
    assert _login(auth, "siteauth-oscar", SITE_PASSWORD)["name"] == "siteauth-oscar"
    assert _login(auth, "siteauth-oscar", "wrong") is None


def test_seats_and_the_site_identity_provider_in_one_authenticator(tmp_path):
    from echoes_lab.hub.services.workshops.auth import WorkshopAuthenticator

    c = _configured(tmp_path, f'authenticator = "dummy"\noptions = {{password = '
                              f'"{SITE_PASSWORD}"}}')
    _seat_workshop(tmp_path / "state")
    auth = _authenticator(c)
    assert isinstance(auth, WorkshopAuthenticator) and auth.site_authenticator == "dummy"
    # seats: their card's password only, never the site's
    assert _login(auth, "siteauth-01", "card-pw-1")["name"] == "siteauth-01"
    assert _login(auth, "siteauth-01", SITE_PASSWORD) is None
    # everyone else: the site's identity provider decides
    assert _login(auth, "siteauth-oscar", SITE_PASSWORD)["name"] == "siteauth-oscar"
    assert _login(auth, "siteauth-oscar", "card-pw-1") is None
    # the hub's shared user password no longer opens anything when the site has its own
    user_password = c.SharedPasswordAuthenticator.user_password
    assert _login(auth, "siteauth-oscar", user_password) is None
    # a trainer signs in through the site and gets the workshop's role
    trainer = _login(auth, "siteauth-tina", SITE_PASSWORD)
    assert "workshop-siteauth-trainer" in [r["name"] for r in trainer["roles"]]
    # re-checks: the site's verdict, plus the trainer's roles
    refreshed = asyncio.run(auth.refresh_user(SimpleNamespace(name="siteauth-tina")))
    assert "workshop-siteauth-trainer" in [r["name"] for r in refreshed["roles"]]
    assert asyncio.run(auth.refresh_user(SimpleNamespace(name="siteauth-oscar"))) is True


def test_without_a_site_authenticator_the_shared_password_still_works(tmp_path):
    c = _configured(tmp_path, "")
    _seat_workshop(tmp_path / "state")
    auth = _authenticator(c)
    assert auth.site is None
    user_password = c.SharedPasswordAuthenticator.user_password
    assert _login(auth, "siteauth-oscar", user_password)["name"] == "siteauth-oscar"
    assert _login(auth, "siteauth-01", user_password) is None  # never a seat's
    assert _login(auth, "siteauth-01", "card-pw-1")["name"] == "siteauth-01"


def test_a_misspelt_authenticator_names_the_settings_key(tmp_path):
    with pytest.raises(EchoesError, match=r"\[auth\] authenticator = 'ldapauthentiactor'"):
        _configured(tmp_path, 'authenticator = "ldapauthentiactor"')
