"""Commons throughput: create and query 100,000 annotations on one canvas set (issue 15).

Reference point, named: **a plain SQLite insert loop** — one table ``(id, json)``, one
``INSERT`` and one ``COMMIT`` per annotation with the same durability (WAL,
``synchronous=FULL``), and queries by ``json_extract`` over the table (what a small annotation
server without indexes does; SimpleAnnotationServer's SQLite back end stores JSON the same way).

Ours, at two levels, on the same machine in the same run:

1. the store (:class:`echoes_lab.commons.store.Store`): each create is one
   transaction writing the annotation, its version 1 and its search keys;
2. the service behind a real hub and proxy (hub token, W3C protocol): ``--http`` POSTs from 4
   client threads, and the queries a IIIF viewer and a notebook make (all annotations of one
   canvas, first page; a text search; one annotation) against the 100,000 already stored.

Bulk contributions (issue 29): ``--bulk N`` fills the store with ``Store.create_many`` in
batches of 5,000 (people and software actors mixed: every third annotation has a generator)
instead of the one-transaction-per-annotation loop, so 1 M annotations fit in minutes; and
sends N annotations through the hub's ``POST bulk`` with ``commons.contribute`` (NDJSON,
<= 1 MB a request), in the same run as the one-by-one POSTs.

Run: ``.venv/bin/python benchmarks/commons.py`` (``--n 100000 --http 2000``);
``--n 1000000 --bulk 20000 --http 500`` for the issue-29 figures; ``--n 0 --bulk 20000 --http 0
--plain 5000`` (~1 min) for the bulk through the hub alone, into an empty store, beside the
plain loop. The "bulk:" line gives the CPU seconds the commons, the knowledge service (until
it has caught up with the batch's events), the proxy and the client spent on it.
``--store postgres`` runs the store and the hub's service on a throwaway PostgreSQL cluster
(``initdb`` of ``pg_config --bindir``, as the tests start one) instead of SQLite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

CC_BY_IRI = "https://creativecommons.org/licenses/by/4.0/"
CANVASES = 100  # the canvas set: 100 pages of one manuscript
BASE = "http://127.0.0.1:8000/services/commons/"
PROFILE = ""  # --profile: where py-spy writes the service's stacks during the bulk


def annotation(i: int) -> dict:
    canvas = f"https://iiif.example.org/manifest/ms-1/canvas/p{i % CANVASES}"
    return {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
            "motivation": ["describing", "transcribing", "classifying"][i % 3],
            "body": [{"type": "TextualBody", "value": f"region {i} reads word{i % 997}"},
                     {"type": "TextualBody", "value": f"tag{i % 50}", "purpose": "tagging"}],
            "target": {"type": "SpecificResource", "source": {"id": canvas, "type": "Canvas"},
                       "selector": {"type": "FragmentSelector",
                                    "value": f"xywh={i % 800},{i % 600},40,20"}},
            "visibility": "public"}


@contextlib.contextmanager
def postgres_cluster():
    """A throwaway PostgreSQL cluster (unix socket, loopback port), as
    ``tests/test_commons_store.py`` starts one; its SQLAlchemy URL. Under root the cluster
    belongs to ``nobody`` (PostgreSQL refuses to run as root)."""
    import socket

    bindir = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                 check=True).stdout.strip())
    root = Path(tempfile.mkdtemp(prefix="echoes-bench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "nobody", "--"]
        os.chmod(root, 0o755)
        data.mkdir()
        for path in (sock, data):
            shutil.chown(path, "nobody")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres"], check=True, capture_output=True)
    ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log")]
    subprocess.run([*ctl, "-w", "-o", f"-p {port} -k {sock} -h ''", "start"], check=True,
                   capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([*ctl, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) > 1 else xs[0]


def report(name: str, n: int, seconds: float, lat: list[float]) -> dict:
    row = {"what": name, "n": n, "per_s": n / seconds, "p50_ms": 1000 * statistics.median(lat),
           "p95_ms": 1000 * p95(lat)}
    print(f"{name:<46} {n:>7} {row['per_s']:>10.0f}/s  p50 {row['p50_ms']:7.2f} ms  "
          f"p95 {row['p95_ms']:7.2f} ms", flush=True)
    return row


def plain_sqlite(path: Path, n: int) -> list[dict]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE annotation (id TEXT PRIMARY KEY, json TEXT NOT NULL)")
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        db.execute("BEGIN")
        db.execute("INSERT INTO annotation VALUES (?, ?)", (f"a{i}", json.dumps(annotation(i))))
        db.execute("COMMIT")
        lat.append(time.perf_counter() - t)
    rows = [report("reference: plain SQLite insert loop", n, time.perf_counter() - t0, lat)]
    rows.append(query_loop("reference: canvas query (json_extract scan)", lambda k: db.execute(
        "SELECT json FROM annotation WHERE json_extract(json, '$.target.source.id') = ? "
        "LIMIT 20", (f"https://iiif.example.org/manifest/ms-1/canvas/p{k % CANVASES}",)
    ).fetchall(), 20))
    rows.append(query_loop("reference: text query (LIKE scan)", lambda k: db.execute(
        "SELECT json FROM annotation WHERE lower(json) LIKE ? LIMIT 20",
        (f"%word{k % 997}\"%",)).fetchall(), 20))
    db.close()
    return rows


def query_loop(name: str, fn, repeat: int) -> dict:
    lat = []
    t0 = time.perf_counter()
    for k in range(repeat):
        t = time.perf_counter()
        fn(k)
        lat.append(time.perf_counter() - t)
    return report(name, repeat, time.perf_counter() - t0, lat)


def ours_store(url: str, n: int) -> list[dict]:
    from echoes_lab.commons.model import CC_BY, prepare
    from echoes_lab.commons.store import Store, Viewer

    store = Store(url)
    lat = []
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        ann_id = f"a{i:07d}"
        data = prepare(annotation(i), iri=f"{BASE}annotations/{ann_id}", user=f"user{i % 4}",
                       display=None, base=BASE, now=now, licence=CC_BY)
        store.create(ann_id, f"user{i % 4}", data, visibility="public")
        lat.append(time.perf_counter() - t)
    rows = [report("ours: Store.create (annotation+version+keys)", n, time.perf_counter() - t0,
                   lat)]
    viewer = Viewer("user0")
    rows.append(query_loop("ours: canvas query, first page + total", lambda k: store.search(
        viewer, target=f"https://iiif.example.org/manifest/ms-1/canvas/p{k % CANVASES}",
        limit=20), 20))
    rows.append(query_loop("ours: text query q=, first page + total", lambda k: store.search(
        viewer, q=f"word{k % 997}", limit=20), 20))
    rows.append(query_loop("ours: text query q=, first page only", lambda k: store.search(
        viewer, q=f"word{k % 997}", limit=20, count=False), 20))
    store.close()
    return rows


def ours_store_bulk(url: str, n: int, batch: int = 5000) -> list[dict]:
    """The store filled by ``create_many`` (one transaction per batch), then queried."""
    from echoes_lab.commons.model import CC_BY, prepare
    from echoes_lab.commons.store import Store, Viewer

    store = Store(url)
    if not n:  # only the bulk through the hub (--n 0): an empty store
        store.close()
        return []
    actor = store.add_actor("user1", "bench-ocr", "1.0")
    now = datetime.now(UTC)
    lat = []
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        t = time.perf_counter()
        items = []
        for i in range(start, min(n, start + batch)):
            ann_id = f"a{i:07d}"
            software = actor if i % 3 == 0 else None  # a third by software, as OCR runs are
            data = prepare(annotation(i), iri=f"{BASE}annotations/{ann_id}",
                           user=f"user{i % 4}" if software is None else "user1", display=None,
                           base=BASE, now=now, licence=CC_BY, actor=software, copy_data=False)
            items.append({"id": ann_id, "owner": "user1" if software else f"user{i % 4}",
                          "data": data, "visibility": "public", "actor": software})
        store.create_many(items)
        lat.append(time.perf_counter() - t)
        if (start // batch) % 20 == 0:
            print(f"  ... {start + len(items):,} stored, "
                  f"{(start + len(items)) / (time.perf_counter() - t0):,.0f}/s", flush=True)
    rows = [report(f"ours: Store.create_many, batches of {batch}", n, time.perf_counter() - t0,
                   [x / batch for x in lat])]
    viewer = Viewer("user0")
    rows.append(query_loop("ours: canvas query, first page + total", lambda k: store.search(
        viewer, target=f"https://iiif.example.org/manifest/ms-1/canvas/p{k % CANVASES}",
        limit=20), 20))
    rows.append(query_loop("ours: text query q=, first page only", lambda k: store.search(
        viewer, q=f"word{k % 997}", limit=20, count=False), 20))
    rows.append(query_loop("ours: full text text=, ranked first page + total",
                           lambda k: store.search(viewer, text=f"word{k % 997}", limit=20), 20))
    store.close()
    return rows


def ours_http(db_url: str, n: int, stored: int, bulk: int = 0,
              knowledge: bool = True) -> list[dict]:
    """The real service behind a real hub, on the database the store filled (a SQLite file,
    copied into the hub's state, or a PostgreSQL URL the service opens)."""
    import psutil
    import requests

    from harness import Hub, new_root

    root = new_root("echoes-bench-commons-")
    pg = not db_url.startswith("sqlite")
    hub = Hub(root, gateway={"enabled": False}, workshops={"enabled": False},
              reports={"enabled": False}, projects={"enabled": False}, culler={"enabled": False},
              knowledge={"enabled": knowledge}, hub={"log_level": "INFO"},
              commons={"db_url": db_url if pg else ""})
    hub.state.mkdir(parents=True)
    if not pg:
        copy = shutil.copy(db_url.removeprefix("sqlite:///"), hub.state / "commons.sqlite")
        # on disk before the hub starts: the service's first checkpoint fsyncs the database
        # file, which otherwise wrote back this whole copy (1 M annotations: 3.9 GB, ~1 s in
        # the first bulk request)
        with open(copy, "rb+") as f:
            os.fsync(f.fileno())
    rows = []
    try:
        hub.start()
        users = [f"user{i}" for i in range(4)]
        heads = {}
        for u in users:
            hub.create_user(u)
            tok = hub.api("POST", f"/users/{u}/tokens", json={
                "scopes": ["access:services!service=commons"]}).json()["token"]
            heads[u] = {"Authorization": f"token {tok}", "Content-Type": "application/ld+json"}
        container = f"{hub.url}/services/commons/annotations/"
        for _ in range(100):
            if requests.get(container + "?page=0", timeout=30).status_code == 200:
                break
            time.sleep(0.3)
        if bulk:
            from echoes_lab import commons

            commons.connect(url=f"{hub.url}/services/commons/",
                            token=heads["user1"]["Authorization"].split()[1])
            ocr = commons.actor("bench-bulk", "1.0", run="https://hub.example/runs/1/crate")
            items = [annotation(2 * 10**6 + i) for i in range(bulk)]
            found = hub.service_processes()
            service = found["commons"][0]
            # who else takes the 2 cores meanwhile: the knowledge service (it maps each change
            # to Linked Art), the proxy every request crosses, and this client
            others = {"knowledge": found.get("knowledge", [None])[0],
                      "proxy": next(iter(proxy_processes(hub)), None),
                      "client": psutil.Process()}
            if others["knowledge"] is not None:
                # the knowledge service reads and maps the whole collection when it (re)connects
                # to the commons' events (100,000 stored: ~100 CPU s); measured from when it
                # has done, or that import runs through the bulk and the queries
                t1 = time.perf_counter()
                # both quiet: while it reads the collection the commons is the busy one
                follow_up(others["knowledge"], quiet=2.5, timeout=1200, also=[service])
                print(f"  bulk: waited {time.perf_counter() - t1:.1f} s for the knowledge service "
                      "to have mapped the stored collection", flush=True)
            cpu0 = {k: cpu_of(p) for k, p in {"commons": service, **others}.items()}
            spy = None
            if PROFILE:
                # py-spy's collapsed stacks of the service while it stores the bulk (py-spy is
                # a dependency of the benchmarks: https://github.com/benfred/py-spy)
                spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record",
                                        "--pid", str(service.pid), "--rate", "200", "--format",
                                        "raw", "--output", f"{PROFILE}-{knowledge}.txt"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)  # attached before the first batch
            t0 = time.perf_counter()
            results = ocr.contribute(items, batch=bulk, progress=False)
            took = time.perf_counter() - t0
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                spy.wait(60)
            cpu = {k: cpu_of(p) - cpu0[k] for k, p in {"commons": service, **others}.items()}
            if knowledge and others["knowledge"] is not None:
                # the knowledge base follows; the CPU it spends on this batch counts too
                t1, during = time.perf_counter(), cpu["knowledge"]
                cpu["knowledge"] += follow_up(others["knowledge"]) - cpu0["knowledge"] - \
                    cpu["knowledge"]
                print(f"  bulk: knowledge used {during:.2f} CPU s during it, then was busy "
                      f"{time.perf_counter() - t1:.1f} s after the last answer", flush=True)
                for line in hub.log_path.read_text(errors="replace").splitlines():
                    if "commons events" in line or "Traceback" in line:
                        print("  knowledge log:", line[:300], flush=True)
            # CPU seconds of the service: the steadier figure on a shared machine
            print(f"  bulk: the commons service used {cpu['commons']:.2f} CPU s for {bulk:,} "
                  f"= {bulk / cpu['commons']:,.0f} annotations per CPU second; CPU s of "
                  + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "commons")
                  + f" (wall {took:.2f} s)", flush=True)
            assert all(r["status"] == 201 for r in results)
            label = "on" if knowledge else "off"
            rows.append(report(f"ours: POST bulk via hub (knowledge {label})", bulk, took,
                               [took / bulk]))
        lat: list[float] = []
        lock = threading.Lock()

        def post(u: str, count: int, offset: int):
            s = requests.Session()
            for i in range(count):
                t = time.perf_counter()
                r = s.post(container, json=annotation(offset + i), headers=heads[u], timeout=60)
                assert r.status_code == 201, r.text
                with lock:
                    lat.append(time.perf_counter() - t)

        threads = [threading.Thread(target=post, args=(u, n // 4, 10**6 + k * n))
                   for k, u in enumerate(users) if n]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if lat:
            rows.append(report("ours: POST via hub proxy, 4 client threads", len(lat),
                               time.perf_counter() - t0, lat))
        if not stored:
            return rows  # nothing stored before: the read queries would measure nothing
        s = requests.Session()
        h = heads["user0"]
        rows.append(query_loop("ours: GET search?canvas= (IIIF viewer)", lambda k: s.get(
            f"{hub.url}/services/commons/search", headers=h, timeout=60, params={
                "canvas": f"https://iiif.example.org/manifest/ms-1/canvas/p{k % CANVASES}"}
        ).raise_for_status(), 50))
        rows.append(query_loop("ours: GET export/iiif?canvas= (all on it)", lambda k: s.get(
            f"{hub.url}/services/commons/export/iiif", headers=h, timeout=60, params={
                "canvas": f"https://iiif.example.org/manifest/ms-1/canvas/p{k % CANVASES}"}
        ).raise_for_status(), 10))
        rows.append(query_loop("ours: GET search?text= (full text, ranked)", lambda k: s.get(
            f"{hub.url}/services/commons/search", headers=h, timeout=60,
            params={"text": f"word{k % 997}"}).raise_for_status(), 50))
        rows.append(query_loop("ours: GET one annotation", lambda k: s.get(
            f"{container}a{k * 997 % stored:07d}", headers=h, timeout=60).raise_for_status(), 50))
    finally:
        left = hub.shutdown()
        shutil.rmtree(root, ignore_errors=True)
        if left:
            print("left behind:", left)
    return rows


def cpu_of(p) -> float:
    """User + system CPU seconds of a process (0 once it has gone)."""
    import psutil

    try:
        return sum(p.cpu_times()[:2]) if p is not None else 0.0
    except psutil.NoSuchProcess:
        return 0.0


def proxy_processes(hub) -> list:
    """The hub's configurable-http-proxy (node), found by its public port."""
    from harness import processes

    port = f"--port {hub.settings['hub']['port']} "
    return processes(lambda p: "configurable-http-proxy" in " ".join(p.cmdline())
                     and port in " ".join(p.cmdline()) + " ")


def follow_up(p, quiet: float = 1.0, timeout: float = 120.0, also=()) -> float:
    """The CPU seconds of ``p`` once it (and the processes ``also``) have used none for
    ``quiet`` seconds (it has caught up with the events it was sent), or at ``timeout``."""
    def total() -> float:
        return cpu_of(p) + sum(cpu_of(q) for q in also)

    last, still = total(), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = total()
        if now - last > 0.02:
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet:
            break
    return cpu_of(p)


def handler_steps(n: int, rounds: int = 3) -> None:
    """The bulk handler's own work per annotation, in-process and without the store: NDJSON
    parsing, ``prepare`` (validation), ``index_keys`` (what the store derives), the events
    for public annotations, the answer; with the cyclic GC paused as the service pauses it."""
    import gc

    import orjson

    from echoes_lab.commons.model import index_keys, prepare
    from echoes_lab.commons.store import check_visibility, new_id
    from echoes_lab.hub.services.commons.bulk import items_of
    from echoes_lab.hub.services.commons.events import Events

    base = "https://hub.example/services/commons/"
    actor = {"id": "a1", "name": "bench-bulk", "version": "1.0", "owner": "user1"}
    gen = {"id": f"{base}actors/a1", "homepage": "https://hub.example/runs/1/crate"}
    body = b"\n".join(orjson.dumps({**annotation(i), "generator": gen}) for i in range(n))
    for _ in range(rounds):
        t: dict[str, float] = {}
        gc.disable()
        try:
            t0 = time.process_time()
            items = items_of(body, "application/x-ndjson")
            t["parse"] = time.process_time() - t0
            now, todo = datetime.now(UTC), []
            t0 = time.process_time()
            for i, data in enumerate(items):
                vis = check_visibility(data.get("visibility", "private"))
                ann_id = new_id()
                ann = prepare(data, iri=f"{base}annotations/{ann_id}", user="user1",
                              display="user1", base=base, now=now, licence=CC_BY_IRI,
                              actor=actor, run=gen["homepage"], copy_data=False)
                todo.append({"index": i, "data": ann, "visibility": vis})
            t["prepare"] = time.process_time() - t0
            t0 = time.process_time()
            for item in todo:
                index_keys(item["data"])
            t["index_keys"] = time.process_time() - t0
            events = Events()
            t0 = time.process_time()
            events.created([item["data"] for item in todo])
            t["events"] = time.process_time() - t0
            t0 = time.process_time()
            orjson.dumps({"items": [{"index": x["index"], "status": 201} for x in todo]})
            t["answer"] = time.process_time() - t0
        finally:
            gc.enable()
        print("  handler per annotation: " + ", ".join(
            f"{k} {v / n * 1e6:.1f}" for k, v in t.items()) +
            f"; all {sum(t.values()) / n * 1e6:.1f} us CPU", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="annotations to create")
    parser.add_argument("--http", type=int, default=2000, help="POSTs through the hub (0: none)")
    parser.add_argument("--bulk", type=int, default=0,
                        help="annotations sent through the hub's POST bulk; also fills the "
                             "store with create_many instead of one transaction each")
    parser.add_argument("--plain", type=int, default=None,
                        help="annotations of the plain SQLite loop (default: --n)")
    parser.add_argument("--no-knowledge", action="store_true",
                        help="also measure bulk with the knowledge service off")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                        help="the commons' database (postgres: a throwaway cluster)")
    parser.add_argument("--handler", type=int, default=0,
                        help="only time the bulk handler's own steps in-process on this many "
                             "annotations (no store, no hub), then stop")
    parser.add_argument("--profile", default="",
                        help="record the commons service with py-spy during each bulk, to "
                             "PROFILE-True.txt / PROFILE-False.txt (knowledge on/off; collapsed "
                             "stacks)")
    parser.add_argument("--only-no-knowledge", action="store_true",
                        help="measure the bulk with the knowledge service off only")
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    if args.handler:
        handler_steps(args.handler)
        return
    with tempfile.TemporaryDirectory(prefix="echoes-bench-commons-") as folder, \
            (postgres_cluster() if args.store == "postgres"
             else contextlib.nullcontext(None)) as pg_url:
        tmp = Path(folder)
        url = pg_url or f"sqlite:///{tmp / 'commons.sqlite'}"
        print(f"store: {args.store}", flush=True)
        if args.plain != 0:
            plain_sqlite(tmp / "plain.sqlite", args.n if args.plain is None else args.plain)
        if args.bulk:
            ours_store_bulk(url, args.n)
        else:
            ours_store(url, args.n)
        if args.http or args.bulk:
            if not args.only_no_knowledge:
                ours_http(url, args.http, args.n, bulk=args.bulk)
            if args.bulk and (args.no_knowledge or args.only_no_knowledge):
                ours_http(url, 0, args.n, bulk=args.bulk, knowledge=False)


if __name__ == "__main__":
    main()
