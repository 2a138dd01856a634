"""Light where it is shared: the processes that run once per user import no science stack.

A user's server, the hub's services and the command line start-up must not import pandas,
xarray, dask or matplotlib (issue: each server carried ≈ 200 MB of them); ``import echoes_lab``
in a kernel loads submodules only on first use. Each check runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: rfc3987_syntax: jsonschema's optional 'iri' checker builds 35 parsers on import (1.2 s in every
#: hub and server start); ``make install`` removes it
HEAVY = ("pandas", "xarray", "dask", "distributed", "matplotlib", "scipy", "colour",
         "rfc3987_syntax")


def heavy_modules_after(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_user_server_with_every_extension_loads_no_science_stack(repo_root, tmp_path):
    """A real ServerApp initialised with the hub's own single-user arguments and extensions."""
    code = f"""
        from echoes_lab.hub.config import singleuser_args
        from echoes_lab.hub.settings import load_settings
        from jupyter_server.serverapp import ServerApp
        args = singleuser_args(load_settings({str(repo_root / "hub_config" / "local.toml")!r}))
        app = ServerApp()
        app.initialize(argv=[*args, "--ServerApp.root_dir={tmp_path}", "--ServerApp.port=0",
                             "--ServerApp.open_browser=False"])
        assert "echoes_lab.hub.dask_panel" in app.extension_manager.extensions
    """
    assert heavy_modules_after(code) == []


@pytest.mark.parametrize("module", [
    "echoes_lab", "echoes_lab.hub.singleuser", "echoes_lab.cli", "echoes_lab.hub.launch",
    "echoes_lab.hub.config",
])
def test_entry_points_import_no_science_stack(module):
    assert heavy_modules_after(f"import {module}") == []


@pytest.mark.parametrize("module", [
    "echoes_lab.hub.launch", "echoes_lab.hub.services.commons.__main__",
    "echoes_lab.hub.services.reports.__main__", "echoes_lab.hub.services.projects.__main__",
    "echoes_lab.hub.services.workshops.__main__",
])
def test_launcher_and_services_open_their_ports_before_importing_jupyterhub(module):
    """``echoes-lab hub`` and each service's entry import no JupyterHub (0.4 s): a hub start
    waits for both, and a service listens before its imports (``services.run``)."""
    assert heavy_modules_after(f"import {module}", ("jupyterhub", "sqlalchemy")) == []


def test_public_names_load_their_area_on_first_use():
    """``echoes_lab.read_records`` loads the collections area (pandas) and nothing else heavy."""
    loaded = heavy_modules_after("import echoes_lab; echoes_lab.read_records")
    assert "pandas" in loaded and "xarray" not in loaded and "dask" not in loaded


def test_accessors_register_on_datasets_made_without_echoes_lab(tmp_path):
    """``ds.climate`` works on a Dataset however it was made, once echoes_lab is imported."""
    code = """
        import echoes_lab
        import numpy as np, pandas as pd, xarray as xr
        ds = xr.Dataset({"temperature": (("sensor", "time"), np.full((1, 2), 20.0)),
                         "relative_humidity": (("sensor", "time"), np.full((1, 2), 50.0))},
                        coords={"sensor": ["a"],
                                "time": pd.date_range("2024", periods=2, freq="h")})
        # Magnus, Alduchov & Eskridge (1996): dew point of 20 °C at 50 % RH is 9.26 °C
        assert abs(float(ds.climate.dew_point().max()) - 9.26) < 0.01
    """
    heavy_modules_after(code)


@pytest.mark.slow
def test_dask_panel_routes_answer_like_dask_labextension(tmp_path):
    """A real server with the deferred Dask panel lists the user's clusters (none) at the
    route the lab's Dask panel calls, importing dask-labextension on that first request."""
    import socket
    import time

    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.token=t", "--ServerApp.open_browser=False",
         "--ServerApp.allow_root=True",
         f"--ServerApp.root_dir={tmp_path}",
         "--ServerApp.jpserver_extensions={'dask_labextension': False, "
         "'echoes_lab.hub.dask_panel': True}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = requests.get(f"http://127.0.0.1:{port}/dask/clusters?token=t", timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        assert reply.status_code == 200 and reply.json() == []
    finally:
        server.terminate()
        server.wait(timeout=30)
