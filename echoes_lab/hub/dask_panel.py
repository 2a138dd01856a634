"""The lab's Dask panel (dask-labextension) without dask in every user's server.

``dask_labextension`` imports dask and distributed when the server loads it (about 60 MB and
0.4 s per user server, measured with ``benchmarks/memory.py``), although most sessions never
open the Dask panel. This server extension registers the same routes with handlers that import
``dask_labextension`` on the first request; ``echoes_lab.hub.config`` enables it in place of
``dask_labextension``'s own loader. Behaviour seen by the lab is unchanged.
"""

from __future__ import annotations

import importlib

from jupyter_server.utils import url_path_join
from tornado import web

_CLUSTER = r"(?P<cluster_id>\w+-\w+-\w+-\w+-\w+)"


def _deferred(module: str, name: str) -> type:
    """A handler class standing for ``module.name``, imported when a request first needs it."""

    class Deferred(web.RequestHandler):  # tornado routes only RequestHandler subclasses
        def __new__(cls, *args, **kwargs):
            # tornado calls handler_class(application, request, **kwargs); the real class's
            # instance is returned, so its own __init__ runs and this class is never used
            return getattr(importlib.import_module(module), name)(*args, **kwargs)

    Deferred.__name__ = Deferred.__qualname__ = name
    return Deferred


def _jupyter_server_extension_points():
    return [{"module": "echoes_lab.hub.dask_panel"}]


def _load_jupyter_server_extension(server_app) -> None:
    """The routes of ``dask_labextension.load_jupyter_server_extension``, handlers deferred."""
    base_url = server_app.web_app.settings["base_url"]
    cluster = _deferred("dask_labextension.clusterhandler", "DaskClusterHandler")
    dashboard = _deferred("dask_labextension.dashboardhandler", "DaskDashboardHandler")
    check = _deferred("dask_labextension.dashboardhandler", "DaskDashboardCheckHandler")
    server_app.web_app.add_handlers(".*$", [
        (url_path_join(base_url, "dask/clusters/" + _CLUSTER), cluster),
        (url_path_join(base_url, "dask/clusters/?"), cluster),
        (url_path_join(base_url, f"dask/dashboard/{_CLUSTER}(?P<proxied_path>.+)"), dashboard),
        (url_path_join(base_url, "dask/dashboard-check/(?P<url>.+)"), check),
    ])
