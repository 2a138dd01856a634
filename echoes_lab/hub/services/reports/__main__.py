"""``python -m echoes_lab.hub.services.reports --settings FILE``: the reports service, started by
the hub on the service scaffold (:class:`echoes_lab.hub.services.base.Service`).

The hub passes the service's address and OAuth client in ``JUPYTERHUB_*`` environment
variables; everything else comes from the deployment's settings file given on the command line.
The service, its pages and API are :mod:`echoes_lab.hub.services.reports.app`.
"""

from __future__ import annotations

from echoes_lab.hub.services.reports.app import ReportsService

main = ReportsService.launch_instance

if __name__ == "__main__":
    main()
