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


#: what a curated notebook's code uses -> the Debian packages that provide it
SYSTEM_NEEDS = {
    "pytesseract": ("tesseract-ocr", "tesseract-ocr-eng"),  # Tesseract and its English data
    "/usr/share/fonts/truetype/dejavu/": ("fonts-dejavu-core",),
}


def _makefile_packages(repo_root) -> set[str]:
    text = (repo_root / "Makefile").read_text()
    line = re.search(r"^DEBIAN_PACKAGES\s*:=\s*(.*)$", text, re.MULTILINE)
    assert line, "the Makefile has no DEBIAN_PACKAGES line"
    return set(line.group(1).split())


def test_binder_installs_the_system_packages_the_curated_notebooks_need(repo_root):
    """repo2docker installs ``binder/apt.txt`` with apt: every package a curated notebook
    needs (Tesseract for 05-commons), each one the Makefile installs for the tests too."""
    import json

    apt = {line.split("#")[0].strip() for line in
           (repo_root / "binder" / "apt.txt").read_text().splitlines()} - {""}
    needed: dict[str, str] = {}
    for path in sorted((repo_root / "notebooks").rglob("*.ipynb")):
        code = "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]
                         if cell["cell_type"] == "code")
        for marker, packages in SYSTEM_NEEDS.items():
            if marker in code:
                needed.update(dict.fromkeys(packages, path.name))
    assert "tesseract-ocr" in needed, "05-commons reads a label with Tesseract"
    missing = {p: nb for p, nb in needed.items() if p not in apt}
    assert not missing, f"binder/apt.txt lacks what these notebooks need: {missing}"
    untested = apt - _makefile_packages(repo_root)
    assert not untested, f"binder/apt.txt has packages the Makefile does not install: {untested}"
