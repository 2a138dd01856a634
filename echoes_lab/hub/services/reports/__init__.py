"""The reports service: notebooks from users' homes run on a cron schedule, as their owners.

A JupyterHub managed service (registered by :func:`echoes_lab.hub.config.configure` from the
``[reports]`` settings) with a REST API and a page, linked from the hub's Services menu. Users
sign in through hub OAuth; scripts use a hub API token with the scope
``access:services!service=reports``. Schedules and run history live in SQLite in the service's
own folder ``<state>/reports/``, so they survive restarts of the service and of the hub.

Runs happen in each owner's named server (``reports.server``), which the service starts and
stops through the hub's REST API: the spawner gives it the owner's account, home, image and
limits on every profile, and the service itself runs without root.

* :mod:`echoes_lab.hub.services.reports.store` — the SQLite tables;
* :mod:`echoes_lab.hub.services.reports.scheduler` — cron, batches, retries, concurrency, the
  policy for runs missed while the service was down, reconciling runs after a restart;
* :mod:`echoes_lab.hub.services.reports.servers` — owners' named servers through the hub;
* :mod:`echoes_lab.hub.services.reports.app` — the service, its API, its page, who sees what.

Started as ``python -m echoes_lab.hub.services.reports --settings FILE`` by the hub.
"""
