"""A real Slurm cluster for the tests: slurmctld on this machine, two slurmd compute nodes,
each in a network namespace of its own with its own address.

Made by the test as root and undone at the end: a bridge on the host with a private address,
one veth pair per node (the node's end moved into its namespace), munged with a key of its own,
and Debian's ``slurmctld``/``slurmd`` (package ``slurm-wlm``) with a ``slurm.conf`` of their
own. Traffic stays inside the bridge's private /24 and loopback. ``slurmd`` is entered into its
namespace with ``nsenter --net`` (``ip netns exec`` would remount /sys, hiding the cgroup file
system slurmd needs).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psutil

from harness import free_port, gone, wait_for, wait_gone

SLURM_BINARIES = ("slurmctld", "slurmd", "munged", "sbatch", "nsenter")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class SlurmCluster:
    """``start()`` makes it; ``close()`` undoes everything (safe to call after a failure)."""

    def __init__(self, nodes: int = 2):
        tag = f"{os.getpid() % 10000:04d}"
        self.root = Path(tempfile.mkdtemp(prefix="echoes-slurm-"))
        os.chmod(self.root, 0o711)  # users' jobs pass through to the munge socket
        self.bridge = f"esb{tag}"
        self.subnet = f"10.213.{random.randint(1, 250)}"  # a private range, only on our links
        self.host_addr = f"{self.subnet}.1"
        self.nodes = {f"esl{tag}n{i}": f"{self.subnet}.{10 + i}" for i in range(1, nodes + 1)}
        self.ctld_port, self.slurmd_port = free_port(), free_port()
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.daemons: dict[str, subprocess.Popen] = {}
        self._links: list[str] = []
        self._netns: list[str] = []

    # -- making ---------------------------------------------------------------------------
    def start(self) -> SlurmCluster:
        missing = [b for b in SLURM_BINARIES if not shutil.which(b)]
        if missing:
            msg = f"{', '.join(missing)} missing: 'make test' installs slurm-wlm and munge"
            raise RuntimeError(msg)
        self._network()
        self._munge()
        self._write_conf()
        self.daemons["slurmctld"] = self._daemon(
            "slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        for name in self.nodes:
            self.start_node(name)
        wait_for(lambda: all(s in ("idle", "mixed") for s in self.node_states().values()),
                 60, f"the nodes to be idle: {self.node_states()}")
        return self

    def _network(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._links.append(self.bridge)
        _ip("addr", "add", f"{self.host_addr}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, (name, addr) in enumerate(self.nodes.items(), 1):
            host_end, node_end = f"{self.bridge}h{i}", f"{self.bridge}c{i}"
            _ip("netns", "add", name)
            self._netns.append(name)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", node_end)
            self._links.append(host_end)
            _ip("link", "set", node_end, "netns", name)
            _ip("link", "set", host_end, "master", self.bridge)
            _ip("link", "set", host_end, "up")
            _ip("-n", name, "addr", "add", f"{addr}/24", "dev", node_end)
            _ip("-n", name, "link", "set", node_end, "up")
            _ip("-n", name, "link", "set", "lo", "up")

    def _munge(self) -> None:
        folder = self.root / "munge"
        folder.mkdir(mode=0o711)
        key = folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.munge_socket = folder / "munge.socket"
        self.daemons["munged"] = self._daemon("munged", [
            "munged", "-F", "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
            f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
            f"--seed-file={folder / 'munged.seed'}"])
        wait_for(self.munge_socket.exists, 30, "munged's socket")

    def _write_conf(self) -> None:
        r = self.root
        for name in self.nodes:
            (r / "spool" / name).mkdir(parents=True)
        (r / "state").mkdir()
        nodes = "\n".join(f"NodeName={n} NodeAddr={a} CPUs=2 RealMemory=4000 State=UNKNOWN"
                          for n, a in self.nodes.items())
        self.conf.write_text(f"""\
