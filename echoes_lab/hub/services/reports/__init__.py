"""The reports service: notebooks from users' homes run on a cron schedule, as their owners.

A JupyterHub managed service (registered by :func:`echoes_lab.hub.config.configure` from the
``[reports]`` settings) with a REST API and a small web page, linked from the hub's Services
menu. Users sign in through hub OAuth; scripts use a hub API token with the scope
``access:services!service=reports``. Schedules and run history live in SQLite in the state
directory, so they survive restarts of the service and of the hub.

* :mod:`echoes_lab.hub.services.reports.store` — the SQLite tables;
* :mod:`echoes_lab.hub.services.reports.scheduler` — cron, running as the owner, retries, concurrency and
  the policy for runs missed while the service was down;
* :mod:`echoes_lab.hub.services.reports.app` — the API, the page and who may see what.

Started as ``python -m echoes_lab.hub.services.reports --settings FILE`` by the hub.
"""
