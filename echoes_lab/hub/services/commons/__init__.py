"""The digital commons: interpretations of heritage objects by people and software, kept as
W3C Web Annotations, with their history and provenance.

A managed hub service (``python -m echoes_lab.hub.services.commons --settings FILE``) built on
:mod:`echoes_lab.hub.services.base`; its entry in the hub is :data:`FEATURE`. The data model
and the store are the notebook library's own, shared with the local commons of a laptop:

* :mod:`echoes_lab.commons.model` — the data model's rules: the server sets the
  creator (the hub identity), the generator (a registered software actor), times, licence;
* :mod:`echoes_lab.commons.store` — SQLAlchemy tables (SQLite or PostgreSQL):
  annotations, every version, tombstones, moderation, actors, search keys;
* :mod:`~echoes_lab.hub.services.commons.app` — the W3C Web Annotation Protocol at
  ``/services/commons/annotations/``, search, actors, exports;
* :mod:`~echoes_lab.hub.services.commons.exports` — IIIF Presentation 3 pages and RO-Crates.

Notebooks use it through :mod:`echoes_lab.commons`. Nothing here imports pandas.
"""

from __future__ import annotations


def __getattr__(name: str):
    # FEATURE imports the service scaffold (jinja2, tornado, jupyterhub): only the hub's config
    # needs it, not a kernel that uses a local commons through echoes_lab.commons
    if name == "FEATURE":
        from echoes_lab.hub.services.commons.feature import FEATURE

        return FEATURE
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
