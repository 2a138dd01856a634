"""Secrets are generated once, kept with mode 0600 and reused."""

from __future__ import annotations

import stat

from echoes_lab.hub.secrets import SERVICES, ensure_secrets


def test_generated_once_private_and_reused(tmp_path):
    first, created = ensure_secrets(tmp_path)
    assert created
    for name in ("jupyterhub_cookie_secret", "secrets.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert len(first.admin_password) >= 32  # JupyterHub's minimum for the admin password
    assert len(first.user_password) >= 8
    assert first.admin_password != first.user_password
    assert set(first.api_tokens) == set(SERVICES)

    again, created = ensure_secrets(tmp_path)
    assert not created
    assert again == first
