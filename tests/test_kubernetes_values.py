"""The kubernetes profile: its `jupyterhub:` values pass the Zero-to-JupyterHub chart's own
schema (read from the workplace's shared/schemas, never copied here); its settings file passes
the hub's own loader; every feature in ``echoes_lab.hub.config.FEATURES`` is either a service
in it matching the feature (command, port, roles, users' scopes and environment), done by the
charts, or disabled with its reason in ``docs/kubernetes.md``, so a new feature cannot be left
out silently; its gateway limits are those of the local profile."""

from __future__ import annotations

import copy
import re
import tomllib

import pytest
import yaml


@pytest.fixture(scope="module")
def values(repo_root) -> dict:
    return yaml.safe_load((repo_root / "hub_config" / "kubernetes.yaml").read_text())


@pytest.fixture(scope="module")
def z2jh(repo_root):
    schemas = repo_root.parent / "shared" / "schemas"
    schema, defaults = schemas / "z2jh-values.schema.yaml", schemas / "z2jh-values.default.yaml"
    if not (schema.is_file() and defaults.is_file()):
        pytest.skip(f"the Zero-to-JupyterHub values schema is absent from {schemas}")
    return yaml.safe_load(schema.read_text()), yaml.safe_load(defaults.read_text())


def _merge(base: dict, over: dict) -> dict:
    """Helm's merge of user values over the chart's defaults (maps merge, the rest replaces)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def test_jupyterhub_values_pass_the_chart_schema(values, z2jh):
    import jsonschema

    schema, defaults = z2jh
    merged = _merge(defaults, values["jupyterhub"])
    jsonschema.Draft7Validator(schema).validate(merged)


def test_the_schema_catches_a_misspelt_key(values, z2jh):
    import jsonschema

    schema, defaults = z2jh
    bad = _merge(defaults, values["jupyterhub"])
    bad["singleuser"]["imag"] = bad["singleuser"].pop("image")
    with pytest.raises(jsonschema.ValidationError, match="imag"):
        jsonschema.Draft7Validator(schema).validate(bad)


def test_same_limits_as_the_local_profile(values, repo_root):
    local = tomllib.loads((repo_root / "hub_config" / "local.toml").read_text())["gateway"]
    text = values["dask-gateway"]["gateway"]["extraConfig"]["echoes-limits"]
    compile(text, "echoes-limits", "exec")  # the gateway runs it: it must at least be Python
    for key in ("clusters_per_user", "max_workers", "worker_cores", "max_worker_cores",
                "worker_memory", "max_worker_memory", "idle_timeout"):
        found = re.search(rf"^{key} = (\S+)$", text, re.M)
        assert found, f"{key} missing from the kubernetes profile"
        assert float(found.group(1)) == float(local[key]), key
    worker = values["dask-gateway"]["gateway"]["backend"]["worker"]
    assert worker["cores"]["limit"] == local["worker_cores"]
    assert worker["memory"]["limit"] == f"{local['worker_memory']:g}G"
    assert values["jupyterhub"]["cull"]["timeout"] == tomllib.loads(
        (repo_root / "hub_config" / "local.toml").read_text())["culler"]["timeout"]


def test_users_reach_the_gateway(values):
    hub = values["jupyterhub"]["hub"]
    assert "dask-gateway" in hub["services"]
    assert "access:services!service=dask-gateway" in hub["loadRoles"]["user"]["scopes"]
    assert values["dask-gateway"]["gateway"]["auth"]["type"] == "jupyterhub"


# -- every service of the profile, against its feature in echoes_lab.hub.config.FEATURES ------

SETTINGS_PATH = "/usr/local/etc/echoes/settings.toml"
#: our managed services in the hub pod: service name -> the module the hub runs
SERVICES = {
    "reports": "echoes_lab.hub.services.reports",
    "commons": "echoes_lab.hub.services.commons",
    "knowledge": "echoes_lab.hub.services.knowledge",
    "projects": "echoes_lab.hub.services.projects",
}


@pytest.fixture(scope="module")
def echoes_settings(values, tmp_path_factory):
    """The profile's settings file as the chart renders it, read by the hub's own loader."""
    import tomli_w

    from echoes_lab.hub.settings import load_settings

    files = values["jupyterhub"]["hub"]["extraFiles"]["echoes-settings"]
    assert files["mountPath"] == SETTINGS_PATH
    path = tmp_path_factory.mktemp("k8s") / "settings.toml"
    path.write_text(tomli_w.dumps(files["data"]))
    return load_settings(path)


@pytest.fixture(scope="module")
def features():
    from echoes_lab.hub.config import features

    return {f.name: f for f in features()}


def test_profile_settings_are_valid_and_delegate_to_the_charts(echoes_settings):
    s = echoes_settings
    assert s.profile == "kubernetes"
    # the charts do these: our local gateway and culler must not run beside them
    assert not s.gateway.enabled and not s.culler.enabled
    assert s.spawner.isolation == "none"  # KubeSpawner's pods isolate users
    assert s.commons.db_url.startswith("postgresql")
    assert ":" not in s.commons.db_url.split("//", 1)[1].split("@")[0], "no password in git"


def test_every_feature_is_a_service_or_says_why_not(values, echoes_settings, features,
                                                    repo_root):
    """The drift check: FEATURES against the profile. A feature the settings enable and that
    runs a service is in ``hub.services`` (and in :data:`SERVICES`, so the test below checks
    it); the others are done by the charts or named in kubernetes.py with their reason, and
    that reason's feature is in the docs' known limits."""
    from echoes_lab.hub import kubernetes as k8s

    limits = (repo_root / "docs" / "kubernetes.md").read_text().split("## Known limits")[1]
    hub_services = values["jupyterhub"]["hub"]["services"]
    for name, feature in features.items():
        if name in k8s.BY_THE_CHARTS or name in k8s.NOT_ON_KUBERNETES:
            assert not feature.enabled(echoes_settings), f"{name} must be disabled"
            assert name not in hub_services or name == "dask-gateway", name
            if name in k8s.NOT_ON_KUBERNETES:
                assert f"`{name}`" in limits, f"{name}: not in docs/kubernetes.md's limits"
            continue
        if name in k8s.HUB_MACHINE_ONLY:
            assert f"`{name}`" in limits, f"{name}: not in docs/kubernetes.md's limits"
            continue
        if not feature.enabled(echoes_settings):
            continue
        if feature.service(echoes_settings, None) is not None:
            assert name in hub_services, f"feature {name} is not a service of the profile"
            assert name in SERVICES, f"add {name} to SERVICES (checked below)"


def test_a_feature_the_profile_cannot_carry_is_refused(values, tmp_path):
    """Workshops enabled on the kubernetes profile stop the hub with the reason and the fix."""
    import tomli_w
    from traitlets.config import Config

    from echoes_lab.errors import EchoesError
    from echoes_lab.hub.kubernetes import configure_kubernetes

    data = copy.deepcopy(values["jupyterhub"]["hub"]["extraFiles"]["echoes-settings"]["data"])
    data["hub"]["state_dir"] = str(tmp_path / "state")
    data["workshops"]["enabled"] = True
    path = tmp_path / "settings.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(EchoesError, match=r"\[workshops\] enabled = false"):
        configure_kubernetes(Config(), path)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_matches_its_feature(name, values, echoes_settings, features):
    hub = values["jupyterhub"]["hub"]
    feature = features[name]
    assert feature.enabled(echoes_settings), f"{name} is off in the kubernetes settings"
    service = hub["services"][name]
    assert service["command"] == ["python3", "-m", SERVICES[name], "--settings", SETTINGS_PATH]
    # the module exists and is a service entry point
    import importlib.util

    assert importlib.util.find_spec(SERVICES[name]) is not None
    # its URL: the hub's Kubernetes service, on the port of its settings section, exposed
    port = getattr(echoes_settings, name).port
    assert service["url"] == f"http://hub:{port}"
    assert {"name": name, "port": port, "targetPort": port} in hub["service"]["extraPorts"]
    allowed = {p["port"] for rule in hub["networkPolicy"]["ingress"] for p in rule["ports"]}
    assert port in allowed, f"the proxy cannot reach {name} on {port}"
    # the same definition as on one machine, except where it runs
    local = feature.service(echoes_settings, None)
    assert local["command"][2] == SERVICES[name]
    for key in ("oauth_no_confirm", "display", "info"):
        assert service.get(key) == local.get(key), f"{name}.{key}"
    # its roles, scope for scope
    for role in feature.roles(echoes_settings):
        theirs = hub["loadRoles"][role["name"]]
        assert set(theirs["scopes"]) == set(role["scopes"]), role["name"]
        assert theirs.get("services", []) == role.get("services", []), role["name"]
    # every user reaches it, and users' servers carry what the feature gives them
    user_scopes = set(hub["loadRoles"]["user"]["scopes"])
    assert set(feature.user_scopes(echoes_settings)) <= user_scopes


def test_users_servers_get_every_features_environment(values, echoes_settings, features):
    env = values["jupyterhub"]["singleuser"]["extraEnv"]
    for name in SERVICES:
        for key in features[name].environment(echoes_settings):
            assert key in env, f"{key} ({name}) missing from singleuser.extraEnv"


def test_server_tokens_carry_the_scopes_of_the_local_profile(values, echoes_settings, features):
    """Each feature's ``configure_hub`` adds scopes to users' server tokens; the profile's
    ``server_token_scopes`` holds all of them."""
    from traitlets.config import Config

    from echoes_lab.hub.services.projects.feature import DEFAULT_SERVER_TOKEN_SCOPES, user_scopes

    c = Config()
    for name in ("dask-gateway", "commons"):
        features[name].configure_hub(c, echoes_settings)
    # projects' configure_hub also patches JupyterHub (hubfix): its scopes are read directly
    wanted = {*c.Spawner.server_token_scopes, *DEFAULT_SERVER_TOKEN_SCOPES, *user_scopes()}
    have = set(values["jupyterhub"]["hub"]["config"]["KubeSpawner"]["server_token_scopes"])
    assert wanted <= have, wanted - have


def test_shared_data_limits_image_and_culler(values):
    single = values["jupyterhub"]["singleuser"]
    mounts = {m["mountPath"]: m for m in single["storage"]["extraVolumeMounts"]}
    assert mounts[single["extraEnv"]["ECHOES_DATA"]]["readOnly"] is True
    assert single["cpu"]["limit"] and single["memory"]["limit"]
    assert single["image"]["name"] == values["dask-gateway"]["gateway"]["backend"]["image"]["name"]
    assert values["jupyterhub"]["cull"]["enabled"] is True
    assert values["jupyterhub"]["hub"]["allowNamedServers"] is True  # reports' named servers
