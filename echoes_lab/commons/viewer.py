"""Links from a notebook into the commons viewer (the hub's page for annotating IIIF manifests
without code, served by the commons service at ``services/commons/viewer``).

>>> from echoes_lab.commons.viewer import viewer_url
>>> viewer_url("https://iiif.example.org/ms-1/manifest.json", base_url="/")
'/services/commons/viewer?manifest=https%3A%2F%2Fiiif.example.org%2Fms-1%2Fmanifest.json'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlencode

from echoes_lab.errors import EchoesError

__all__ = ["viewer_url", "viewer_link"]


def _manifest_of(what) -> str:
    if isinstance(what, str):
        manifest = what.strip()
        where = "the manifest URL"
    elif isinstance(what, Mapping) or hasattr(what, "get"):
        # a record of echoes_lab.read_records (a dict or a DataFrame row): a IIIF record's
        # id is its manifest's IRI
        system = str(what.get("source_system") or "")
        if not system.startswith("iiif"):
            msg = (f"record {what.get('id')!r} comes from {system or 'an unknown source'!r}, "
                   "not from a IIIF manifest: read the manifest with "
                   "echoes_lab.read_records(..., format='iiif'), or give its URL")
            raise EchoesError(msg)
        manifest = str(what.get("id") or "")
        where = f"record {manifest!r}"
    else:
        msg = (f"give a IIIF manifest URL or a record read from a manifest, "
               f"not {type(what).__name__}")
        raise EchoesError(msg)
    if not manifest.startswith(("https://", "http://")):
        msg = (f"{where}: the viewer opens a manifest by its http(s) URL (the browser reads it); "
               f"{manifest!r} is not one")
        raise EchoesError(msg)
    return manifest


def viewer_url(what, canvas: str | None = None, *, base_url: str | None = None) -> str:
    """The commons viewer's address for a IIIF manifest.

    Parameters
    ----------
    what
        The manifest's http(s) URL, or a record of ``echoes_lab.read_records``
        (:func:`echoes_lab.collections.records.read`) read from a IIIF manifest (its ``id`` is
        the manifest's IRI).
    canvas
        The IRI of the canvas to show first (default: the first).
    base_url
        The hub's base path (``$JUPYTERHUB_BASE_URL`` in a lab, else ``/``): the address is a
        path on the hub, so it works from the lab's page without knowing the hub's host.

    Raises
    ------
    EchoesError
        ``what`` is no http(s) URL, or a record that does not come from a IIIF manifest.
    """
    query = {"manifest": _manifest_of(what)}
    if canvas:
        query["canvas"] = canvas
    base = base_url if base_url is not None else os.environ.get("JUPYTERHUB_BASE_URL", "/")
    return f"{base.rstrip('/')}/services/commons/viewer?{urlencode(query)}"


def viewer_link(what, canvas: str | None = None, *, base_url: str | None = None):
    """:func:`viewer_url` as a link a notebook shows (``IPython.display.HTML``)."""
    from html import escape

    from IPython.display import HTML

    url = viewer_url(what, canvas, base_url=base_url)
    return HTML(f'<a href="{escape(url)}" target="_blank">Open in the commons viewer</a>')
