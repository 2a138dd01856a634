"""The kubernetes profile: its `jupyterhub:` values pass the Zero-to-JupyterHub chart's own
schema (read from the workplace's shared/schemas, never copied here), and its gateway limits are
those of the local profile."""

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