ClusterName=echoes
SlurmctldHost={os.uname().nodename}({self.host_addr})
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool/%n
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd-%n.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
SlurmdTimeout=10
SlurmctldTimeout=10
InactiveLimit=0
MinJobAge=5
GroupUpdateTime=2
KillWait=2
{nodes}
PartitionName=echoes Nodes={",".join(self.nodes)} Default=YES MaxTime=INFINITE State=UP
""")

    def _daemon(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.out", "ab")  # noqa: SIM115 (the daemon's own)
        with log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)

    def start_node(self, name: str) -> None:
        self.daemons[name] = self._daemon(name, [
            "nsenter", f"--net=/run/netns/{name}", "slurmd", "-D", "-N", name,
            "-f", str(self.conf)])

    def stop_node(self, name: str) -> None:
        """Stop a node's slurmd as a crash would (SIGKILL), and every job process on it."""
        proc = self.daemons.pop(name)
        proc.kill()
        proc.wait()
        self._kill_namespace(name)

    # -- reading --------------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True) -> str:
        # in the cluster's folder: sbatch writes a job's slurm-N.out where it was submitted
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60,
                              check=False, cwd=self.root)
        if check and done.returncode:
            msg = f"{' '.join(argv)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
            raise RuntimeError(msg)
        return done.stdout

    def node_states(self) -> dict[str, str]:
        out = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False)
        return dict(line.split() for line in out.splitlines() if line.strip())

    def jobs(self) -> dict[str, tuple[str, str]]:
        """Job id -> (state, node) of every job the controller knows."""
        out = self.run("squeue", "-h", "-o", "%i %T %N", check=False)
        rows = [line.split() + [""] for line in out.splitlines() if line.strip()]
        return {r[0]: (r[1], r[2]) for r in rows}

    def namespace_pids(self, name: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    # -- undoing --------------------------------------------------------------------------
    def _kill_namespace(self, name: str) -> None:
        pids = self.namespace_pids(name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_gone(pids, 30, f"the processes in namespace {name}")

    def close(self) -> list[str]:
        """Stop everything; the processes that would not end (none, normally)."""
        if "slurmctld" in self.daemons and (ids := list(self.jobs())):
            self.run("scancel", "--full", *ids, check=False)  # every user's
        for name in [n for n in self.daemons if n in self.nodes]:
            self.stop_node(name)
        for name in ("slurmctld", "munged"):
            proc = self.daemons.pop(name, None)
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        left = []
        for name in self._netns:
            self._kill_namespace(name)
            left += [str(p) for p in self.namespace_pids(name) if not gone(p)]
            _ip("netns", "delete", name)
        for link in reversed(self._links):
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
        self._links, self._netns = [], []
        shutil.rmtree(self.root, ignore_errors=True)
        return left


def slurm_profile(hub, cluster: SlurmCluster, **slurm) -> None:
    """Make a harness ``Hub`` (not yet started) one of the ``slurm`` profile on ``cluster``:
    its API and its proxy on the cluster's bridge address (``hub.url`` too: labs on the nodes
    reach the services through it), servers as jobs in the cluster's partition, the gateway
    (which that profile refuses) turned off. ``slurm``: more ``[slurm]`` keys."""
    import tomli_w

    s = hub.settings
    s["profile"] = "slurm"
    s["hub"]["ip"] = cluster.host_addr
    hub.url = f"http://{cluster.host_addr}:{s['hub']['port']}"
    s["slurm"] = {"conf": str(cluster.conf), "hub_ip": cluster.host_addr,
                  "shared_fs": str(hub.root),  # one machine: its disk is the shared one
                  "partitions": ["echoes"], "cores": 1, "max_cores": 2, "memory": 1.0,
                  "max_memory": 2.0, "hours": 1, "max_hours": 2, **slurm}
    s.setdefault("gateway", {})["enabled"] = False  # workers are Slurm jobs (dask-jobqueue)
    hub.settings_file.write_text(tomli_w.dumps(s))


def links_left(cluster: SlurmCluster) -> list[str]:
    """The cluster's network devices and namespaces still present after ``close``."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return ([d for d in out.split() if d.startswith(cluster.bridge)]
            + [n for n in cluster.nodes if n in names])


def daemons_left(cluster: SlurmCluster) -> list[psutil.Process]:
    from harness import processes

    conf = str(cluster.root)
    return processes(lambda p: any(conf in a for a in p.cmdline()))
