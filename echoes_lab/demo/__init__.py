"""Seeded generators of the demo datasets installed into the shared folder.

Each module here (``collection``, ``climate``, ``colour``, ``spectral``) exposes
``write(out_dir, size="small", seed=...) -> list[dict]`` which writes its files
deterministically (the same bytes for the same seed and size) and returns catalogue entries;
:func:`generate` runs them all and writes the catalogue with every file's sha256. Each entry
names its ``generator`` module, so that :mod:`echoes_lab.datasets` can materialise a missing
demo dataset from its seed into the user's cache on first use (no set-up outside the hub).
"""

from __future__ import annotations

from pathlib import Path

import pooch
import yaml

from echoes_lab.demo import climate, collection, colour, spectral

GENERATORS = (collection, climate, colour, spectral)
PACKAGED = Path(__file__).resolve().parents[1] / "catalog.yaml"


def generate(out_dir: Path, size: str = "small", packaged: bool = False) -> list[dict]:
    """Write every demo dataset into ``out_dir`` with its ``catalog.yaml``; return the entries."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for module in GENERATORS:
        for entry in module.write(out_dir, size=size):
            entry["files"] = [{"path": f, "sha256": pooch.file_hash(str(out_dir / f), alg="sha256")}
                              for f in entry["files"]]
            entry["generator"] = module.__name__
            entries.append(entry)
    text = yaml.safe_dump({"datasets": entries}, sort_keys=False, allow_unicode=True)
    if size == "small" and packaged:
        _write_packaged(entries)
    (out_dir / "catalog.yaml").write_text(text, encoding="utf-8")
    return entries


def _write_packaged(demo: list[dict]) -> None:
    """Rewrite the packaged catalogue's demo entries, keeping its real (non-generated) ones."""
    old = yaml.safe_load(PACKAGED.read_text(encoding="utf-8")) or {}
    real = [e for e in old.get("datasets", []) if not e.get("generator")]
    head = "".join(line for line in PACKAGED.read_text(encoding="utf-8").splitlines(True)
                   if line.startswith("#"))
    body = yaml.safe_dump({"datasets": demo + real}, sort_keys=False, allow_unicode=True,
                          width=100)
    PACKAGED.write_text(head + body, encoding="utf-8")
