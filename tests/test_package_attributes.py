"""``import echoes_lab`` gives every module the README and the guides name, each loaded on first
access.

Issue 27: after ``import echoes_lab``, ``echoes_lab.datasets``, ``.colour``, ``.spectral`` and
``.runs`` raised ``AttributeError`` while the README tells users to call
``echoes_lab.spectral.read_library``. The list is read from their own text; the hub side
(``echoes_lab.hub``) is another layer and never an attribute of the library. Each check runs in
a fresh interpreter.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "echoes_lab"
#: not the notebook library's: the hub layer and the command line
NOT_LIBRARY = {"hub", "cli"}
HEAVY = ("pandas", "numpy", "xarray", "dask", "matplotlib", "scipy", "colour", "sqlalchemy")


def readme_modules() -> list[str]:
    """Every ``echoes_lab.<name>`` of the README and the guides (``docs/``, where the README's
    library section moved, issue 35) whose name is a module of the package."""
    pages = [REPO / "README.md", *(p for p in (REPO / "docs").rglob("*.md")
                                   if "_build" not in p.parts and "generated" not in p.parts)]
    named = {name for page in pages
             for name in re.findall(r"\bechoes_lab\.([a-z][a-z_]*)", page.read_text())}
    modules = {n for n in named
               if (PACKAGE / f"{n}.py").is_file() or (PACKAGE / n / "__init__.py").is_file()}
    return sorted(modules - NOT_LIBRARY)


def library_modules() -> list[str]:
    """Every public top-level module of the package."""
    found = {p.stem for p in PACKAGE.glob("[a-z]*.py")}
    found |= {p.parent.name for p in PACKAGE.glob("[a-z]*/__init__.py")}
    return sorted(found - NOT_LIBRARY)


def probe(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_readme_names_the_modules_of_the_issue():
    assert {"datasets", "spectral", "runs", "collections"} <= set(readme_modules())


def test_every_module_the_readme_names_is_an_attribute_loaded_on_first_access():
    names = sorted({*readme_modules(), *library_modules()})
    seen = probe(f"""
        import json, sys
        import echoes_lab
        names = {names!r}
        before = sorted(m for m in sys.modules
                        if m.split(".")[0] in {HEAVY!r} or
                        (m.startswith("echoes_lab.") and m.split(".")[1] in names))
        got = {{}}
        for name in names:
            try:
                value = getattr(echoes_lab, name)
                got[name] = value is sys.modules.get(f"echoes_lab.{{name}}")
            except AttributeError as exc:
                got[name] = str(exc)
        print(json.dumps({{"before": before, "got": got, "hub": "echoes_lab.hub" in sys.modules}}))
    """)
    # nothing loaded by the import itself: neither the science stack nor the modules
    assert seen["before"] == []
    assert {n: v for n, v in seen["got"].items() if v is not True} == {}
    assert not seen["hub"], "the library's modules must not load the hub layer"
