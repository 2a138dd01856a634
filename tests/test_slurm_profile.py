"""The ``slurm`` profile's settings file (``hub_config/slurm.toml``) validates, and the profile
refuses settings it cannot run with a message naming the key to change. The hub on a real
Slurm cluster is ``tests/integration/test_slurm_hub.py``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from echoes_lab.errors import SettingsError
from echoes_lab.hub.settings import load_settings
from echoes_lab.hub.slurm import check

PROFILE = Path(__file__).resolve().parents[1] / "hub_config" / "slurm.toml"


def test_the_profile_file_is_valid():
    settings = load_settings(PROFILE)
    check(settings)
    assert settings.profile == "slurm"
    assert settings.slurm.partitions == ["interactive", "batch"]
    assert not settings.gateway.enabled and settings.workshops.enabled
    assert settings.state_dir.is_relative_to(settings.path(settings.slurm.shared_fs))


@pytest.mark.parametrize(("section", "key", "value", "said"), [
    ("slurm", "hub_ip", "127.0.0.1", "[slurm] hub_ip is 127.0.0.1, which compute nodes cannot"),
    ("slurm", "hub_ip", "login01", "[slurm] hub_ip must be an IP address"),
    ("slurm", "shared_fs", "/elsewhere", "hub.state_dir (/shared/echoes/state) is not in [slurm]"),
    ("slurm", "shared_fs", "", "[slurm] shared_fs is empty"),
    ("slurm", "cores", 8, "[slurm] cores = 8 is above max_cores = 4"),
    ("slurm", "partitions", [], "slurm.partitions"),
    ("slurm", "dask_walltime", "1h", "slurm.dask_walltime"),
    ("gateway", "enabled", True, "[gateway] enabled = false"),
])
def test_what_the_profile_cannot_run_is_refused_by_key(tmp_path, section, key, value, said):
    raw = tomllib.loads(PROFILE.read_text())
    raw[section][key] = value
    path = tmp_path / "slurm.toml"
    path.write_text(tomli_w.dumps(raw))
    with pytest.raises(SettingsError) as err:
        check(load_settings(path))
    assert said in str(err.value) and str(path) in str(err.value)
