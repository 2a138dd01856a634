"""The commons' Prometheus counts: a join at each scrape vs the counts kept by each write.

Fills a SQLite store with ``--n`` annotations by ``Store.create_many`` in batches of 5,000 (a
third by a software actor, motivations mixed, two motivation keys each: ``describing`` |
``transcribing`` | ``classifying`` and the ``tagging`` purpose of a body, as
``benchmarks/commons.py``'s ``ours_store_bulk`` fills it), then, in this process:

* the join the collector ran at each scrape until the ``tallies`` table
  (``annotations`` outer-joined over their ``motivation`` keys, grouped), ``--repeat`` times;
* ``CommonsCollector.collect()`` as it is now (reads ``Store.tallies()``), ``--repeat``
  times (skipped when the code imported has no ``Store.tallies``);
* the CPU time (``time.process_time``: this process, SQLite included) of ``create_many`` of
  ``--add`` more annotations (batches of 5,000) into a copy of the filled store, ``--repeat``
  times, each on a fresh copy.

Run: ``.venv/bin/python benchmarks/commons_tallies.py`` (about a minute). The cost the
tallies add to ``create_many`` is the difference with the code from before them: extract it
(``git archive <commit> echoes_lab | tar -x -C /tmp/before``) and run the same command with
``--code /tmp/before``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BASE = "http://127.0.0.1:8000/services/commons/"


def items(start: int, stop: int, actor: dict, prepare, licence: str) -> list[dict]:
    now = datetime.now(UTC)
    out = []
    for i in range(start, stop):
        ann_id = f"a{i:07d}"
        software = actor if i % 3 == 0 else None
        canvas = f"https://iiif.example.org/manifest/ms-1/canvas/p{i % 100}"
        data = prepare({"type": "Annotation",
                        "motivation": ["describing", "transcribing", "classifying"][i % 3],
                        "body": [{"type": "TextualBody",
                                  "value": f"region {i} reads word{i % 997}"},
                                 {"type": "TextualBody", "value": f"tag{i % 50}",
                                  "purpose": "tagging"}],
                        "target": {"type": "SpecificResource",
                                   "source": {"id": canvas, "type": "Canvas"},
                                   "selector": {"type": "FragmentSelector",
                                                "value": f"xywh={i % 800},{i % 600},40,20"}}},
                       iri=f"{BASE}annotations/{ann_id}",
                       user="user1" if software else f"user{i % 4}", display=None, base=BASE,
                       now=now, licence=licence, actor=software, copy_data=False)
        out.append({"id": ann_id, "owner": "user1" if software else f"user{i % 4}",
                    "data": data, "visibility": "public", "actor": software})
    return out


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()`` over ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="annotations in the store")
    ap.add_argument("--add", type=int, default=20_000, help="annotations added, timed")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--code", help="a folder holding another echoes_lab to import")
    args = ap.parse_args()
    if args.code:
        sys.path.insert(0, args.code)
    from sqlalchemy import and_, func, select

    import echoes_lab
    from echoes_lab.commons.model import CC_BY, prepare
    from echoes_lab.commons.store import Store, annotations, keys

    print(f"echoes_lab from {Path(echoes_lab.__file__).parent}")
    batch = 5000
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "commons.sqlite"
        store = Store(f"sqlite:///{db}")
        actor = store.add_actor("user1", "bench-ocr", "1.0")
        t = time.perf_counter()
        for start in range(0, args.n, batch):
            store.create_many(items(start, min(args.n, start + batch), actor, prepare, CC_BY))
        print(f"{args.n:,} annotations stored in {time.perf_counter() - t:.1f} s")

        software = annotations.c.actor_id.isnot(None)
        join = (select(keys.c.value, software, func.count())
                .select_from(annotations.outerjoin(keys, and_(
                    keys.c.annotation == annotations.c.id, keys.c.kind == "motivation")))
                .where(annotations.c.deleted.is_(None)).group_by(keys.c.value, software))

        def scrape_join() -> None:
            with store.engine.connect() as conn:
                conn.execute(join).all()

        wall, cpu = timed(scrape_join, args.repeat)
        print(f"join at each scrape (before):   {wall * 1000:8.1f} ms wall, "
              f"{cpu * 1000:8.1f} ms CPU (median of {args.repeat})")
        if hasattr(Store, "tallies"):
            from echoes_lab.hub.services.commons.metrics import CommonsCollector

            class Service:  # what the collector reads of the service: its store
                pass

            service = Service()
            service.store = store
            collector = CommonsCollector(service)
            wall2, cpu2 = timed(lambda: list(collector.collect()), args.repeat * 10)
            print(f"CommonsCollector.collect() now: {wall2 * 1000:8.3f} ms wall, "
                  f"{cpu2 * 1000:8.3f} ms CPU (median of {args.repeat * 10}); "
                  f"{wall / wall2:,.0f}x less wall time")
        store.close()

        more = [items(start, min(args.n + args.add, start + batch), actor, prepare, CC_BY)
                for start in range(args.n, args.n + args.add, batch)]
        cpus, walls = [], []
        for k in range(args.repeat):
            copy = Path(tmp) / f"copy{k}.sqlite"
            shutil.copyfile(db, copy)
            s = Store(f"sqlite:///{copy}")
            t, c = time.perf_counter(), time.process_time()
            for part in more:
                s.create_many(part)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
            s.close()
            copy.unlink()
        print(f"create_many of {args.add:,} into {args.n:,}: CPU "
              + ", ".join(f"{c:.2f}" for c in cpus)
              + f" s (median {statistics.median(cpus):.2f} s); wall "
              + ", ".join(f"{w:.2f}" for w in walls) + " s")


if __name__ == "__main__":
    main()
