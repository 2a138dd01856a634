"""The knowledge base's hub service: SPARQL 1.1 over the graphs each user may see.

A managed hub service (``python -m echoes_lab.hub.services.knowledge --settings FILE``) on
:mod:`echoes_lab.hub.services.base`; its entry in the hub is :data:`FEATURE`:

* :mod:`~echoes_lab.hub.services.knowledge.feature` — service, role, users' scope, the
  ``ECHOES_KNOWLEDGE_URL`` of users' labs;
* :mod:`~echoes_lab.hub.services.knowledge.worker` — each query in its own process, killed at
  the deadline, over a read-only view of the store restricted to the asker's graphs;
* :mod:`~echoes_lab.hub.services.knowledge.app` — the SPARQL 1.1 Protocol at ``sparql``, the
  Graph Store HTTP Protocol at ``data``, the query page, the commons' public annotations
  followed through the commons' event stream.

The notebook side is :mod:`echoes_lab.knowledge` (the same mapping and store, locally).
"""

from __future__ import annotations


def __getattr__(name: str):
    # FEATURE imports the service scaffold; only the hub's configuration needs it
    if name == "FEATURE":
        from echoes_lab.hub.services.knowledge.feature import FEATURE

        return FEATURE
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
