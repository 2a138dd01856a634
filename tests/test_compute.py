"""echoes_lab.compute without a hub (LocalCluster), and the gateway's settings mapping."""

from __future__ import annotations

import dask
import dask.array as da
import pytest

from echoes_lab import compute
from echoes_lab.errors import ClusterError, SettingsError
from echoes_lab.hub.settings import load_settings


@pytest.fixture
def no_gateway():
    with dask.config.set({"gateway.address": None}):
        yield


@pytest.mark.slow
def test_local_cluster_outside_the_hub(no_gateway):
    assert compute.gateway_address() is None
    client = compute.cluster(workers=2, worker_cores=1, worker_memory=0.5)
    try:
        info = client.scheduler_info()
        assert len(info["workers"]) == 2
        assert {w["memory_limit"] for w in info["workers"].values()} == {2**29}
        # sum of k for k < n is n (n - 1) / 2
        assert int(da.arange(10_000, chunks=1_000).sum().compute()) == 10_000 * 9_999 // 2
        assert "Dashboard" in client._repr_html_()
    finally:
        cluster = client.cluster
        client.close()
    assert cluster.status.name == "closed"  # the client made its cluster, and closed it


@pytest.mark.parametrize("kwargs, words", [
    ({"workers": -1}, "whole number"),
    ({"workers": 1.5}, "whole number"),
    ({"workers": 1, "worker_gpus": 1}, "unknown cluster option(s) worker_gpus"),
])
def test_bad_requests_are_clear(no_gateway, kwargs, words):
    with pytest.raises(ClusterError, match=words.replace("(", r"\(").replace(")", r"\)")):
        compute.cluster(**kwargs)


def test_gateway_address_from_the_environment_the_hub_sets(monkeypatch):
    # dask reads DASK_GATEWAY__ADDRESS as gateway.address when its config is refreshed
    monkeypatch.setenv("DASK_GATEWAY__ADDRESS", "http://127.0.0.1:1/services/dask-gateway")
    dask.config.refresh()
    try:
        assert compute.gateway_address() == "http://127.0.0.1:1/services/dask-gateway"
        with pytest.raises(ClusterError, match="cannot reach the Dask Gateway"):
            compute.cluster(workers=1)
    finally:
        monkeypatch.delenv("DASK_GATEWAY__ADDRESS")
        dask.config.refresh()


def _settings(tmp_path, repo_root, **gateway):
    import tomllib

    import tomli_w

    base = tomllib.loads((repo_root / "hub_config" / "local.toml").read_text())
    base["hub"]["state_dir"] = str(tmp_path / "state")
    base["gateway"].update(gateway)
    path = tmp_path / "settings.toml"
    path.write_text(tomli_w.dumps(base))
    return load_settings(path)


def test_hub_side_environment_and_service(tmp_path, repo_root):
    from echoes_lab.hub.services.gateway import ACCESS, FEATURE

    s = _settings(tmp_path, repo_root, port=18010, scheduler_port=18011)
    service, env = FEATURE.service(s, None), FEATURE.environment(s)
    assert service["url"] == "http://127.0.0.1:18010" and service["name"] == "dask-gateway"
    assert env["DASK_GATEWAY__ADDRESS"] == f"http://127.0.0.1:{s.hub.port}/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://127.0.0.1:18011"
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    assert FEATURE.user_scopes(s) == [ACCESS] == ["access:services!service=dask-gateway"]


def test_gateway_options_are_bounded_by_the_settings(tmp_path, repo_root):
    from echoes_lab.hub.services.gateway.config import WORKER_ENVIRONMENT, cluster_options

    s = _settings(tmp_path, repo_root, max_worker_cores=3, max_worker_memory=6.0)
    options = cluster_options(s)
    spec = {f["field"]: f["spec"] for f in options.get_specification()}
    assert spec["worker_cores"]["max"] == 3 and spec["worker_memory"]["max"] == 6.0
    with pytest.raises(ValueError, match="worker_cores must be <= 3"):
        options.parse_options({"worker_cores": 4})
    config = options.get_configuration(options.parse_options({"worker_memory": 1.5}), None)
    assert config == {"worker_cores": 1, "worker_memory": int(1.5 * 2**30),
                      "environment": {**WORKER_ENVIRONMENT, "ECHOES_GATEWAY_WORKERS": "0"}}
    # the workers asked for with the cluster reach its scheduler, at most max_workers
    config = options.get_configuration(options.parse_options({"workers": 50}), None)
    assert config["environment"]["ECHOES_GATEWAY_WORKERS"] == str(s.gateway.max_workers)


def test_gateway_config_from_the_same_settings_file(tmp_path, repo_root):
    from traitlets.config import Config

    from echoes_lab.hub.services.gateway.config import configure_gateway

    s = _settings(tmp_path, repo_root)
    (s.state_dir).mkdir(parents=True)
    from echoes_lab.hub.secrets import ensure_secrets

    ensure_secrets(s.state_dir)
    c = Config()
    configure_gateway(c, s.source)
    assert c.ClusterConfig.scheduler_cmd[-2:] == ["-m", "distributed.cli.dask_scheduler"]
    assert c.ClusterConfig.worker_cmd[-2:] == ["-m", "distributed.cli.dask_worker"]
    assert c.ClusterConfig.cluster_max_workers == s.gateway.max_workers
    assert c.ClusterConfig.idle_timeout == s.gateway.idle_timeout
    assert c.Proxy.prefix == "/services/dask-gateway"
    assert c.JupyterHubAuthenticator.jupyterhub_service_name == "dask-gateway"


def test_defaults_above_limits_name_the_key(tmp_path, repo_root):
    from echoes_lab.hub.services.gateway.config import check_limits

    s = _settings(tmp_path, repo_root, worker_cores=4, max_worker_cores=2)
    with pytest.raises(SettingsError,
                       match=r"gateway.worker_cores \(4\) is above gateway.max_worker_cores"):
        check_limits(s)
