"""Per-user memory and CPU limits for the local spawner, with what the machine allows.

In order of preference:

* **cgroup v2** (``/sys/fs/cgroup`` is a cgroup2 mount, writable by root, the memory and cpu
  controllers can be enabled below the hub's own group): one group per system account,
  ``<hub's group>/echoes-lab/<account>``, with ``memory.max`` and ``cpu.max``;
* **cgroup v1** (``/sys/fs/cgroup/memory`` and ``/sys/fs/cgroup/cpu`` writable by root): the
  same groups in each hierarchy, ``memory.limit_in_bytes`` and ``cpu.cfs_quota_us``;
* otherwise **RLIMIT_DATA** on each process (the server, each kernel): a process past the
  limit gets ``MemoryError``; this bounds each process, not the user's total, and there is no
  CPU limit.

The server joins its groups in the spawner's ``preexec_fn`` (as root, before dropping to the
user's uid), so its kernels and anything they start stay inside: the limit is for everything
the user runs from their lab. systemd scopes (``systemd-run --scope``) would do the same, and
need systemd as PID 1, which a container rarely has.

References: Linux kernel documentation, "Control Group v2" (memory.max, cpu.max) and
"Memory Resource Controller" (cgroup v1, memory.limit_in_bytes); "CFS Bandwidth Control"
(cpu.cfs_quota_us / cpu.cfs_period_us); setrlimit(2) for RLIMIT_DATA.
"""

from __future__ import annotations

import logging
import os
import resource
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: CFS period: 100 ms, the kernel's default; the quota is ``cpu_limit`` periods' worth
PERIOD_US = 100_000
GROUP = "echoes-lab"


@dataclass
class Limits:
    """The limits one user's server gets, and how they are enforced."""

    mem: int | None = None
    cpu: float | None = None
    how: str = "none"
    procs_files: list[str] = field(default_factory=list)
    rlimit_data: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.procs_files or self.rlimit_data)

    def enter(self) -> None:
        """Put the calling process under the limits (in ``preexec_fn``, before setuid)."""
        pid = str(os.getpid()).encode()
        for procs in self.procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        if self.rlimit_data:
            resource.setrlimit(resource.RLIMIT_DATA, (self.rlimit_data, self.rlimit_data))


def _own_groups(proc_cgroup: Path = Path("/proc/self/cgroup")) -> dict[str, str]:
    """This process's group in each hierarchy: ``{"memory": "/a/b", "": "/c" (v2), ...}``."""
    groups = {}
    for line in proc_cgroup.read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(","):
            groups[name] = path
    return groups


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _v2(root: Path, own: str, account: str, mem: int | None, cpu: float | None) -> Limits:
    base = root / own.lstrip("/")
    wanted = [c for c, v in (("memory", mem), ("cpu", cpu)) if v]
    available = (base / "cgroup.controllers").read_text().split()
    if not set(wanted) <= set(available):
        msg = f"controllers {wanted} not available in {base}"
        raise OSError(msg)
    group = base / GROUP
    group.mkdir(exist_ok=True)
    # the kernel's "no internal processes" rule: controllers are enabled for children of a
    # group holding no process; ours (echoes-lab) never holds one, only its children do
    _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
    _write(group / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
    user = group / account
    user.mkdir(exist_ok=True)
    if mem:
        _write(user / "memory.max", str(mem))
        if (user / "memory.swap.max").exists():
            _write(user / "memory.swap.max", "0")
    if cpu:
        _write(user / "cpu.max", f"{round(cpu * PERIOD_US)} {PERIOD_US}")
    return Limits(mem, cpu, "cgroup v2", [str(user / "cgroup.procs")])


def _v1(root: Path, groups: dict[str, str], account: str, mem: int | None,
        cpu: float | None) -> Limits:
    procs = []
    if mem:
        user = root / "memory" / groups["memory"].lstrip("/") / GROUP / account
        user.mkdir(parents=True, exist_ok=True)
        _write(user / "memory.limit_in_bytes", str(mem))
        procs.append(str(user / "cgroup.procs"))
    if cpu:
        user = root / "cpu" / groups["cpu"].lstrip("/") / GROUP / account
        user.mkdir(parents=True, exist_ok=True)
        _write(user / "cpu.cfs_period_us", str(PERIOD_US))
        _write(user / "cpu.cfs_quota_us", str(round(cpu * PERIOD_US)))
        procs.append(str(user / "cgroup.procs"))
    return Limits(mem, cpu, "cgroup v1", procs)


def prepare_limits(account: str, mem: int | None, cpu: float | None,
                   root: Path = CGROUP_ROOT) -> Limits:
    """Create (or update) ``account``'s groups with these limits; the best the machine allows.

    Parameters
    ----------
    account
        The user's system account (:func:`echoes_lab.hub.accounts.system_username`): the name
        of their group, shared by all their servers.
    mem
        Bytes, or ``None`` for no memory limit.
    cpu
        CPUs (1.5 = one and a half cores' time), or ``None`` for no CPU limit.
    """
    if not mem and not cpu:
        return Limits()
    if os.geteuid() == 0:
        try:
            groups = _own_groups()
            if (root / "cgroup.controllers").exists() and "" in groups:
                return _v2(root, groups[""], account, mem, cpu)
            if (not mem or "memory" in groups) and (not cpu or "cpu" in groups):
                return _v1(root, groups, account, mem, cpu)
        except OSError as exc:
            log.warning("cgroups unusable here (%s): per-process memory limit only", exc)
    return Limits(mem, cpu, "rlimit" if mem else "none", [], mem or None)
