"""The ``slurm`` profile: the hub on a login node, users' servers as Slurm jobs on compute nodes.

:func:`configure_slurm` runs at the end of :func:`echoes_lab.hub.config.configure` when the
settings' ``profile`` is ``"slurm"``. Everything else (services, roles, authenticator) is the
same table of features as on the ``local`` profile; what differs:

* the spawner is :class:`~echoes_lab.hub.slurm.spawner.EchoesSlurmSpawner` (batchspawner's
  ``SlurmSpawner``): partition, cores, memory and hours from ``[slurm]`` and a spawn form;
  reports' named servers and workshop seats' servers are started by the same spawner, so a
  report or a seat runs as a Slurm job too;
* the hub's API listens on ``[slurm] hub_ip``, an address the compute nodes reach, and so
  must the proxy (``[hub] ip``: that address or every interface, not loopback): the links a lab
  gets to the hub's services (``ECHOES_COMMONS_URL`` and the others of :data:`LAB_LINKS`) lead
  through the proxy at that address, since a lab on a compute node cannot reach the hub's
  loopback interface (the services themselves stay on it, behind the proxy);
* team projects: a member's job gets the project's Unix group through the account's entry in
  the group database (``/etc/group`` or the site's directory), since Slurm sets a job's groups
  from there, not from the submitting process; see
  :meth:`~echoes_lab.hub.slurm.spawner.EchoesSlurmSpawner.sync_project_groups`;
* memory limits: ``[spawner] mem_limit`` (and a workshop seat's ``mem_limit``) is a job's
  ``--mem`` by default and the most it may ask for;
* users' Dask clusters are Slurm jobs of their own (dask-jobqueue behind
  ``echoes_lab.compute.cluster()``): the servers get Dask's ``jobqueue.slurm`` settings, and
  the hub's Dask Gateway (which would run workers on the hub's machine) must be disabled;
* homes, shared datasets and projects are folders under ``hub.state_dir``, which must lie in
  ``[slurm] shared_fs``, the file system every node mounts at the same path.

Workshops work as on one machine: seats' homes, materials and archives are folders on the
shared file system (``echoes_lab.hub.services.workshops.homes``), seats' servers Slurm jobs.
Refused here with the key to change, as on Kubernetes: ``[gateway]`` (see above).
"""

from __future__ import annotations

import copy
import ipaddress
from urllib.parse import urlparse

from traitlets.config import LazyConfigValue

from echoes_lab.errors import SettingsError
from echoes_lab.hub.settings import Settings

#: seconds between the hub's checks of a server's job: a server lost with its node is shown as
#: stopped within about this much after Slurm declares the node down
POLL_INTERVAL = 10

#: the variables of users' servers that link to the hub's services (set by their features):
#: on this profile they lead through the proxy at its address on the cluster's network
LAB_LINKS = ("ECHOES_COMMONS_URL", "ECHOES_KNOWLEDGE_URL", "ECHOES_METRICS_URL",
             "ECHOES_PROJECTS_URL")

#: ``[hub] ip`` values meaning every interface of this machine
EVERY_INTERFACE = ("", "0.0.0.0", "::")

#: sections the profile cannot run, and why
NOT_ON_SLURM = {
    "gateway": "users' Dask workers are Slurm jobs of their own (dask-jobqueue); the gateway "
               "would run them on the hub's machine",
}


