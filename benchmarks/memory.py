"""Memory per seat: ECHOES Lab's ``local`` profile against a stock JupyterHub + JupyterLab, one run.

For each hub (the two of ``benchmarks/spawn.py``: ours started by ``echoes-lab hub`` with its
full profile, stock = JupyterHub's default ``LocalProcessSpawner`` and ``jupyterhub-singleuser``
with every extension installed in the same venv), on free loopback ports:

1. one user's server is started through the REST API, and **the lab is opened in a real
   browser** (Playwright + Debian's chromium, the user's token in the request headers) and left
   open ``--idle`` seconds, no kernel running: the server process's RSS, PSS and USS
   (``psutil.Process.memory_full_info``; PSS/USS need root or the same uid);
2. a kernel is started in that server: ours is the ECHOES kernel after ``import echoes_lab``,
   stock's the default ``python3`` kernel after nothing; its memory likewise;
3. every process the hub runs besides users' servers: the hub (and our launcher), the proxy,
   each managed service (and what it started, e.g. dask-gateway's own proxy); our services
   sharing one process (``echoes_lab.hub.services.host``) are one row; the fork server our
   Python services are forked from (``echoes_lab.hub.launch.zygote``) is a row of its own, and
   PSS divides the pages it shares with them.

A seat = one idle server + one kernel; the fixed cost = hub + proxy + services. Seats that fit in
``--budget`` GiB = (budget - fixed) / seat, by PSS (shared libraries counted once across
processes; RSS counts them in every process and overstates a room).

    .venv/bin/python benchmarks/memory.py [--idle 10] [--seats 30] [--budget 24]
        [--only stock|echoes] [--no-fork-server]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil
import requests
import websocket

from echoes_lab.hub.client import execute as run_code

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spawn import BenchHub  # noqa: E402

MIB = 2**20
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def mem(procs: list[psutil.Process]) -> dict[str, float]:
    """RSS, PSS, USS in MiB, summed over ``procs``."""
    out = {"rss": 0.0, "pss": 0.0, "uss": 0.0, "n": 0}
    for p in procs:
        try:
            info = p.memory_full_info()
        except psutil.Error:
            continue
        out["rss"] += info.rss / MIB
        out["pss"] += info.pss / MIB
        out["uss"] += info.uss / MIB
        out["n"] += 1
    return out


def user_token(hub: BenchHub, name: str) -> str:
    r = hub.api("POST", f"/users/{name}/tokens", json={"note": "memory benchmark",
                                                        "expires_in": 3600})
    r.raise_for_status()
    return r.json()["token"]


def server_process(name: str) -> psutil.Process:
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if "singleuser" in cmd and p.environ().get("JUPYTERHUB_USER") == name:
                return p
        except psutil.Error:
            continue
    msg = f"no server process for {name}"
    raise RuntimeError(msg)


def execute(hub: BenchHub, name: str, token: str, kid: str, code: str, timeout=120) -> None:
    ws_url = f"ws://{urlparse(hub.url).netloc}/user/{name}/api/kernels/{kid}/channels"
    ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"],
                                     timeout=timeout)
    out = run_code(ws, code, name, timeout)
    if out["status"] is None:
        msg = f"no reply to {code!r} within {timeout} s"
        raise TimeoutError(msg)
    if out["status"] != "ok":
        failed = f"{code!r} failed: {out['errors']}"
        raise RuntimeError(failed)


def classify(hub: BenchHub, users: set[str]) -> dict[str, list[psutil.Process]]:
    """The hub's own processes by role; users' servers and kernels left out."""
    root = psutil.Process(hub.proc.pid)
    roles: dict[str, list[psutil.Process]] = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            env, cmd = p.environ(), " ".join(p.cmdline())
        except psutil.Error:
            continue
        if env.get("JUPYTERHUB_USER") in users and not env.get("JUPYTERHUB_SERVICE_NAME"):
            continue
        if "DASK_GATEWAY_CLUSTER_NAME" in env:
            continue
        if hosted := env.get("ECHOES_HOSTED_SERVICES"):  # several services, one process
            role = "services " + "+".join(h["name"] for h in json.loads(hosted))
        elif service := env.get("JUPYTERHUB_SERVICE_NAME"):
            role = f"service {service}"
        elif "echoes_lab.hub.launch.zygote" in cmd:  # our services are forked from it
            role = "fork server (zygote)"
        elif "services/gateway/" in cmd:  # the gateway's fork server of schedulers/workers
            role = "service dask-gateway"
        elif "configurable-http-proxy" in cmd:
            role = "proxy"
        elif ("echoes-lab hub" in cmd or "bin/echoes-lab" in cmd
              or "echoes_lab.hub.launch.supervision" in cmd):  # the launcher once the hub runs
            role = "launcher (echoes-lab hub)"
        elif "jupyterhub" in cmd:
            role = "hub"
        else:
            role = f"other: {cmd[:60]}"
        roles.setdefault(role, []).append(p)
    return roles


def measure(kind: str, idle: float) -> dict:
    from playwright.sync_api import sync_playwright

    # our whole profile, the idle culler included (spawn.py leaves it out of its timings)
    hub = BenchHub(kind, {"culler": {"enabled": True}} if kind == "echoes" else None)
    hub.start()
    try:
        name = hub.user(0)
        hub.spawn(name)
        token = user_token(hub, name)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                ctx = browser.new_context(extra_http_headers={"Authorization": f"token {token}"})
                page = ctx.new_page()
                page.goto(f"{hub.url}/user/{name}/lab", timeout=180_000)
                page.wait_for_selector(".jp-LabShell", timeout=180_000)
                page.wait_for_selector(".jp-Launcher", timeout=180_000)
                server = server_process(name)
                time.sleep(2)  # the lab's first requests settle
                cpu0, t0 = sum(server.cpu_times()[:2]), time.monotonic()
                time.sleep(idle)
                # CPU the idle seat costs: the open lab polls its server every few seconds
                cpu = 100 * (sum(server.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0)
                out = {"server": mem([server]), "server_idle_cpu_percent": cpu}
                kernels = [c for c in server.children(recursive=True)
                           if "ipykernel" in " ".join(c.cmdline())]
                out["kernels_while_idle"] = len(kernels)
                kernel = "echoes" if kind == "echoes" else "python3"
                r = requests.post(f"{hub.url}/user/{name}/api/kernels", json={"name": kernel},
                                  headers={"Authorization": f"token {token}"}, timeout=120)
                r.raise_for_status()
                kid = r.json()["id"]
                execute(hub, name, token, kid, "import echoes_lab" if kind == "echoes" else "1")
                time.sleep(2)
                kprocs = [c for c in server.children(recursive=True)
                          if kid in " ".join(c.cmdline())]
                out["kernel"] = mem(kprocs)
                out["kernel_name"] = kernel
                out["fixed"] = {role: mem(ps) for role, ps in classify(hub, {name}).items()}
            finally:
                browser.close()
        hub.stop_server(name)
        return out
    finally:
        hub.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=10.0, help="seconds the lab stays open")
    parser.add_argument("--seats", type=int, default=30)
    parser.add_argument("--budget", type=float, default=24.0, help="GiB of the machine")
    parser.add_argument("--only", choices=("stock", "echoes"))
    parser.add_argument("--no-fork-server", action="store_true",
                        help="our services started as commands, each importing everything "
                             "itself (as before issue 36), not forked from one fork server")
    args = parser.parse_args()
    if args.no_fork_server:  # read by echoes_lab.hub.launch.zygote.install in our hub
        os.environ["ECHOES_NO_FORK_SERVER"] = "1"
    kinds = [args.only] if args.only else ["stock", "echoes"]
    res = {kind: measure(kind, args.idle) for kind in kinds}

    def row(label, get):
        vals = [get(res[k]) for k in kinds]
        cells = "".join(f" {v['rss']:7.1f} {v['pss']:7.1f} {v['uss']:7.1f}" for v in vals)
        ratio = (f" {vals[1]['pss'] / vals[0]['pss']:6.2f}x {vals[1]['uss'] / vals[0]['uss']:6.2f}x"
                 if len(vals) == 2 and vals[0]["pss"] else "")
        print(f"{label:34}{cells}{ratio}")

    head = "".join(f" {k + ' RSS':>7} {'PSS':>7} {'USS':>7}" for k in kinds)
    print(f"{'MiB':34}{head}" + ("   ours/stock PSS, USS" if len(kinds) == 2 else ""))
    row("user server, lab open, no kernel", lambda r: r["server"])
    row("kernel (ours: after import echoes_lab)", lambda r: r["kernel"])
    roles = sorted({role for k in kinds for role in res[k]["fixed"]})
    empty = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
    for role in roles:
        row(f"  {role}", lambda r, role=role: r["fixed"].get(role, empty))
    total = {k: {m: sum(v[m] for v in res[k]["fixed"].values()) for m in ("rss", "pss", "uss")}
             for k in kinds}
    row("hub + proxy + services", lambda r: total[next(k for k in kinds if res[k] is r)])
    if len(kinds) == 2:
        # issue 36: the services alone (all but the hub and its proxy) against stock's hub + proxy
        ours = res["echoes"]["fixed"]
        own = total["echoes"]["pss"] - sum(ours.get(r, empty)["pss"] for r in ("hub", "proxy"))
        print(f"{'our services (all but hub, proxy)':34} {own:7.1f} MiB PSS = "
              f"{own / total['stock']['pss']:.2f}x stock hub + proxy; hub side "
              f"{total['echoes']['pss'] / total['stock']['pss']:.2f}x")
    budget = args.budget * 1024
    print(f"{'idle server CPU, lab open (%)':34}" + "".join(
        f" {res[k]['server_idle_cpu_percent']:23.2f}" for k in kinds))
    print()
    for k in kinds:
        seat = res[k]["server"]["pss"] + res[k]["kernel"]["pss"]
        fixed = total[k]["pss"]
        room = fixed + args.seats * seat
        print(f"{k:7} seat (server + kernel) {seat:6.1f} MiB PSS; {args.seats} seats + fixed "
              f"{room / 1024:5.2f} GiB ({room / args.seats:6.1f} MiB per seat); "
              f"seats in {args.budget:g} GiB: {int((budget - fixed) // seat)}")
    print("raw:", json.dumps(res, default=lambda o: round(o, 1)))


if __name__ == "__main__":
    main()
