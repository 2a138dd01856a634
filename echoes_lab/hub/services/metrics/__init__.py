"""The metrics service: a Prometheus server scraping the hub and every service, and the admins'
usage and contributions dashboard (``/services/metrics/``).

* :mod:`~echoes_lab.hub.services.metrics.feature` — the service, its role (``read:metrics``,
  access to every service, the list of services), JupyterHub's active-user counts refreshed
  as often as Prometheus scrapes;
* :mod:`~echoes_lab.hub.services.metrics.app` — runs Debian's ``prometheus`` with a generated
  configuration and its data in ``<state_dir>/metrics``, serves the dashboard and its CSV/JSON.
"""

from __future__ import annotations


def __getattr__(name: str):
    # FEATURE imports the service scaffold; only the hub's configuration needs it
    if name == "FEATURE":
        from echoes_lab.hub.services.metrics.feature import FEATURE

        return FEATURE
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
