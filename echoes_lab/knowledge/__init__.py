"""The knowledge base: objects, people, places, datasets, runs and interpretations in one graph
(CIDOC-CRM / Linked Art), queried with SPARQL.

>>> from echoes_lab import knowledge
>>> kg = knowledge.open()                                    # doctest: +SKIP
>>> kg.add(echoes_lab.read_records("tate.csv", preset="tate"))  # doctest: +SKIP
>>> kg.load("https://example.org/object/1.jsonld")          # doctest: +SKIP
>>> kg.query("SELECT ?o ?label WHERE { ?o rdfs:label ?label }")  # doctest: +SKIP

In a notebook, ``%load_ext echoes_lab.knowledge`` gives the ``%%sparql`` cell magic
(``%%sparql`` runs on ``knowledge.open()``; ``%%sparql kg`` on a variable named ``kg``;
``%%sparql -o table`` also stores the result in ``table``).

* :mod:`~echoes_lab.knowledge.linkedart` — records → Linked Art JSON-LD (cromulent)
* :mod:`~echoes_lab.knowledge.rdf` — Linked Art, W3C annotations, runs (PROV-O), datasets
  (DCAT) as RDF quads
* :mod:`~echoes_lab.knowledge.store` — :class:`KnowledgeGraph` on pyoxigraph
* :mod:`~echoes_lab.knowledge.remote` — the hub's knowledge service from a lab
  (``knowledge.remote().query(...)``: the public graphs, yours and your groups')
"""

from __future__ import annotations

import os
from pathlib import Path

from echoes_lab.knowledge.rdf import register_context
from echoes_lab.knowledge.remote import Remote, remote
from echoes_lab.knowledge.store import KnowledgeError, KnowledgeGraph

__all__ = ["KnowledgeError", "KnowledgeGraph", "Remote", "default_path",
           "load_ipython_extension", "open", "register_context", "remote"]

_opened: dict[Path, KnowledgeGraph] = {}


def default_path() -> Path:
    """Where :func:`open` keeps the store: ``$ECHOES_KNOWLEDGE_DIR``, else
    ``~/.local/share/echoes-lab/knowledge`` (the user's own, never the hub's)."""
    env = os.environ.get("ECHOES_KNOWLEDGE_DIR")
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "echoes-lab" / "knowledge"


def open(path: str | Path | None = None, *, read_only: bool = False,  # noqa: A001 - the verb
         memory: bool = False) -> KnowledgeGraph:
    """The knowledge base in ``path`` (default: :func:`default_path`), opened once per process.

    ``memory=True`` gives a store that lives only in this kernel.
    """
    if memory:
        return KnowledgeGraph(None)
    folder = Path(path).expanduser().resolve() if path else default_path().resolve()
    key = folder if not read_only else folder / ".read-only"
    if key not in _opened:
        _opened[key] = KnowledgeGraph(folder, read_only=read_only)
    return _opened[key]


def load_ipython_extension(ipython) -> None:
    """``%load_ext echoes_lab.knowledge``: registers the ``%%sparql`` cell magic."""
    from echoes_lab.knowledge.magic import SparqlMagics

    ipython.register_magics(SparqlMagics)
