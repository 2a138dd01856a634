"""The kubernetes profile's hub configuration, built as the chart builds it, with KubeSpawner.

No cluster here: the test does what the Zero-to-JupyterHub chart's ``jupyterhub_config.py``
does with the profile's values (``singleuser.storage`` -> ``KubeSpawner.volumes`` and
``volume_mounts``, ``singleuser.extraEnv`` -> ``environment``, ``hub.services`` ->
``JupyterHub.services``, then every ``hub.extraConfig`` block in key order, exec'd with ``c``),
and asks KubeSpawner (the class the hub runs) for each user's pod manifest. Nothing is mocked
but the hub's users, which are plain objects with the attributes KubeSpawner reads.
"""

from __future__ import annotations

import asyncio
import copy
from types import SimpleNamespace

import pytest
import yaml


@pytest.fixture(scope="module")
def values(repo_root) -> dict:
    return yaml.safe_load((repo_root / "hub_config" / "kubernetes.yaml").read_text())


def _group(name: str, project: bool = True):
    return SimpleNamespace(name=name, properties={"echoes_project": True} if project else {})


@pytest.fixture
def hub_config(values, tmp_path, monkeypatch):
    """``c`` as the hub pod has it after the chart's config and the profile's extraConfig."""
    import tomli_w
    from traitlets.config import Config

    hub, single = values["jupyterhub"]["hub"], values["jupyterhub"]["singleuser"]
    data = copy.deepcopy(hub["extraFiles"]["echoes-settings"]["data"])
    data["hub"]["state_dir"] = str(tmp_path / "state")  # the hub's PVC, here a folder
    settings = tmp_path / "settings.toml"
    settings.write_text(tomli_w.dumps(data))
    monkeypatch.setenv("ECHOES_SETTINGS", str(settings))
    monkeypatch.setenv("HELM_RELEASE_NAME", "echoes")
    monkeypatch.setenv("POD_NAMESPACE", "echoes")
    monkeypatch.setenv("ECHOES_COMMONS_PGPASSWORD", "from-the-secret")
    # KubeSpawner loads a client configuration when made; building manifests never calls the
    # API, so it names a port on loopback that nothing is asked of
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "users": [{"name": "test", "user": {}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    c = Config()
    # the chart's jupyterhub_config.py, storage type "dynamic": a claim per user for the home
    storage = single["storage"]
    assert storage["type"] == "dynamic"
    c.KubeSpawner.volumes = [{"name": "volume-{user_server}",
                              "persistentVolumeClaim": {"claimName": "{pvc_name}"}},
                             *copy.deepcopy(storage["extraVolumes"])]
    c.KubeSpawner.volume_mounts = [{"name": "volume-{user_server}",
                                    "mountPath": storage["homeMountPath"]},
                                   *copy.deepcopy(storage["extraVolumeMounts"])]
    c.KubeSpawner.environment = dict(single["extraEnv"])
    c.KubeSpawner.image = f"{single['image']['name']}:{single['image']['tag']}"
    # the chart's default singleuser.cmd (values.yaml), unless the profile sets one
    c.Spawner.cmd = single.get("cmd", "jupyterhub-singleuser")
    for key, trait in hub["config"]["KubeSpawner"].items():
        setattr(c.KubeSpawner, key, trait)
    c.JupyterHub.services = [{"name": n, **copy.deepcopy(s)} for n, s in hub["services"].items()]
    for key, code in sorted(hub["extraConfig"].items()):
        exec(compile(code, f"hub.extraConfig.{key}", "exec"), {"c": c})
    return c


def _pod(c, name: str, groups=()):
    """KubeSpawner's pod manifest for user ``name`` (hub pre_spawn_hook applied first), as
    the JSON sent to the Kubernetes API."""
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    user = SimpleNamespace(name=name, id=hash(name) % 1000, url=f"/user/{name}/",
                           groups=list(groups), escaped_name=name)
    hub = SimpleNamespace(public_host="", url="http://hub:8081/hub/", base_url="/hub/",
                          api_url="http://hub:8081/hub/api")

    async def manifest():  # KubeSpawner makes its API client in the hub's running loop
        spawner = KubeSpawner(config=c, user=user, hub=hub, _mock=True)
        spawner.pre_spawn_hook(spawner)
        return ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())

    return asyncio.run(manifest())


def _mounts(pod) -> dict[str, tuple[str, str | None, bool | None]]:
    container = pod["spec"]["containers"][0]
    return {m["mountPath"]: (m["name"], m.get("subPath"), m.get("readOnly"))
            for m in container["volumeMounts"]}


def test_members_mount_only_their_own_projects(hub_config):
    both = _pod(hub_config, "k8s-bob", [_group("project-dig"), _group("project-survey")])
    mounts = _mounts(both)
    assert mounts["/home/jovyan/projects/dig"] == ("echoes-projects", "dig", None)
    assert mounts["/home/jovyan/projects/survey"] == ("echoes-projects", "survey", None)
    # never the whole volume: every mount of it has a project's folder as subPath
    assert all(sub for name, sub, _ in mounts.values() if name == "echoes-projects")

    one = _mounts(_pod(hub_config, "k8s-alice", [_group("project-dig")]))
    assert [p for p, m in one.items() if m[0] == "echoes-projects"] == [
        "/home/jovyan/projects/dig"]


def test_a_non_member_mounts_no_project(hub_config):
    # a group named like a project but not made by the project tools (no echoes_project
    # property: only hub admins can set it) mounts nothing; nor does another group
    pod = _pod(hub_config, "k8s-carol", [_group("project-dig", project=False),
                                         _group("historians")])
    assert not [m for m in _mounts(pod).values() if m[0] == "echoes-projects"]


def test_every_pod_has_its_home_and_the_shared_datasets_read_only(hub_config):
    pod = _pod(hub_config, "k8s-alice", [_group("project-dig")])
    mounts = _mounts(pod)
    assert mounts["/home/jovyan"][0] == "volume-k8s-alice"
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims["volume-k8s-alice"] == "claim-k8s-alice"   # the user's own home claim
    assert claims["echoes-shared"] == "echoes-shared-datasets"
    assert mounts["/srv/echoes/shared"] == ("echoes-shared", None, True)
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["ECHOES_DATA"] == "/srv/echoes/shared"
    assert env["ECHOES_PROJECTS"] == "/home/jovyan/projects"
    assert env["ECHOES_KNOWLEDGE_URL"] == "http://proxy-public/services/knowledge/"
    assert env["DASK_GATEWAY__ADDRESS"] == "http://proxy-public/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://traefik-echoes-dask-gateway.echoes:80"
    # the lab's options from the features (the usage meter) reach the server's command line
    args = pod["spec"]["containers"][0]["args"]
    assert args[0] == "jupyterhub-singleuser"
    assert "--ResourceUseDisplay.track_cpu_percent=True" in args


def test_services_authenticator_and_token_scopes(hub_config, values):
    c = hub_config
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert set(services) == {"dask-gateway", "reports", "commons", "knowledge", "projects"}
    # the database password from the Secret reaches the commons and no other service
    assert services["commons"]["environment"]["PGPASSWORD"] == "from-the-secret"
    assert all("PGPASSWORD" not in s.get("environment", {})
               for n, s in services.items() if n != "commons")
    # workshops are off on this profile: nothing replaces the site's identity provider
    assert "authenticator_class" not in c.JupyterHub
    # the features' hub options were applied: the read-only share scope, servers' scopes
    assert "custom:echoes-lab:read-only" in c.JupyterHub.custom_scopes
    assert "access:services!service=knowledge" in c.Spawner.server_token_scopes
    assert "echoes_lab" in " ".join(c.JupyterHub.template_paths)  # the hub's look


def test_the_site_authenticator_from_the_settings(values, hub_config, tmp_path):
    """``[auth] authenticator`` works on this profile too: the settings choose the site's
    identity provider and its options."""
    import tomli_w
    from jupyterhub.auth import DummyAuthenticator
    from traitlets.config import Config

    from echoes_lab.hub.kubernetes import configure_kubernetes

    assert "authenticator_class" not in hub_config.JupyterHub  # without: the chart's choice
    data = copy.deepcopy(values["jupyterhub"]["hub"]["extraFiles"]["echoes-settings"]["data"])
    data["hub"]["state_dir"] = str(tmp_path / "state2")
    data["auth"] = {"authenticator": "dummy", "options": {"password": "idp-secret-from-env"}}
    path = tmp_path / "with-idp.toml"
    path.write_text(tomli_w.dumps(data))
    c = Config()
    configure_kubernetes(c, path)
    assert c.JupyterHub.authenticator_class is DummyAuthenticator
    assert DummyAuthenticator(config=c).password == "idp-secret-from-env"
