"""The architecture notes and docs/ are true to the tree: every path and module they name exists.

A path is a code span (between backticks) that looks like one: it has a ``/`` or a file
suffix, and no spaces, wildcards or placeholders. ARCHITECTURE.md names paths relative to the
repository or to the package folder it is describing (``climate/``, ``services/base.py``), so
a path is found when it exists under the repository, ``echoes_lab/``, ``echoes_lab/hub/`` or
``echoes_lab/hub/services/``, or under a folder named in the same paragraph or table row
(``engine.py`` in the row of ``climate/``). A dotted name starting with ``echoes_lab.`` must
be a module of the package, or a name defined in one (read from the source, nothing imported).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md"))]
ROOTS = [REPO, REPO / "echoes_lab", REPO / "echoes_lab" / "hub",
         REPO / "echoes_lab" / "hub" / "services"]
SUFFIXES = (".py", ".md", ".toml", ".yaml", ".yml", ".json", ".txt", ".ipynb", ".csv", ".html",
            ".cfg", ".lock")
SPAN = re.compile(r"`([^`\n]+)`")


def named_paths(text: str) -> set[str]:
    found = set()
    for span in SPAN.findall(text):
        token = span.strip().split(":")[0] if span.startswith(("echoes_lab", "hub")) else \
            span.strip()
        if (" " in token or any(c in token for c in "*<>{}$=()…,")
                or token.startswith(("/", "http", "~", "-", ".", "--"))):
            continue
        if "/" in token or token.endswith(SUFFIXES):
            found.add(token.rstrip("/") + ("/" if token.endswith("/") else ""))
    return found


def named_modules(text: str) -> set[str]:
    return {m.group(0).rstrip(".") for span in SPAN.findall(text)
            for m in re.finditer(r"\becho(?:es)_lab(?:\.[A-Za-z_][A-Za-z0-9_]*)+", span)}


def exists(path: str, context: set[str] = frozenset()) -> bool:
    """``path`` under the repository or a package root, or under a folder of ``context``."""
    folders = ["", *context]
    return any((root / folder / path).exists() for root in ROOTS for folder in folders)


def contexts(text: str) -> list[tuple[str, set[str]]]:
    """Each paragraph (a table row is one) with the folders its paths name: a bare file name
    there is read in those folders (``climate/`` … ``engine.py``)."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\|)", text):
        paths = named_paths(block)
        folders = {p for p in paths if p.endswith("/")}
        folders |= {str(Path(p).parent) + "/" for p in paths if "/" in p.rstrip("/")}
        out.append((block, folders))
    return out


def defined(module: str) -> bool:
    """``echoes_lab.a.b.name``: a module file or package, or a name one of them defines."""
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:cut])
        source = (base / "__init__.py") if base.is_dir() else base.with_suffix(".py")
        if not source.exists():
            continue
        rest = parts[cut:]
        if not rest:
            return True
        tree = ast.parse(source.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.ImportFrom):
                names.update(a.asname or a.name for a in node.names)
        return rest[0] in names
    return False


def test_the_reader_finds_paths_and_modules():
    text = ("`hub_config/local.toml`, `services/`, `commons.py`, `<state>/homes/<name>`, "
            "`make test`, `echoes_lab.hub.settings.load_settings`, `/srv/echoes/shared`")
    assert named_paths(text) == {"hub_config/local.toml", "services/", "commons.py"}
    assert named_modules(text) == {"echoes_lab.hub.settings.load_settings"}
    assert defined("echoes_lab.hub.settings.load_settings")
    assert not defined("echoes_lab.hub.settings.no_such_name")
    assert not exists("echoes_lab/no_such_module.py")
    assert exists("harness.py", {"tests/integration/"}) and not exists("harness.py")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_and_module_named_exists(doc):
    text = doc.read_text(encoding="utf-8")
    missing = sorted({p for block, folders in contexts(text) for p in named_paths(block)
                      if not exists(p, folders)})
    unknown = sorted(m for m in named_modules(text) if not defined(m))
    assert not missing, f"{doc.name} names paths that are not in the tree: {missing}"
    assert not unknown, f"{doc.name} names modules or names that do not exist: {unknown}"
