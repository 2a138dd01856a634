"""Spawn latency: ECHOES Lab's ``local`` profile against a stock JupyterHub + JupyterLab, one run.

For each hub, on free loopback ports in a temporary folder:

* **1 user**: request a server through the REST API and time until the hub reports it ready
  (its route is in the proxy); stop it; repeat ``--repeat`` times; median.
* **burst of 10**: ten users ask at the same moment; each one's request -> ready time; median and
  the slowest.

"Stock" is what an administrator gets from the JupyterHub documentation with the same packages:
the default ``LocalProcessSpawner`` (with ``create_system_users`` under root, as the
docs describe, or ``SimpleLocalProcessSpawner`` as an ordinary user) and the default single-user
server with every installed extension. Both hubs use the same venv, proxy and JupyterLab.

Usage: ``.venv/bin/python benchmarks/spawn.py [--repeat 5] [--burst 10]``;
``--collaboration`` measures instead our profile with and without the collaboration
extensions (spawn latency, and the idle server's memory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import requests
import tomli_w

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROXY = Path(sys.prefix) / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, proc: subprocess.Popen, timeout: float, interval: float) -> bool:
    """Poll the hub's ``/hub/health`` at ``url`` until it answers or ``timeout`` seconds pass;
    False if the hub's process ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if requests.get(f"{url}/hub/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        time.sleep(interval)
    return True


