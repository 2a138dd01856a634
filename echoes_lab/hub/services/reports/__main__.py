"""``python -m echoes_lab.hub.services.reports --settings FILE``: the reports service, started by
the hub on the service scaffold (:class:`echoes_lab.hub.services.base.Service`).

The hub passes the service's address and OAuth client in ``JUPYTERHUB_*`` environment
variables; everything else comes from the deployment's settings file given on the command line.
The service, its pages and API are :mod:`echoes_lab.hub.services.reports.app`.
"""

from echoes_lab.hub.services import run

#: the service's class, imported by :func:`~echoes_lab.hub.services.run` once the port listens
TARGET = "echoes_lab.hub.services.reports.app:ReportsService"

if __name__ == "__main__":
    run(TARGET)
