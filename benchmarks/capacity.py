"""How the hub scales with users: REST API latency at 100, 500 and 1,000 registered users with
50 servers running, the proxy's routing latency, the hub's memory and CPU, on the ``local``
profile (every service on: culler, gateway, reports, workshops, commons, projects).

Users' servers are a **light stand-in** (``benchmarks/_standin_server.py``, set as
``c.Spawner.cmd`` after our own ``configure``): a 10 MB HTTP server answering the hub's checks,
so the figures are the hub's and the proxy's, not the memory of 50 labs (a lab's own cost is
``benchmarks/memory.py``'s). The hub runs ``jupyterhub`` directly with our configuration
(``echoes_lab.hub.config.configure``), servers without system accounts
(``spawner.isolation = "none"``).

For each level: ``--n`` sequential requests per endpoint (median and 95th percentile, ms), then
``--clients`` threads at once on one endpoint (requests per second, the hub's single event loop
being the expected first bottleneck), the hub's RSS and its CPU share over ``--idle`` seconds
with nobody calling (what the services' polling costs).

    .venv/bin/python benchmarks/capacity.py [--levels 100 500 1000] [--running 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import psutil
import requests
import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spawn import free_port, wait_for_health  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STANDIN = Path(__file__).resolve().with_name("_standin_server.py")


class ScaleHub:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="echoes-capacity-"))
        os.chmod(self.root, 0o711)
        s = tomllib.loads((REPO / "hub_config" / "local.toml").read_text())
        s["hub"].update(state_dir=str(self.root / "state"), port=free_port(),
                        proxy_api_port=free_port(), hub_port=free_port(), log_level="WARN")
        s["spawner"].update(isolation="none", examples="")
        s["data"]["install_demo"] = False
        s["gateway"].update(port=free_port(), scheduler_port=free_port(), api_port=free_port())
        self.settings = self.root / "settings.toml"
        self.settings.write_text(tomli_w.dumps(s))
        self.url = f"http://127.0.0.1:{s['hub']['port']}"
        config = self.root / "jupyterhub_config.py"
        config.write_text(
            "from echoes_lab.hub.config import configure\n"
            f"configure(c, {str(self.settings)!r})\n"
            f"c.Spawner.cmd = [{sys.executable!r}, {str(STANDIN)!r}]\n"
            "c.Spawner.args = []\n")
        self.log = open(self.root / "hub.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(config)],
                                     cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if not wait_for_health(self.url, self.proc, timeout=300, interval=0.5):
            raise SystemExit((self.root / "hub.log").read_text()[-3000:])
        secrets = json.loads((self.root / "state" / "secrets.json").read_text())
        self.headers = {"Authorization": f"token {secrets['api_tokens']['echoes-cli']}"}
        self.session = requests.Session()
        self.session.headers.update(self.headers)

    def api(self, method, path, **kw):
        return self.session.request(method, f"{self.url}/hub/api{path}", timeout=120, **kw)

    def hub_process(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def spawn(self, name: str) -> float:
        t0 = time.perf_counter()
        r = self.api("POST", f"/users/{name}/server")
        if r.status_code not in (201, 202):
            msg = f"spawn of {name}: {r.status_code} {r.text}"
            raise RuntimeError(msg)
        while not self.api("GET", f"/users/{name}").json().get("servers", {}).get("", {}).get(
                "ready"):
            time.sleep(0.05)
        return time.perf_counter() - t0

    def stop_server(self, name: str) -> None:
        self.api("DELETE", f"/users/{name}/server")
        while self.api("GET", f"/users/{name}").json().get("servers"):
            time.sleep(0.05)

    def stop(self) -> None:
        try:
            for user in self.api("GET", "/users", params={"state": "active"}).json():
                self.api("DELETE", f"/users/{user['name']}/server")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.api(
                    "GET", "/users", params={"state": "active"}).json():
                time.sleep(0.5)
        finally:
            procs = [self.hub_process(), *self.hub_process().children(recursive=True)]
            os.killpg(self.proc.pid, signal.SIGTERM)
            _, alive = psutil.wait_procs(procs, timeout=30)
            for p in alive:
                p.kill()
            self.log.close()
            shutil.rmtree(self.root, ignore_errors=True)


def timings(fn, n: int) -> dict[str, float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    out.sort()
    return {"median": statistics.median(out), "p95": out[max(0, int(len(out) * 0.95) - 1)]}


def throughput(hub: ScaleHub, path: str, clients: int, seconds: float = 5.0) -> float:
    count = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i):
        s = requests.Session()
        s.headers.update(hub.headers)
        while time.monotonic() < stop:
            r = s.get(f"{hub.url}/hub/api{path}", timeout=60)
            r.raise_for_status()
            count[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / seconds


def measure(levels: list[int], running: int, n: int, clients: int, idle: float) -> dict:
    hub = ScaleHub()
    results = {}
    one = "u0001"  # a user with a running server
    try:
        registered = 0
        for level in levels:
            names = [f"u{i:04d}" for i in range(registered, level)]
            for i in range(0, len(names), 100):
                r = hub.api("POST", "/users", json={"usernames": names[i:i + 100]})
                assert r.status_code == 201, r.text
            registered = level
            if not results:  # the servers once, at the first level
                for i in range(running):
                    hub.spawn(f"u{i:04d}")
            res = {
                "GET /users/NAME": timings(lambda: hub.api("GET", f"/users/{one}"), n),
                "GET /users?state=active": timings(
                    lambda: hub.api("GET", "/users", params={"state": "active"}), n),
                "GET /users (one page, 200)": timings(
                    lambda: hub.api("GET", "/users", params={"limit": 200}), n),
                "GET /user (token owner)": timings(lambda: hub.api("GET", "/user"), n),
                "proxy -> running server": timings(
                    lambda: requests.get(f"{hub.url}/user/{one}/api", headers=hub.headers,
                                         timeout=60), n),
            }
            spare = f"u{level - 1:04d}"
            spawns = []
            for _ in range(3):
                spawns.append(hub.spawn(spare) * 1000)
                hub.stop_server(spare)
            res["spawn + ready (stand-in)"] = {"median": statistics.median(spawns),
                                               "p95": max(spawns)}
            res["req/s, GET /users/NAME"] = throughput(hub, f"/users/{one}", clients)
            proc = hub.hub_process()
            proc.cpu_percent()
            time.sleep(idle)
            res["hub idle CPU %"] = proc.cpu_percent()
            res["hub RSS MiB"] = proc.memory_info().rss / 2**20
            proxy = [p for p in proc.children() if "configurable-http-proxy" in " ".join(
                p.cmdline())]
            res["proxy RSS MiB"] = proxy[0].memory_info().rss / 2**20 if proxy else 0.0
            results[level] = res
            print(f"{level} users registered, {running} servers running:", json.dumps(
                res, default=lambda o: round(o, 1)), flush=True)
    finally:
        hub.stop()
    return results


def _peak(procs_of, stop: threading.Event, peak: dict) -> None:
    """Sample the PSS (MiB) of ``procs_of()`` every 0.1 s until ``stop``; keep the peak."""
    while not stop.is_set():
        total = 0.0
        for p in procs_of():
            with contextlib.suppress(psutil.Error):
                total += p.memory_full_info().pss / 2**20
        peak["pss"] = max(peak.get("pss", 0.0), total)
        time.sleep(0.1)


def report_run() -> dict:
    """One report run as the reports service does it (``echoes_lab.runs.run``: a fresh kernel,
    Papermill, HTML, RO-Crate) on the test report notebook: the kernel's peak PSS and CPU."""
    from echoes_lab.runs import run

    work = Path(tempfile.mkdtemp(prefix="echoes-capacity-report-"))
    try:
        subprocess.run([sys.executable, "-m", "echoes_lab.demo", "--out", str(work / "data")],
                       check=True, capture_output=True)
        os.environ["ECHOES_DATA"] = str(work / "data")
        nb = work / "report.ipynb"
        shutil.copy(REPO / "tests" / "data" / "runs" / "report.ipynb", nb)
        me = psutil.Process()
        stop, peak = threading.Event(), {}
        sampler = threading.Thread(target=_peak, args=(me.children, stop, peak))
        before = me.cpu_times()
        t0 = time.perf_counter()
        sampler.start()
        try:
            run(nb, parameters={"scale": 2.0}, kernel="echoes")
        finally:
            stop.set()
            sampler.join()
        after = me.cpu_times()
        return {"wall s": time.perf_counter() - t0, "kernel peak PSS MiB": peak.get("pss", 0.0),
                "kernel CPU s": (after.children_user + after.children_system)
                - (before.children_user + before.children_system),
                "runner CPU s": (after.user + after.system) - (before.user + before.system)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def gateway_worker() -> dict:
    """A gateway worker as the local backend starts it (``dask worker``, nanny forking its worker,
    the gateway's environment, no worker dashboard) against a scheduler: its processes' PSS once
    connected and idle, and the CPU seconds it took to start."""
    from echoes_lab.hub.services.gateway.config import WORKER_ENVIRONMENT

    env = {**os.environ, **WORKER_ENVIRONMENT}
    port = free_port()
    sched = subprocess.Popen([str(BIN / "dask"), "scheduler", "--port", str(port),
                              "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout=120) as client:
            worker = subprocess.Popen([str(BIN / "dask"), "worker", f"tcp://127.0.0.1:{port}",
                                       "--nthreads", "1", "--memory-limit", "2GiB",
                                       "--no-dashboard"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client.wait_for_workers(1, timeout=120)
            time.sleep(3)
            procs = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(True)]
            pss = sum(p.memory_full_info().pss for p in procs) / 2**20
            cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
            assert client.submit(sum, [1, 2]).result() == 3
        return {"worker (nanny + worker) PSS MiB": pss, "worker CPU s to start": cpu,
                "processes": len(procs)}
    finally:
        for proc in (worker, sched):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--running", type=int, default=50)
    parser.add_argument("--n", type=int, default=30, help="requests per endpoint")
    parser.add_argument("--clients", type=int, default=20, help="threads for the req/s figure")
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--parts", nargs="+", default=["report", "worker", "hub"],
                        choices=["report", "worker", "hub"])
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    if "report" in args.parts:
        print("one report run:", json.dumps(report_run(), default=lambda o: round(o, 2)))
    if "worker" in args.parts:
        print("one gateway worker:", json.dumps(gateway_worker(), default=lambda o: round(o, 2)))
    if "hub" not in args.parts:
        return
    res = measure(args.levels, args.running, args.n, args.clients, args.idle)
    keys = list(next(iter(res.values())))
    print(f"\n{'(ms unless said)':32}" + "".join(f"{lvl:>14}" for lvl in res))
    for key in keys:
        cells = ""
        for lvl in res:
            v = res[lvl][key]
            cells += (f"{v['median']:7.1f}/{v['p95']:6.1f}" if isinstance(v, dict)
                      else f"{v:14.1f}")
        print(f"{key:32}{cells}")
    print("(timings: median/p95 ms)")


if __name__ == "__main__":
    main()