class BenchHub:
    """A stock or an ECHOES hub on free ports in a temporary folder.

    ``overrides`` are settings sections merged into our profile's (e.g. ``{"gateway":
    {"enabled": False}}``); ``args`` are extra command-line options of the stock hub.
    """

    def __init__(self, kind: str, overrides: dict | None = None, args: list[str] | None = None):
        self.kind = kind
        self.overrides = overrides or {}
        self.args = args or []
        self.root = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
        os.chmod(self.root, 0o711)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = f"b{kind[0]}{secrets.token_hex(2)}"

    def start(self) -> None:
        if self.kind == "echoes":
            settings = tomllib.loads((REPO / "hub_config" / "local.toml").read_text())
            settings["hub"].update(state_dir=str(self.root / "state"), port=self.port,
                                   proxy_api_port=free_port(), hub_port=free_port(),
                                   log_level="WARN")
            settings["culler"]["enabled"] = False
            settings["data"]["install_demo"] = False
            settings["spawner"]["examples"] = str(REPO / "notebooks")
            for section, values in self.overrides.items():
                settings.setdefault(section, {}).update(values)
            path = self.root / "settings.toml"
            path.write_text(tomli_w.dumps(settings))
            cmd = [str(BIN / "echoes-lab"), "hub", "--settings", str(path)]
            self.token = None
        else:
            self.token = secrets.token_hex(32)
            as_root = os.geteuid() == 0
            config = f"""
c.JupyterHub.port = {self.port}
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]
c.JupyterHub.log_level = "WARN"
c.Spawner.cmd = [{str(BIN / 'jupyterhub-singleuser')!r}]
c.Spawner.default_url = "/lab"
c.JupyterHub.services = [{{"name": "bench", "api_token": {self.token!r}}}]
c.JupyterHub.load_roles = [{{"name": "bench", "services": ["bench"],
                            "scopes": ["admin:users", "admin:servers", "tokens"]}}]
c.Authenticator.allow_all = True
"""
            if as_root:
                config += ('c.JupyterHub.authenticator_class = "pam"\n'
                           "c.PAMAuthenticator.create_system_users = True\n")
            else:
                config += ('c.JupyterHub.authenticator_class = "dummy"\n'
                           'c.JupyterHub.spawner_class = "simple"\n'
                           "c.SimpleLocalProcessSpawner.home_dir_template = "
                           f'"{self.root}/home/{{username}}"\n')
            (self.root / "jupyterhub_config.py").write_text(config)
            cmd = [str(BIN / "jupyterhub"), "-f", str(self.root / "jupyterhub_config.py"),
                   *self.args]
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        self.log = open(self.root / "hub.log", "wb")  # noqa: SIM115 - closed with the hub
        self.proc = subprocess.Popen(cmd, cwd=self.root, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        if not wait_for_health(self.url, self.proc, timeout=90, interval=0.2):
            self.close()  # the proxy it started would outlive it
            msg = f"{self.kind} hub exited:\n{(self.root / 'hub.log').read_text()[-3000:]}"
            raise SystemExit(msg)
        if self.token is None:
            secrets_file = self.root / "state" / "secrets.json"
            self.token = json.loads(secrets_file.read_text())["api_tokens"]["echoes-cli"]

    def api(self, method, path, **kw):
        return requests.request(method, f"{self.url}/hub/api{path}", timeout=120,
                                headers={"Authorization": f"token {self.token}"}, **kw)

    def user(self, i: int) -> str:
        name = f"{self.prefix}u{i}"
        self.api("POST", f"/users/{name}")
        return name

    def spawn(self, name: str) -> float:
        """Seconds from the spawn request to the hub reporting the server ready."""
        t0 = time.perf_counter()
        r = self.api("POST", f"/users/{name}/server")
        if r.status_code == 201:
            return time.perf_counter() - t0
        if r.status_code != 202:
            msg = f"{self.kind}: spawn of {name} refused: {r.status_code} {r.text}"
            raise RuntimeError(msg)
        # the hub's own progress event stream says when the server is ready: no polling load
        with self.api("GET", f"/users/{name}/server/progress", stream=True) as events:
            for line in events.iter_lines():
                if line.startswith(b"data:"):
                    event = json.loads(line[5:])
                    if event.get("ready"):
                        return time.perf_counter() - t0
                    if event.get("failed"):
                        msg = f"{self.kind}: {name}'s server failed: {event}"
                        raise RuntimeError(msg)
        msg = f"{self.kind}: progress stream of {name} ended without ready"
        raise RuntimeError(msg)

    def stop_server(self, name: str) -> None:
        self.api("DELETE", f"/users/{name}/server")
        while self.api("GET", f"/users/{name}").json().get("servers"):
            time.sleep(0.1)

    def close(self) -> None:
        if self.proc.poll() is None:
            for user in self.api("GET", "/users").json():
                if user.get("servers"):
                    self.stop_server(user["name"])
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        for pid_file in self.root.rglob("*proxy.pid"):  # a proxy outlives a hub that failed
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def burst(hub: BenchHub, names: list[str]) -> list[float]:
    results: list[float] = [0.0] * len(names)
    errors: list[str] = []
    gate = threading.Barrier(len(names))

    def one(i, name):
        gate.wait()
        try:
            results[i] = hub.spawn(name)
        except Exception as exc:  # counted, reported below
            errors.append(str(exc))

    threads = [threading.Thread(target=one, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        msg = f"{len(errors)} spawn errors: {errors[:3]}"
        raise RuntimeError(msg)
    return results


def measure(kind: str, repeat: int, size: int) -> dict:
    hub = BenchHub(kind)
    hub.start()
    try:
        single_user = hub.user(0)
        hub.spawn(single_user)  # warm-up: first import of every module from disk
        hub.stop_server(single_user)
        singles = []
        for _ in range(repeat):
            singles.append(hub.spawn(single_user))
            hub.stop_server(single_user)
        names = [hub.user(i) for i in range(1, size + 1)]
        many = burst(hub, names)
        for name in names:
            hub.stop_server(name)
        return {"single": singles, "burst": many}
    finally:
        hub.close()


#: the server extensions of working together (issue 18): live editing (jupyter-collaboration,
#: with the file-id service it needs), notebook history (jupyterlab-git, nbdime)
COLLABORATION = ["jupyter_server_ydoc", "jupyter_server_fileid", "jupyterlab_git", "nbdime"]


def server_memory(name: str) -> tuple[float, float]:
    """MiB of unique memory (USS) of user ``name``'s idle server process, and the CPU seconds
    it has used since it started (a load-independent measure of the start-up work)."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        try:
            if ("echoes_lab.hub.singleuser" in " ".join(p.info["cmdline"] or [])
                    and p.environ().get("JUPYTERHUB_USER") == name):
                cpu = p.cpu_times()
                return p.memory_full_info().uss / 2**20, cpu.user + cpu.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    msg = f"no server process for {name}"
    raise RuntimeError(msg)


def measure_collaboration(repeat: int, idle: float = 10.0) -> dict:
    """Our profile with and without the collaboration extensions: spawn latency (median of
    ``repeat``) and the idle server's memory ``idle`` seconds after it is ready."""
    out = {}
    for label, disabled in (("with", []), ("without", COLLABORATION)):
        hub = BenchHub("echoes", {"spawner": {"disabled_extensions": disabled},
                                  "gateway": {"enabled": False}})
        hub.start()
        try:
            name = hub.user(0)
            hub.spawn(name)  # warm-up
            hub.stop_server(name)
            times = []
            for _ in range(repeat):
                times.append(hub.spawn(name))
                hub.stop_server(name)
            hub.spawn(name)
            time.sleep(idle)
            uss, cpu = server_memory(name)
            out[label] = {"spawn": times, "uss_mib": uss, "cpu_s": cpu}
            hub.stop_server(name)
        finally:
            hub.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="single-user spawns (default 5)")
    parser.add_argument("--burst", type=int, default=10, help="users in the burst (default 10)")
    parser.add_argument("--collaboration", action="store_true",
                        help="only: our profile with and without the collaboration extensions")
    args = parser.parse_args()
    if args.collaboration:
        res = measure_collaboration(args.repeat)
        print(f"{'ours':32} {'with':>8} {'without':>8} {'cost':>8}")
        w, wo = (statistics.median(res[k]["spawn"]) for k in ("with", "without"))
        print(f"{'spawn request -> ready (s)':32} {w:8.2f} {wo:8.2f} {w - wo:+8.2f}")
        w, wo = res["with"]["uss_mib"], res["without"]["uss_mib"]
        print(f"{'idle server, USS (MiB)':32} {w:8.1f} {wo:8.1f} {w - wo:+8.1f}")
        w, wo = res["with"]["cpu_s"], res["without"]["cpu_s"]
        print(f"{'server CPU to start + idle (s)':32} {w:8.2f} {wo:8.2f} {w - wo:+8.2f}")
        print("raw:", json.dumps(res))
        return
    who = "root" if os.geteuid() == 0 else "a user"
    print(f"machine: {os.cpu_count()} cores; running as {who}")
    results = {kind: measure(kind, args.repeat, args.burst) for kind in ("stock", "echoes")}
    rows = [("1 user, median", "single", statistics.median),
            (f"{args.burst} users at once, median", "burst", statistics.median),
            (f"{args.burst} users at once, slowest", "burst", max)]
    print(f"{'spawn request -> ready (s)':38} {'stock':>8} {'echoes':>8} {'stock/echoes':>13}")
    for label, key, stat in rows:
        s, e = stat(results["stock"][key]), stat(results["echoes"][key])
        print(f"{label:38} {s:8.2f} {e:8.2f} {s / e:12.2f}x")
    print("raw:", json.dumps({k: {m: [round(x, 3) for x in v] for m, v in r.items()}
                              for k, r in results.items()}))


if __name__ == "__main__":
    main()
