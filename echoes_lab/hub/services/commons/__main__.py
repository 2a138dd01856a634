"""``python -m echoes_lab.hub.services.commons --settings FILE``: the commons (the hub runs it)."""

from __future__ import annotations

import os

from echoes_lab.hub.services.base import Service
from echoes_lab.hub.services.commons.app import HubUsers, handlers
from echoes_lab.hub.services.commons.feature import db_url, public_base
from echoes_lab.hub.services.commons.store import Store


class CommonsService(Service):
    """The W3C Web Annotation server of the hub (see :mod:`echoes_lab.hub.services.commons`)."""

    service_name = "commons"
    name = "echoes-commons"
    store: Store | None = None

    def handlers(self) -> list[tuple]:
        return handlers()

    def tornado_settings(self) -> dict:
        s = self.settings
        # opened here, before serving: a database that cannot be opened stops the start
        self.store = Store(db_url(s), clock=self.utcnow)
        hub_users = HubUsers(self.hub_api_url, os.environ.get("JUPYTERHUB_API_TOKEN", ""),
                             max_age=min(s.services.auth_cache_age,
                                         s.workshops.auth_refresh_age))
        return {"store": self.store, "page_size": s.commons.page_size,
                "licence": s.commons.licence, "public_base": public_base(s),
                "hub_users": hub_users}

    async def stop_tasks(self) -> None:
        if self.store is not None:
            self.store.close()


main = CommonsService.launch_instance

if __name__ == "__main__":
    main()
