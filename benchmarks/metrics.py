"""Cost of the services' Prometheus instrumentation, and the disk a year of samples takes.

1. **Latency per request, with and without metrics, same run**: two tornado servers in one
   process answer the same small JSON handler, one a plain ``tornado.web.Application``, the
   other the services' ``ServiceApplication`` (every request observed in
   ``echoes_service_request_duration_seconds``); requests alternate between them in blocks so
   load on the machine falls on both alike. Also the cost of one ``observe_request`` alone.
2. **A year of Prometheus data** (``--hub``): a real hub with the metrics service (Debian's
   ``prometheus``) after a little activity; the series Prometheus holds
   (``prometheus_tsdb_head_series``) times the samples a year at the profile's scrape
   interval times 1-2 bytes a sample. Formula and bytes per sample from the Prometheus
   documentation ("Storage", "Operational aspects": ``needed_disk_space =
   retention_time_seconds * ingested_samples_per_second * bytes_per_sample``, "Prometheus stores
   an average of only 1-2 bytes per sample"). No series is labelled by user, so the count does
   not grow with the number of users (100 or 10).

    .venv/bin/python benchmarks/metrics.py [--rounds 10 --block 200] [--hub]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


async def latency(rounds: int, block: int) -> dict:
    from tornado import web
    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from echoes_lab.hub.services.base import ServiceApplication

    class Hello(web.RequestHandler):
        def get(self):
            self.finish({"status": "ok"})

    plain = web.Application([("/x", Hello)], log_function=lambda h: None)
    observed = ServiceApplication([("/x", Hello)], service_name="bench")
    import logging

    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    urls = {}
    for name, app in (("without", plain), ("with", observed)):
        sockets = bind_sockets(0, "127.0.0.1")
        HTTPServer(app).add_sockets(sockets)
        urls[name] = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/x"
    client = AsyncHTTPClient()
    times: dict[str, list[float]] = {"without": [], "with": []}
    cpu: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(block):  # warm-up of both, not counted
        for name in urls:
            await client.fetch(urls[name])
    for _ in range(rounds):
        for name in ("without", "with"):
            c = time.process_time()
            for _ in range(block):
                t = time.perf_counter()
                await client.fetch(urls[name])
                times[name].append(time.perf_counter() - t)
            # client and server share this process: CPU per request of the whole exchange
            cpu[name].append((time.process_time() - c) / block)
    return {k: (statistics.median(v) * 1e6, statistics.mean(v) * 1e6,
                statistics.median(cpu[k]) * 1e6) for k, v in times.items()}


def observe_cost(n: int = 100_000) -> float:
    """Microseconds one ``observe_request`` takes (a histogram observation with 4 labels)."""
    from echoes_lab.hub.services import observe

    class Request:
        method = "GET"

        def request_time(self):
            return 0.003

    class Handler:
        settings = {"service_name": "bench"}
        request = Request()

        def get_status(self):
            return 200

    h = Handler()
    t = time.perf_counter()
    for _ in range(n):
        observe.observe_request(h)
    return (time.perf_counter() - t) / n * 1e6


def year_on_a_hub() -> dict:
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    import requests

    from harness import Hub, free_port, login, new_root, wait_for

    prom = free_port()
    hub = Hub(new_root(), gateway={"enabled": False},
              metrics={"enabled": True, "scrape_interval": 1, "prometheus_port": prom})
    hub.start(timeout=180)
    try:
        for i in range(3):
            hub.create_user(f"bench-m{i}")
            login(hub, f"bench-m{i}", hub.secrets["user_password"], next_url="/hub/home")
        hub.api("GET", "/users")

        def query(q: str) -> float | None:
            r = requests.get(f"http://127.0.0.1:{prom}/api/v1/query", params={"query": q},
                             timeout=10).json()
            res = r["data"]["result"]
            return float(res[0]["value"][1]) if res else None

        # every target scraped at least twice since the sign-ins (scrape_interval is 1 s)
        wait_for(lambda: (query("count(up == 1)") or 0) >= 7
                 and (query("min(count_over_time(up[1m]))") or 0) >= 5, 120, "scrapes")
        up = query("count(up == 1)")
        n = query('count({__name__=~".+"})')
        per_job = requests.get(f"http://127.0.0.1:{prom}/api/v1/query", params={
            "query": "sum by (job) (scrape_samples_scraped)"}, timeout=10).json()["data"]["result"]
        return {"targets": int(up), "series": n,
                "per_job": {r["metric"]["job"]: int(float(r["value"][1])) for r in per_job}}
    finally:
        hub.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--block", type=int, default=200)
    ap.add_argument("--hub", action="store_true", help="count series on a real hub")
    ap.add_argument("--interval", type=int, default=15, help="scrape interval (s) for the year")
    args = ap.parse_args()
    lat = asyncio.run(latency(args.rounds, args.block))
    n = args.rounds * args.block
    print(f"latency per request, {n} each, alternating blocks of {args.block} (µs):")
    for k in ("without", "with"):
        print(f"  {k:8s} metrics: median {lat[k][0]:8.1f}   mean {lat[k][1]:8.1f}   "
              f"CPU median of blocks {lat[k][2]:8.1f}")
    print(f"  difference: median {lat['with'][0] - lat['without'][0]:+.1f} µs "
          f"({lat['with'][0] / lat['without'][0]:.3f}x); CPU "
          f"{lat['with'][2] - lat['without'][2]:+.1f} µs "
          f"({lat['with'][2] / lat['without'][2]:.3f}x)")
    print(f"one observe_request alone: {observe_cost():.2f} µs")
    if args.hub:
        found = year_on_a_hub()
        samples = 365 * 86400 / args.interval
        s = found["series"]
        print(f"hub with {found['targets']} scrape targets up: {s:.0f} series in Prometheus; "
              f"samples per scrape by job: {found['per_job']}")
        lo, hi = s * samples * 1 / 1e6, s * samples * 2 / 1e6
        print(f"a year at {args.interval} s: {s:.0f} series x {samples:.0f} samples x 1-2 B "
              f"= {lo:.0f}-{hi:.0f} MB")


if __name__ == "__main__":
    main()
