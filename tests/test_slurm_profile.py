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
from echoes_lab.hub.slurm import check, lab_links

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
    ("hub", "ip", "127.0.0.1", "[hub] ip is 127.0.0.1, which compute nodes cannot reach"),
    ("spawner", "mem_limit", "16G", "[spawner] mem_limit = '16G' is above [slurm] max_memory"),
    ("spawner", "mem_limit", "2GB", "spawner.mem_limit"),
    ("workshops", "mem_limit", "lots", "workshops.mem_limit"),
    ("projects", "folder", "/elsewhere/projects", "[projects] folder (/elsewhere/projects) is "
                                                  "not in [slurm] shared_fs"),
])
def test_what_the_profile_cannot_run_is_refused_by_key(tmp_path, section, key, value, said):
    raw = tomllib.loads(PROFILE.read_text())
    raw[section][key] = value
    path = tmp_path / "slurm.toml"
    path.write_text(tomli_w.dumps(raw))
    with pytest.raises(SettingsError) as err:
        check(load_settings(path))
    assert said in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(("ip", "origin"), [("10.0.0.1", "http://10.0.0.1:8000"),
                                            ("0.0.0.0", "http://10.0.0.1:8000"),
                                            ("10.1.2.3", "http://10.1.2.3:8000")])
def test_labs_links_to_the_services_lead_through_the_proxy_on_the_cluster_network(
        tmp_path, ip, origin):
    """The features make the links from loopback addresses (the projects service's own port);
    a lab on a compute node gets them at the proxy's address the nodes reach, same paths."""
    raw = tomllib.loads(PROFILE.read_text())
    raw["hub"]["ip"] = ip
    path = tmp_path / "slurm.toml"
    path.write_text(tomli_w.dumps(raw))
    settings = load_settings(path)
    env = {"ECHOES_COMMONS_URL": "http://127.0.0.1:8000/services/commons/annotations/",
           "ECHOES_KNOWLEDGE_URL": "http://127.0.0.1:8000/services/knowledge/",
           "ECHOES_METRICS_URL": "http://127.0.0.1:8000/services/metrics/",
           "ECHOES_PROJECTS_URL": "http://127.0.0.1:40123/services/projects/",
           "ECHOES_DATA": "/shared/echoes/state/shared"}
    assert lab_links(env, settings) == {
        "ECHOES_COMMONS_URL": f"{origin}/services/commons/annotations/",
        "ECHOES_KNOWLEDGE_URL": f"{origin}/services/knowledge/",
        "ECHOES_METRICS_URL": f"{origin}/services/metrics/",
        "ECHOES_PROJECTS_URL": f"{origin}/services/projects/"}


def test_the_hubs_configuration_gives_labs_the_links_on_the_cluster_network(tmp_path):
    """configure() on the profile: the servers' environment holds the rewritten links (a
    cached read of traitlets' lazy ``environment`` once kept the projects' loopback link)."""
    from traitlets.config import Config

    from echoes_lab.hub.config import configure

    raw = tomllib.loads(PROFILE.read_text())
    raw["hub"]["state_dir"] = str(tmp_path / "state")
    raw["slurm"]["shared_fs"] = str(tmp_path)
    raw["data"].update(install_demo=False, fetch=[])
    path = tmp_path / "slurm.toml"
    path.write_text(tomli_w.dumps(raw))
    c = Config()
    configure(c, path)
    env = c.Spawner.environment.get_value({})
    assert c.JupyterHub.ip == c.JupyterHub.hub_ip == "10.0.0.1"
    links = {k: v for k, v in env.items() if k.startswith("ECHOES_") and k.endswith("_URL")}
    assert set(links) == {"ECHOES_COMMONS_URL", "ECHOES_KNOWLEDGE_URL", "ECHOES_METRICS_URL",
                          "ECHOES_PROJECTS_URL"}
    assert all(v.startswith("http://10.0.0.1:8000/services/") for v in links.values()), links