def check(s: Settings) -> None:
    """Refuse a ``slurm`` profile that cannot work, naming the key to change."""
    src = s.source
    for section, why in NOT_ON_SLURM.items():
        if getattr(s, section).enabled:
            msg = (f"{src}: [{section}] is enabled, but the slurm profile cannot run it: {why}. "
                   f"Set [{section}] enabled = false")
            raise SettingsError(msg)
    sl = s.slurm
    try:
        loopback = ipaddress.ip_address(sl.hub_ip).is_loopback
    except ValueError:
        msg = f"{src}: [slurm] hub_ip must be an IP address of this machine, not {sl.hub_ip!r}"
        raise SettingsError(msg) from None
    if loopback:
        msg = (f"{src}: [slurm] hub_ip is {sl.hub_ip}, which compute nodes cannot reach: give "
               "this machine's address on the cluster's network")
        raise SettingsError(msg)
    proxy_ip = s.hub.ip
    if proxy_ip not in EVERY_INTERFACE and _loopback(proxy_ip):
        msg = (f"{src}: [hub] ip is {proxy_ip}, which compute nodes cannot reach, but labs on "
               "them reach the hub's services through the proxy listening there: set it to "
               f"[slurm] hub_ip ({sl.hub_ip}) or \"0.0.0.0\"")
        raise SettingsError(msg)
    if not sl.shared_fs:
        msg = f"{src}: [slurm] shared_fs is empty: name the file system every node mounts"
        raise SettingsError(msg)
    shared = s.path(sl.shared_fs)
    if not s.state_dir.is_relative_to(shared):
        msg = (f"{src}: hub.state_dir ({s.state_dir}) is not in [slurm] shared_fs ({shared}): "
               "homes, datasets and projects must be on the file system every node mounts")
        raise SettingsError(msg)
    if s.projects.enabled:
        from echoes_lab.hub.services.projects.storage import projects_root

        if not projects_root(s).is_relative_to(shared):
            msg = (f"{src}: [projects] folder ({projects_root(s)}) is not in [slurm] shared_fs "
                   f"({shared}): members' jobs on every node must see the projects' files")
            raise SettingsError(msg)
    for key, value, top in (("cores", sl.cores, sl.max_cores), ("memory", sl.memory,
                            sl.max_memory), ("hours", sl.hours, sl.max_hours)):
        if value > top:
            msg = f"{src}: [slurm] {key} = {value:g} is above max_{key} = {top:g}"
            raise SettingsError(msg)
    limit = _gib(s.spawner.mem_limit)
    if limit is not None and limit > sl.max_memory:
        msg = (f"{src}: [spawner] mem_limit = {s.spawner.mem_limit!r} is above [slurm] "
               f"max_memory = {sl.max_memory:g} (GiB): a job's --mem cannot exceed it")
        raise SettingsError(msg)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _gib(limit: str | None) -> float | None:
    """A ``mem_limit`` setting (``"2G"``, ``"512M"``: JupyterHub's byte specification) in GiB."""
    if not limit:
        return None
    from jupyterhub.traitlets import ByteSpecification

    return ByteSpecification().validate(None, limit) / 2**30


def cluster_url(s: Settings) -> str:
    """The proxy's address as labs on compute nodes reach it: ``[hub] ip``, or ``[slurm]
    hub_ip`` when the proxy listens on every interface."""
    host = s.slurm.hub_ip if s.hub.ip in EVERY_INTERFACE else s.hub.ip
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{s.hub.port}"


def lab_links(environment: dict, s: Settings) -> dict:
    """``environment``'s :data:`LAB_LINKS` with their origin replaced by :func:`cluster_url`.

    The features make them from the hub's loopback address or the services' own loopback
    ports (``projects``); every one of those paths is also served by the proxy
    (``/services/NAME/…``), so the lab reaches the same service through it. With ``[hub]
    subdomain_host`` the proxy routes by host name: the links stay at the public origin, which
    the nodes must then reach.
    """
    if s.hub.subdomain_host:
        return {}
    origin = cluster_url(s)
    links = {}
    for key in LAB_LINKS:
        if key in environment:
            path = urlparse(environment[key]).path
            links[key] = origin + path
    return links


def configure_slurm(c, s: Settings) -> None:
    """Turn the local profile's configuration in ``c`` into the slurm profile's."""
    check(s)
    # imported here: batchspawner (and the replacement of its port report) only on this profile
    from echoes_lab.hub.slurm.spawner import EchoesSlurmSpawner

    sl = s.slurm
    c.JupyterHub.hub_ip = sl.hub_ip
    c.JupyterHub.spawner_class = EchoesSlurmSpawner
    # the local spawner's homes, data, kernel and isolation settings, for the Slurm spawner
    for key, value in c.EchoesSpawner.items():
        c.EchoesSlurmSpawner[key] = value
    conf = str(s.path(sl.conf)) if sl.conf else ""
    c.EchoesSlurmSpawner.update(
        slurm_conf=conf, partitions=list(sl.partitions), cores=sl.cores,
        max_cores=sl.max_cores, memory=sl.memory, max_memory=sl.max_memory, hours=sl.hours,
        max_hours=sl.max_hours, poll_interval=POLL_INTERVAL)
    env = {"DASK_JOBQUEUE__SLURM__QUEUE": sl.partitions[0],
           "DASK_JOBQUEUE__SLURM__WALLTIME": sl.dask_walltime}
    if conf:
        env["SLURM_CONF"] = conf
    # what the features added so far (a traitlets LazyConfigValue of .update() calls), read
    # from a copy: get_value caches its result, which would hide the update below from the hub
    current = c.Spawner.environment
    if isinstance(current, LazyConfigValue):
        current = copy.copy(current).get_value({})
    env.update(lab_links(current, s))
    c.Spawner.environment.update(env)
