"""Two layers that hold: the notebook library never imports the hub side.

Users' kernels import ``echoes_lab``; the hub side (``echoes_lab.hub``) runs beside JupyterHub
with its own dependencies (the ``[hub]`` extra, pydantic settings, the hub's secrets file).
A kernel that imported the hub side would fail on a plain install, or carry the hub's
secrets-reading code. Two checks:

* every import statement of every library file, lazy ones in functions included, read from
  the source (an import that only runs on some call path is still an arrow between layers);
* every library module imported in one fresh interpreter: no ``echoes_lab.hub`` module and
  no package that only the hub needs ends up in ``sys.modules``.

The library is everything under ``echoes_lab/`` except ``hub/`` and ``cli.py`` (the
``echoes-lab`` command, which starts the hub).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import echoes_lab

PACKAGE = Path(echoes_lab.__file__).parent
#: packages of the ``[hub]`` extra (and pydantic, which only the hub's settings use) that no
#: library module may load; SQLAlchemy is the library's own (the local commons' store)
HUB_ONLY = ("echoes_lab.hub", "pydantic", "pydantic_settings", "jupyterhub", "apscheduler",
            "cron_descriptor", "psycopg", "dask_gateway_server", "voila", "nbgitpuller",
            "jupyter_collaboration", "jupyterhub_idle_culler")


def library_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if p.relative_to(PACKAGE).parts[0] not in ("hub", "cli.py"))


def module_name(path: Path) -> str:
    parts = ("echoes_lab", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, text: str | None = None) -> set[str]:
    """Every module an ``import``/``from … import`` in ``path`` (or in ``text``, read as that
    file) names, relative ones resolved."""
    text = path.read_text(encoding="utf-8") if text is None else text
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(
        ".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_library_files_are_found():
    names = {module_name(p) for p in library_files()}
    assert {"echoes_lab", "echoes_lab.commons", "echoes_lab.commons.store",
            "echoes_lab.sharing", "echoes_lab.climate.engine"} <= names
    assert not any(n.startswith("echoes_lab.hub") for n in names)


def test_no_library_file_imports_the_hub_side():
    leaks = {f"{p.relative_to(PACKAGE.parent)}: {name}"
             for p in library_files() for name in imported_names(p)
             if name == "echoes_lab.hub" or name.startswith("echoes_lab.hub.")}
    assert not leaks, "the notebook library imports the hub side:\n" + "\n".join(sorted(leaks))


def test_a_lazy_relative_import_of_the_hub_is_seen():
    """The reader itself: ``from ..hub import x`` inside a function of echoes_lab/a/b.py."""
    names = imported_names(PACKAGE / "a" / "b.py",
                           "def f():\n    from ..hub.client import HubClient\n")
    assert "echoes_lab.hub.client" in names


@pytest.mark.slow
def test_importing_every_library_module_loads_nothing_of_the_hub():
    modules = [module_name(p) for p in library_files()]
    probe = textwrap.dedent(f"""
        import importlib, json, sys
        for name in {modules!r}:
            importlib.import_module(name)
        from echoes_lab import commons, sharing
        print(json.dumps(sorted(sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=False, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    leaked = sorted(m for m in loaded if m.split(".")[0] in HUB_ONLY
                    or m == "echoes_lab.hub" or m.startswith("echoes_lab.hub."))
    assert not leaked, f"library modules loaded the hub side: {leaked}"
    assert "sqlalchemy" in {m.split(".")[0] for m in loaded}  # the probe did reach the store


def test_a_local_commons_and_sharing_load_no_hub_module(tmp_path):
    """What a user runs: annotate into the local commons, and share through the library's
    REST client (here to a hub address where nothing listens, so it says the hub does not
    answer) — the hub side stays unloaded."""
    probe = textwrap.dedent("""
        import json, os, socket, sys
        # a bound port that does not listen: the connection is refused at once
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        os.environ.pop("ECHOES_COMMONS_URL", None)
        os.environ.update(JUPYTERHUB_USER="alice", JUPYTERHUB_API_TOKEN="t",
                          JUPYTERHUB_API_URL=f"http://127.0.0.1:{closed.getsockname()[1]}/hub/api")
        from echoes_lab import commons, sharing
        commons.connect(local="commons.sqlite")
        a = commons.annotate(commons.target.record("https://museum.example/object/1"),
                             "Smalt, discoloured", motivation="describing")
        try:
            sharing.share("bob")
        except sharing.ShareError as exc:
            refused = str(exc)
        print(json.dumps({"id": a["id"], "creator": a["creator"]["nickname"],
                          "refused": refused, "modules": sorted(sys.modules)}))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=False, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["id"].startswith((tmp_path / "commons.sqlite").resolve().as_uri())
    assert got["creator"] == "alice"
    assert "does not answer" in got["refused"], got["refused"]
    assert "echoes_lab._rest" in got["modules"]
    assert not [m for m in got["modules"] if m.split(".")[0] in HUB_ONLY
                or m.startswith("echoes_lab.hub")]
