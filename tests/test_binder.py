"""binder/ lets the repository run on a BinderHub with the tested dependency versions."""

from __future__ import annotations

import os
import re
import tomllib

from packaging.requirements import Requirement


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            req = Requirement(line)
            pins[_key(req.name)] = str(req.specifier).removeprefix("==")
    return pins


#: the hub extras a single-user lab has too: the lab itself and its extensions
SINGLE_USER_LAB = ("jupyterlab", "jupyter-server", "jupyter-collaboration", "jupyterlab-git",
                   "nbdime", "voila", "jupyter-resource-usage")


def test_binder_requirements_agree_with_pyproject_and_constraints(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    binder = _pins(repo_root / "binder" / "requirements.txt")
    tested = _pins(repo_root / "constraints.txt")
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["hub"]
               if _key(Requirement(r).name) in SINGLE_USER_LAB]
    for req in wanted:
        key = _key(req.name)
        assert key in binder, f"binder/requirements.txt lacks {req.name} (pyproject.toml needs it)"
        assert binder[key] == tested[key], (
            f"binder pins {req.name}=={binder[key]}, the tests passed with {tested[key]}")
        assert req.specifier.contains(binder[key]), f"{req.name}=={binder[key]} breaks {req}"
    extra = set(binder) - {_key(r.name) for r in wanted}
    assert not extra, f"binder/requirements.txt has packages pyproject.toml does not: {extra}"


def test_binder_scripts_install_kernel_and_data(repo_root):
    post, start = repo_root / "binder" / "postBuild", repo_root / "binder" / "start"
    assert os.access(post, os.X_OK) and os.access(start, os.X_OK)
    text = post.read_text()
    assert "install_kernel" in text and "python -m echoes_lab.demo" in text
    assert "ECHOES_DATA" in start.read_text() and 'exec "$@"' in start.read_text()
    assert (repo_root / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
