"""The package as it ships: a wheel, installed non-editable, runs a hub.

The Kubernetes hub image installs the project with ``pip install /opt/echoes-lab[hub]``: no
checkout beside it. Everything the hub reads at run time (the profiles' settings and the
loaders in ``hub_config/``, the kernel spec in ``kernels/``) must be inside the package. This
test builds the wheel from a copy of the sources, installs it with ``--no-deps`` into a new
virtual environment whose other packages come from this one (a ``.pth`` file naming this
environment's site-packages, which holds no ``echoes_lab``: the editable install is a finder
that a ``.pth``-added folder does not run), and starts ``echoes-lab hub`` from it.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import psutil
import pytest

import harness
from harness import REPO, new_root, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: what a wheel is built from (pyproject's readme is README.md); the rest of the checkout is
#: not the package's
SOURCES = ("pyproject.toml", "README.md", "echoes_lab", "hub_config", "kernels")


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """A fresh virtual environment with the project installed from its wheel."""
    build = tmp_path_factory.mktemp("wheel")
    (build / "src").mkdir()
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            # links kept as links: echoes_lab/hub/hub_config -> ../../hub_config is how the
            # package holds the top-level folders, and the wheel must hold their files
            shutil.copytree(src, build / "src" / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
        else:
            shutil.copy2(src, build / "src" / name)
    # no build isolation: setuptools from this environment (constraints.txt), nothing fetched
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(build / "dist"),
                    str(build / "src")], check=True, timeout=300)
    (wheel,) = (build / "dist").glob("echoes_lab-*.whl")

    root = new_root("echoes-wheel-")  # traversable: users' servers run this interpreter
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    (site / "_echoes_lab_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    yield {"root": root, "bin": venv / "bin", "python": python, "site": site}
    shutil.rmtree(root, ignore_errors=True)


def test_the_wheel_holds_what_the_hub_reads(wheel_env):
    found = json.loads(subprocess.run(
        [str(wheel_env["python"]), "-c",
         "import json, echoes_lab, echoes_lab.hub as h; print(json.dumps("
         "[echoes_lab.__file__, str(h.HUB_CONFIG_DIR), str(h.KERNELS_DIR)]))"],
        capture_output=True, text=True, check=True, cwd=wheel_env["root"]).stdout)
    package, hub_config, kernels = map(Path, found)
    assert package.is_relative_to(wheel_env["site"]), "echoes_lab came from elsewhere"
    for name in ("local.toml", "kubernetes.yaml", "jupyterhub_config.py",
                 "dask_gateway_config.py", "lab/overrides.json"):
        shipped = hub_config / name
        assert shipped.is_file() and not shipped.is_symlink(), name
        assert filecmp.cmp(shipped, REPO / "hub_config" / name, shallow=False), name
    assert filecmp.cmp(kernels / "echoes" / "kernel.json", REPO / "kernels/echoes/kernel.json",
                       shallow=False)
    assert not (hub_config / "proxy").exists()  # npm's manifest is for make install only


def test_a_hub_starts_from_the_wheel(wheel_env, hub_factory, monkeypatch):
    proxy = Path(sys.prefix) / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
    hub = hub_factory(start=False, proxy={"command": str(proxy)})
    monkeypatch.setattr(harness, "BIN", wheel_env["bin"])  # Hub.start runs BIN/echoes-lab
    hub.start(timeout=120)
    assert hub.api("GET", "/info").json()["version"]  # /hub/api answers, with a token
    # the hub and its services run the new environment's interpreter, the wheel's code
    hub_cmd = psutil.Process(hub.hub_pid).cmdline()
    assert hub_cmd[:2] == [str(wheel_env["python"]), "-m"], hub_cmd  # JupyterHub, whichever way
    assert str(wheel_env["site"] / "echoes_lab" / "hub" / "hub_config") in " ".join(hub_cmd)
    services = wait_for(lambda: (found := hub.service_processes()).keys() >= {
        "commons", "dask-gateway"} and found, 60, "the commons and the gateway to run")
    for name in ("commons", "dask-gateway"):
        assert services[name][0].cmdline()[0] == str(wheel_env["python"]), name
