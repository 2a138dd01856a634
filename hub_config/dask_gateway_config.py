"""Dask Gateway configuration of ECHOES Lab: a thin loader of the same settings file as the hub.

The hub starts the gateway as a managed service with ``ECHOES_SETTINGS`` naming the profile's
settings file; without it, the embedded ``local`` profile beside this file. The mapping onto the
gateway's options is ``echoes_lab.hub.services.gateway.config.configure_gateway``.
"""

import os
from pathlib import Path

from echoes_lab.hub.services.gateway.config import configure_gateway

configure_gateway(c, os.environ.get("ECHOES_SETTINGS") or Path(__file__).with_name("local.toml"))  # noqa: F821
