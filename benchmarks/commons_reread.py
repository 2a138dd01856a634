"""The knowledge service's re-read of the whole commons: offset pages vs pages by key.

Fills a SQLite store with ``--n`` public annotations (``Store.create_many``), then reads the
collection as an anonymous viewer (the knowledge service reads as itself: public only) in
the store, as the commons' container does for each page:

* offset pages of 100 with the total recounted each page (``?page=N``, what ``resync()``
  followed before): read for ``--sample`` pages spread over the collection, the whole read
  estimated as their mean times the number of pages (reading them all takes minutes at 10^5
  and grows with the square of the size; ``--full`` reads them all);
* pages of 1,000 by key (``?after=K``, what ``resync()`` follows now): read whole.

Run: ``.venv/bin/python benchmarks/commons_reread.py --n 100000`` (about a minute).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from echoes_lab.commons.model import CC_BY, prepare
from echoes_lab.commons.store import Store, Viewer, new_id

BASE = "http://hub.example/services/commons/"


def fill(store: Store, n: int, batch: int = 5000) -> None:
    now = datetime.now(UTC)
    for start in range(0, n, batch):
        items = []
        for i in range(start, min(n, start + batch)):
            ann_id = new_id()
            data = prepare({"type": "Annotation", "motivation": "transcribing",
                            "body": {"type": "TextualBody", "value": f"line {i} word{i % 997}"},
                            "target": f"https://iiif.example.org/ms/canvas/p{i % 500}"},
                           iri=f"{BASE}annotations/{ann_id}", user=f"user{i % 4}",
                           display=None, base=BASE, now=now, licence=CC_BY, copy_data=False)
            items.append({"id": ann_id, "owner": f"user{i % 4}", "data": data,
                          "visibility": "public"})
        store.create_many(items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=20, help="offset pages timed")
    ap.add_argument("--full", action="store_true", help="read every offset page")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'commons.sqlite'}")
        t = time.perf_counter()
        fill(store, args.n)
        print(f"{args.n:,} public annotations stored in {time.perf_counter() - t:.1f} s")
        viewer = Viewer()

        t, c, after, got = time.perf_counter(), time.process_time(), 0, 0
        while True:
            _, page = store.search(viewer, after=after, limit=1001, count=False)
            got += min(len(page), 1000)
            if len(page) <= 1000:
                break
            after = page[999].seq
        key_wall, key_cpu = time.perf_counter() - t, time.process_time() - c
        assert got == args.n, got
        print(f"by key, pages of 1,000: {got:,} read in {key_wall:.2f} s ({key_cpu:.2f} CPU s)")

        pages = -(-args.n // 100)
        chosen = range(pages) if args.full else sorted(
            {round(k * (pages - 1) / max(1, args.sample - 1)) for k in range(args.sample)})
        t, c = time.perf_counter(), time.process_time()
        for p in chosen:
            total, page = store.search(viewer, offset=p * 100, limit=100)
            assert total == args.n and page
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        est_wall, est_cpu = wall / len(chosen) * pages, cpu / len(chosen) * pages
        how = "read whole" if args.full else f"estimated from {len(chosen)} pages spread over it"
        print(f"offset pages of 100 + total: {pages:,} pages, {est_wall:.1f} s "
              f"({est_cpu:.1f} CPU s), {how}")
        print(f"ratio offset/key: {est_wall / key_wall:.0f}x wall, {est_cpu / key_cpu:.0f}x CPU")
        store.close()


if __name__ == "__main__":
    main()
