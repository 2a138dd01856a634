"""One request to the hub's REST API (or a hub service's), for kernels and hub tools alike.

The notebook library's only way to the hub: :mod:`echoes_lab.sharing` calls it with the lab's
own token, and the hub side's :class:`echoes_lab.hub.client.HubClient` builds on it. It needs
``requests`` and nothing of the hub side (no pydantic settings, no secrets file), so a user's
kernel loads no more than this.
"""

from __future__ import annotations

import requests

from echoes_lab.errors import HubError


def session(token: str) -> requests.Session:
    """A session that sends ``token`` as JupyterHub expects it (``Authorization: token …``)."""
    s = requests.Session()
    s.headers["Authorization"] = f"token {token}"
    return s


def call_json(session, method: str, url: str, ok=(200, 201, 202, 204), error=HubError,
              timeout: float = 60, **kw):
    """One request to the hub's (or a hub service's) REST API → decoded JSON or None.

    No answer, or a status not in ``ok``, raises ``error`` naming the request and the hub's
    own reason (its JSON ``message``, as JupyterHub's API errors carry one).
    """
    what = url.split("/hub/api", 1)[-1]
    try:
        r = session.request(method, url, timeout=timeout, **kw)
    except requests.ConnectionError:
        msg = f"the hub at {url.split('/hub/api', 1)[0]} does not answer: is it running?"
        raise error(msg) from None
    if r.status_code not in ok:
        try:
            reason = r.json().get("message") or r.reason
        except ValueError:
            reason = r.reason
        msg = f"the hub refused {method} {what}: {r.status_code} {reason}"
        raise error(msg)
    return r.json() if r.content else None
