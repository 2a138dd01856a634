"""A workshop's first minute: N seats sign in through the login form and start their labs at once.

For each hub, on free loopback ports in a temporary folder (hubs from ``benchmarks/spawn.py``):

* **ours**: the ``local`` profile; ``echoes-lab workshop create --warm`` makes N seats with
  per-seat passwords (the cards' CSV) and the course materials in every home, and starts every
  seat's server through the hub's API before the room arrives (4 at a time), as the README
  tells trainers to do. ``--cold`` measures ours without ``--warm``.
* **stock**: JupyterHub 6.1.1 as its documentation sets it up (``spawn.py``'s stock hub:
  PAM with ``create_system_users`` under root, default ``LocalProcessSpawner``, default
  JupyterLab server); the administrator creates the N users through the REST API and gives
  each system account a password with ``chpasswd``, as a trainer would without our tool.

Then N browsers-in-a-thread wait at a barrier and each: GETs the login page, POSTs the form,
asks for its server (``POST /hub/api/users/<seat>/server`` with the session cookie and XSRF
header, as the hub's home page does), follows the hub's progress stream to "ready", opens the
lab through the proxy (the OAuth round trip), starts a kernel and runs ``print(6*7)`` in it
over the kernel's websocket. Measured: seconds from the barrier to each seat's answer; errors
are counted.

The stock hub is measured twice: with JupyterHub's default spawn timeouts (start 60 s, HTTP
30 s), and with ours (120 s, 60 s), so that the ratio compares speed, not only timeouts.

Usage: ``.venv/bin/python benchmarks/workshop.py [--seats 30]`` (as root, like the hub here).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import requests
import websocket

from echoes_lab.hub.client import execute as run_code

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spawn import BIN, REPO, BenchHub  # noqa: E402  the same stock and echoes hubs

MATERIALS = REPO / "tests" / "data" / "workshops" / "materials-v1"


def seat_journey(url: str, name: str, password: str, kernel: str, timeout: float = 300) -> float:
    """Sign in, start the server, open the lab, run code in a kernel; seconds it took."""
    t0 = time.perf_counter()
    s = requests.Session()
    s.get(f"{url}/hub/login", timeout=timeout)
    r = s.post(
        f"{url}/hub/login",
        data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf")},
        timeout=timeout,
        allow_redirects=False,
    )
    if r.status_code != 302:
        msg = f"{name}: login answered {r.status_code}"
        raise RuntimeError(msg)
    xsrf = {"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")}
    r = s.post(f"{url}/hub/api/users/{name}/server", headers=xsrf, timeout=timeout)
    if r.status_code == 202:
        with s.get(
            f"{url}/hub/api/users/{name}/server/progress", stream=True, timeout=timeout
        ) as events:
            for line in events.iter_lines():
                if line.startswith(b"data:"):
                    event = json.loads(line[5:])
                    if event.get("failed"):
                        msg = f"{name}: spawn failed: {event.get('message')}"
                        raise RuntimeError(msg)
                    if event.get("ready"):
                        break
            else:
                msg = f"{name}: progress ended without 'ready'"
                raise RuntimeError(msg)
    elif r.status_code == 400 and "already running" in r.text:
        pass  # a warmed seat: the hub's home page would show "My Server" and go straight there
    elif r.status_code != 201:
        msg = f"{name}: spawn answered {r.status_code} {r.text[:200]}"
        raise RuntimeError(msg)
    lab = s.get(
        f"{url}/user/{name}/lab", timeout=timeout
    )  # OAuth round trip sets the server's cookie
    if lab.status_code != 200:
        msg = f"{name}: lab answered {lab.status_code}"
        raise RuntimeError(msg)
    headers = {"X-XSRFToken": s.cookies.get("_xsrf", path=f"/user/{name}/") or ""}
    r = s.post(
        f"{url}/user/{name}/api/kernels", json={"name": kernel}, headers=headers, timeout=timeout
    )
    if r.status_code != 201:
        msg = f"{name}: kernel start answered {r.status_code} {r.text[:200]}"
        raise RuntimeError(msg)
    kid = r.json()["id"]
    # the kernel runs when it answers: execute 6*7 over its websocket, as the lab does
    ws = websocket.create_connection(
        f"ws://{url.split('://', 1)[1]}/user/{name}/api/kernels/{kid}/channels",
        timeout=timeout,
        cookie="; ".join(f"{c.name}={c.value}" for c in s.cookies),
    )
    out = run_code(ws, "print(6*7)", name, timeout)
    if out["status"] != "ok" or out["stdout"].strip() != "42":
        msg_0 = f"{name}: kernel answered {out['status']} {out['stdout']!r} {out['errors']}"
        raise RuntimeError(msg_0)
    return time.perf_counter() - t0


def burst(hub: BenchHub, credentials: dict[str, str], kernel: str) -> tuple[list[float], list[str]]:
    times, errors = [], []
    gate = threading.Barrier(len(credentials))
    lock = threading.Lock()

    def one(name, password):
        gate.wait()
        try:
            t = seat_journey(hub.url, name, password, kernel)
            with lock:
                times.append(t)
        except Exception as exc:  # counted and reported
            with lock:
                errors.append(str(exc)[:300])

    threads = [threading.Thread(target=one, args=item) for item in credentials.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, errors


def prepare_echoes(hub: BenchHub, seats: int, warm: bool = True) -> dict[str, str]:
    ends = (datetime.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    name = f"w{hub.prefix[2:]}"
    done = subprocess.run(
        [
            str(BIN / "echoes-lab"),
            "workshop",
            "--settings",
            str(hub.root / "settings.toml"),
            "create",
            name,
            "--seats",
            str(seats),
            "--trainer",
            f"{name}-trainer",
            "--materials",
            str(MATERIALS),
            "--ends",
            ends,
            *(["--warm"] if warm else []),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:  # e.g. a seat not warmed: the burst still runs and counts it
        print(f"echoes-lab workshop create answered {done.returncode}:\n{done.stdout}{done.stderr}")
    if not (hub.root / "state" / "workshops" / name / "cards.csv").exists():
        raise RuntimeError(done.stderr)
    cards = hub.root / "state" / "workshops" / name / "cards.csv"
    with open(cards, newline="") as fh:
        return {row["username"]: row["password"] for row in csv.DictReader(fh)}


def prepare_stock(hub: BenchHub, seats: int) -> dict[str, str]:
    import secrets

    creds = {}
    for i in range(1, seats + 1):
        name = hub.user(i)  # PAM's create_system_users makes the account
        creds[name] = secrets.token_urlsafe(9)
    if os.geteuid() == 0:
        subprocess.run(
            ["chpasswd"],
            input="".join(f"{n}:{p}\n" for n, p in creds.items()),
            text=True,
            check=True,
        )
    return creds


#: our hub without the Dask Gateway service (no seat uses a cluster here)
ECHOES = {"gateway": {"enabled": False}}
WARM = True
#: the stock hub with our profile's spawn timeouts instead of JupyterHub's defaults (60 s, 30 s)
OUR_TIMEOUTS = ["--Spawner.start_timeout=120", "--Spawner.http_timeout=60"]


def measure(kind: str, seats: int) -> dict:
    if kind == "stock, our timeouts":
        hub = BenchHub("stock", args=OUR_TIMEOUTS)
    else:
        hub = BenchHub(kind, overrides=ECHOES if kind == "echoes" else None)
    hub.start()
    try:
        t0 = time.perf_counter()
        creds = prepare_echoes(hub, seats, WARM) if kind == "echoes" else prepare_stock(hub, seats)
        setup = time.perf_counter() - t0
        times, errors = burst(hub, creds, "echoes" if kind == "echoes" else "python3")
        return {"setup": setup, "times": times, "errors": errors}
    finally:
        hub.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seats", type=int, default=30)
    parser.add_argument("--cold", action="store_true", help="ours without create --warm")
    args = parser.parse_args()
    global WARM
    WARM = not args.cold
    print(
        f"machine: {os.cpu_count()} cores; running as {'root' if os.geteuid() == 0 else 'a user'}"
    )
    kinds = ("stock", "stock, our timeouts", "echoes")
    results = {kind: measure(kind, args.seats) for kind in kinds}
    print(
        f"{args.seats} seats sign in and run a kernel at once  "
        f"{'stock':>8} {'stock*':>8} {'echoes':>8} "
        f"{'stock*/echoes':>14}"
    )

    def row(label, fn):
        s, p, e = (fn(results[k]) for k in kinds)
        ratio = f"{p / e:13.2f}x" if p and e and p == p and e == e else f"{'-':>14}"
        print(f"{label:48} {s:8.2f} {p:8.2f} {e:8.2f} {ratio}")

    row("last seat with a running kernel (s)", lambda r: max(r["times"], default=float("nan")))
    row("median seat (s)", lambda r: statistics.median(r["times"]) if r["times"] else float("nan"))
    row("seats ready", lambda r: float(len(r["times"])))
    row("errors", lambda r: float(len(r["errors"])))
    row("preparing the seats (s)" + (" incl. --warm" if WARM else ""), lambda r: r["setup"])
    for kind, r in results.items():
        for err in r["errors"][:5]:
            print(f"  {kind} error: {err}")
    print("stock* = stock with our spawn timeouts (start 120 s, HTTP 60 s)")
    print(
        "raw:", json.dumps({k: sorted(round(t, 2) for t in r["times"]) for k, r in results.items()})
    )


if __name__ == "__main__":
    main()
