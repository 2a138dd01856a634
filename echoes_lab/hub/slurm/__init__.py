"""The ``slurm`` profile: the hub on a login node, users' servers as Slurm jobs on compute nodes.

:func:`configure_slurm` runs at the end of :func:`echoes_lab.hub.config.configure` when the
settings' ``profile`` is ``"slurm"``. Everything else (services, roles, authenticator) is the
same table of features as on the ``local`` profile; what differs:

* the spawner is :class:`~echoes_lab.hub.slurm.spawner.EchoesSlurmSpawner` (batchspawner's
  ``SlurmSpawner``): partition, cores, memory and hours from ``[slurm]`` and a spawn form;
  reports' named servers and workshop seats' servers are started by the same spawner, so a
  report or a seat runs as a Slurm job too;
* the hub's API listens on ``[slurm] hub_ip``, an address the compute nodes reach;
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

import ipaddress

from echoes_lab.errors import SettingsError
from echoes_lab.hub.settings import Settings

#: seconds between the hub's checks of a server's job: a server lost with its node is shown as
#: stopped within about this much after Slurm declares the node down
POLL_INTERVAL = 10

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
    if not sl.shared_fs:
        msg = f"{src}: [slurm] shared_fs is empty: name the file system every node mounts"
        raise SettingsError(msg)
    shared = s.path(sl.shared_fs)
    if not s.state_dir.is_relative_to(shared):
        msg = (f"{src}: hub.state_dir ({s.state_dir}) is not in [slurm] shared_fs ({shared}): "
               "homes, datasets and projects must be on the file system every node mounts")
        raise SettingsError(msg)
    for key, value, top in (("cores", sl.cores, sl.max_cores), ("memory", sl.memory,
                            sl.max_memory), ("hours", sl.hours, sl.max_hours)):
        if value > top:
            msg = f"{src}: [slurm] {key} = {value:g} is above max_{key} = {top:g}"
            raise SettingsError(msg)


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
    c.Spawner.environment.update(env)
