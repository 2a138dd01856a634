"""Deployment settings: every key is checked and errors name the file and the key."""

from __future__ import annotations

import pytest

from echoes_lab.errors import SettingsError
from echoes_lab.hub.settings import load_settings


def write(tmp_path, text):
    path = tmp_path / "profile.toml"
    path.write_text(text)
    return path


def test_local_profile_is_valid(repo_root):
    s = load_settings(repo_root / "hub_config" / "local.toml")
    assert s.profile == "local"
    assert s.hub.port == 8000
    assert s.state_dir == (repo_root / ".state").resolve()
    assert s.shared_dir == s.state_dir / "shared"
    assert s.culler.enabled and s.culler.timeout > 0


@pytest.mark.parametrize("text, words", [
    ('profile = "local"\n[hub]\nprot = 8000\n', ["unknown key 'hub.prot'"]),
    ('profile = "local"\n[hub]\nport = "8000"\n', ["'hub.port'", "whole number", "'8000'"]),
    ('profile = "local"\n[culler]\nenabled = "yes"\n', ["'culler.enabled'", "true or false"]),
    ('profile = "local"\n[auth]\nadmins = "root"\n', ["'auth.admins'", "list"]),
    ('[hub]\nport = 8000\n', ["missing key 'profile'"]),
    ('profile = "local"\n[hub\n', ["not valid TOML", "line 2"]),
])
def test_bad_settings_name_the_file_and_the_key(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(str(path))
    assert "\n" not in message
    for word in words:
        assert word in message


def test_missing_file(tmp_path):
    with pytest.raises(SettingsError, match="settings file not found"):
        load_settings(tmp_path / "nope.toml")


def test_relative_paths_are_relative_to_the_settings_file(tmp_path):
    s = load_settings(write(tmp_path, 'profile = "x"\n[hub]\nstate_dir = "st"\n'
                                      '[data]\nshared_dir = "/srv/data"\n'))
    assert s.state_dir == tmp_path / "st"
    assert str(s.shared_dir) == "/srv/data"
