"""Seeded generators of the demo datasets installed into the shared folder.

Each module here (``collection``, ``climate``, ``colour``, ``spectral``) exposes
``write(out_dir, size="small", seed=...) -> list[dict]`` which writes its files
deterministically (the same bytes for the same seed and size) and returns catalogue entries;
:func:`generate` runs them all and writes the catalogue with every file's sha256.
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
            entries.append(entry)
    text = yaml.safe_dump({"datasets": entries}, sort_keys=False, allow_unicode=True)
    if size == "small" and packaged:
        PACKAGED.write_text("# The demo datasets, as `python -m echoes_lab.demo --write-catalog` "
                            "generates them.\n" + text, encoding="utf-8")
    (out_dir / "catalog.yaml").write_text(text, encoding="utf-8")
    return entries
