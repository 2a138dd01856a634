"""Knowledge base: load 1 M triples and run the notebook's questions plus a BSBM-like mix, with
the store ``echoes_lab.knowledge`` uses (pyoxigraph, embedded, on disk) against rdflib's own
in-memory store, the Python tool a knowledge engineer would otherwise reach for (issue 28).

The data are Linked Art shaped like a museum's (objects with a label, an accession number, a
type, a production with its maker and time-span, a height), written once as N-Triples and
loaded by each store from the same file. The queries, after the Berlin SPARQL Benchmark's
explore mix (Bizer & Schultz 2009, *The Berlin SPARQL Benchmark*, IJSWIS 5(2)) and notebook 06:

1. objects per century of production (notebook question 1: aggregate over everything)
2. the ten makers with most objects (notebook question 2: group, order, limit)
3. one maker's objects begun before 1800 (BSBM Q2-like: selective join with a filter)
4. everything said of one object (BSBM Q9-like: one subject's statements)
5. a text filter on labels, first 10 (BSBM Q6-like)
6. objects in a height range, ordered, first 10 (BSBM Q5-like: numeric range and sort)

Optionally (``--hub N``) N users query the knowledge service of a real hub at once, through the
proxy (hub tokens), over a public graph of ``--hub-triples`` triples: p50/p95 per request.

Run: ``.venv/bin/python benchmarks/knowledge.py`` (``--triples 1000000 --repeat 5``,
``--hub 20``).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyoxigraph as ox
import rdflib

REPO = Path(__file__).resolve().parents[1]
CRM = "http://www.cidoc-crm.org/cidoc-crm/"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
EX = "https://museum.example.org/"
PREFIXES = (f"PREFIX crm: <{CRM}>\nPREFIX rdfs: <{RDFS}>\nPREFIX xsd: <{XSD}>\n"
            f"PREFIX ex: <{EX}>\n")
TRIPLES_PER_OBJECT = 14


def write_data(path: Path, triples: int, seed: int = 28) -> int:
    """N-Triples of ``triples // 14`` objects; returns the number of triples written."""
    rng = random.Random(seed)
    objects = triples // TRIPLES_PER_OBJECT
    makers = max(10, objects // 50)
    types = ["300033618", "300041273", "300033973", "300046300", "300047090", "300037222"]
    words = ["View", "Portrait", "Study", "Landscape", "Harbour", "Bridge", "River", "Abbey",
             "Castle", "Sketch", "Figure", "Boats"]
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for m in range(makers):
            fh.write(f'<{EX}person/{m}> <{RDFS}label> "Maker {m}" .\n'
                     f'<{EX}person/{m}> {TYPE} <{CRM}E21_Person> .\n')
            n += 2
        for i in range(objects):
            o, p, t, ident = (f"<{EX}object/{i}>", f"<{EX}object/{i}/production>",
                              f"<{EX}object/{i}/timespan>", f"<{EX}object/{i}/id>")
            year = rng.randint(1450, 2000)
            title = f"{rng.choice(words)} {rng.choice(words)} {i}"
            fh.write(
                f"{o} {TYPE} <{CRM}E22_Human-Made_Object> .\n"
                f'{o} <{RDFS}label> "{title}" .\n'
                f"{o} <{CRM}P2_has_type> <http://vocab.getty.edu/aat/{rng.choice(types)}> .\n"
                f"{o} <{CRM}P1_is_identified_by> {ident} .\n"
                f"{ident} {TYPE} <{CRM}E42_Identifier> .\n"
                f'{ident} <{CRM}P190_has_symbolic_content> "ACC.{i:07d}" .\n'
                f"{o} <{CRM}P108i_was_produced_by> {p} .\n"
                f"{p} {TYPE} <{CRM}E12_Production> .\n"
                f"{p} <{CRM}P14_carried_out_by> <{EX}person/{int(rng.paretovariate(1.2)) % makers}> .\n"  # noqa: E501
                f"{p} <{CRM}P4_has_time-span> {t} .\n"
                f'{t} <{CRM}P82a_begin_of_the_begin> "{year:04d}-01-01T00:00:00Z"^^<{XSD}dateTime> .\n'  # noqa: E501
                f'{t} <{CRM}P82b_end_of_the_end> "{year:04d}-12-31T23:59:59Z"^^<{XSD}dateTime> .\n'  # noqa: E501
                f"{o} <{CRM}P43_has_dimension> <{EX}object/{i}/height> .\n"
                f'<{EX}object/{i}/height> <{CRM}P90_has_value> "{rng.uniform(5, 300):.1f}"^^<{XSD}decimal> .\n')  # noqa: E501
            n += TRIPLES_PER_OBJECT
    return n


QUERIES = {
    "1 objects per century": """
        SELECT ?century (COUNT(?o) AS ?n) WHERE {
          ?o a crm:E22_Human-Made_Object ; crm:P108i_was_produced_by/crm:P4_has_time-span/
             crm:P82a_begin_of_the_begin ?b .
          BIND(FLOOR(YEAR(?b) / 100) + 1 AS ?century) } GROUP BY ?century ORDER BY ?century""",
    "2 top makers": """
        SELECT ?maker (COUNT(?o) AS ?n) WHERE {
          ?o crm:P108i_was_produced_by/crm:P14_carried_out_by ?p . ?p rdfs:label ?maker }
        GROUP BY ?maker ORDER BY DESC(?n) LIMIT 10""",
    "3 a maker before 1800": """
        SELECT ?o ?label ?b WHERE {
          ?prod crm:P14_carried_out_by <https://museum.example.org/person/3> ; crm:P4_has_time-span/
                crm:P82a_begin_of_the_begin ?b .
          ?o crm:P108i_was_produced_by ?prod ; rdfs:label ?label .
          FILTER(?b < "1800-01-01T00:00:00Z"^^xsd:dateTime) }""",
    "4 one object": "SELECT ?p ?v WHERE { <https://museum.example.org/object/42> ?p ?v }",
    "5 label contains, first 10": """
        SELECT ?o ?label WHERE { ?o a crm:E22_Human-Made_Object ; rdfs:label ?label .
          FILTER(CONTAINS(?label, "Abbey Castle")) } LIMIT 10""",
    "6 height range, first 10": """
        SELECT ?o ?h WHERE { ?o crm:P43_has_dimension/crm:P90_has_value ?h .
          FILTER(?h > 120 && ?h < 121) } ORDER BY ?h LIMIT 10""",
}


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def run_queries(name: str, query, repeat: int) -> dict[str, tuple[float, float, int]]:
    out = {}
    for label, q in QUERIES.items():
        times, rows = [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            rows = query(PREFIXES + q)
            times.append(time.perf_counter() - t0)
        out[label] = (statistics.median(times), percentile(times, 0.95), rows)
        print(f"  {name:9s} {label:28s} p50 {out[label][0] * 1000:9.1f} ms  "
              f"p95 {out[label][1] * 1000:9.1f} ms  rows {rows}", flush=True)
    return out


def bench_stores(triples: int, repeat: int, tmp: Path) -> None:
    data = tmp / "data.nt"
    t0 = time.perf_counter()
    n = write_data(data, triples)
    print(f"{n:,} triples written in {time.perf_counter() - t0:.1f} s "
          f"({data.stat().st_size / 1e6:.0f} MB); load average {os.getloadavg()[0]:.1f}")

    store = ox.Store(str(tmp / "oxigraph"))
    t0 = time.perf_counter()
    store.bulk_load(path=str(data), format=ox.RdfFormat.N_TRIPLES)
    store.flush()
    ox_load = time.perf_counter() - t0
    print(f"pyoxigraph bulk_load: {ox_load:.1f} s = {n / ox_load:,.0f} triples/s "
          f"({len(store):,} quads)", flush=True)

    def ox_query(q: str) -> int:
        return sum(1 for _ in store.query(q))

    ox_q = run_queries("oxigraph", ox_query, repeat)
    store = None
    gc.collect()

    graph = rdflib.Graph()  # rdflib's default in-memory store
    t0 = time.perf_counter()
    graph.parse(str(data), format="nt")
    rdf_load = time.perf_counter() - t0
    print(f"rdflib parse: {rdf_load:.1f} s = {n / rdf_load:,.0f} triples/s ({len(graph):,})",
          flush=True)

    def rdf_query(q: str) -> int:
        return sum(1 for _ in graph.query(q))

    rdf_q = run_queries("rdflib", rdf_query, repeat)

    print("\n| | pyoxigraph | rdflib | rdflib / pyoxigraph |\n|---|---:|---:|---:|")
    print(f"| load {n:,} triples (s) | {ox_load:.1f} | {rdf_load:.1f} | "
          f"{rdf_load / ox_load:.1f}× |")
    print(f"| load rate (triples/s) | {n / ox_load:,.0f} | {n / rdf_load:,.0f} | |")
    for label in QUERIES:
        a, b = ox_q[label], rdf_q[label]
        print(f"| {label}: p50 / p95 (ms) | {a[0] * 1000:.1f} / {a[1] * 1000:.1f} | "
              f"{b[0] * 1000:.1f} / {b[1] * 1000:.1f} | {b[0] / a[0]:.1f}× |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


def bench_hub(users: int, triples: int, per_user: int, tmp: Path) -> None:
    """``users`` users at once through a real hub's proxy, each ``per_user`` queries."""
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    import requests

    from harness import Hub, new_root, wait_for  # noqa: I001 (tests/integration on the path)

    hub = Hub(new_root(), gateway={"enabled": False}, workshops={"enabled": False},
              reports={"enabled": False}, projects={"enabled": False},
              knowledge={"max_concurrent": 4},
              services={"max_body_size": 256 * 1024 * 1024}).start(timeout=120)
    try:
        base = f"{hub.url}/services/knowledge/"
        tokens = []
        for i in range(users):
            name = f"user{i}"
            hub.create_user(name)
            r = hub.api("POST", f"/users/{name}/tokens",
                        json={"scopes": ["access:services!service=knowledge"]})
            tokens.append({"Authorization": f"token {r.json()['token']}"})
        wait_for(lambda: requests.get(f"{base}sparql", timeout=5).status_code == 401, 30,
                 "the knowledge service")
        data = tmp / "hub.nt"
        write_data(data, triples)
        r = requests.put(f"{base}data", params={"graph": f"{base}graphs/user0/museum",
                                                "visibility": "public"},
                         data=data.read_bytes(), timeout=600,
                         headers={**tokens[0], "Content-Type": "application/n-triples"})
        assert r.status_code == 201, r.text
        mix = [QUERIES[k] for k in ("3 a maker before 1800", "4 one object",
                                    "5 label contains, first 10", "6 height range, first 10")]
        times: list[float] = []
        lock = threading.Lock()

        def user(i: int) -> None:
            for j in range(per_user):
                t0 = time.perf_counter()
                r = requests.post(f"{base}sparql", data=(PREFIXES + mix[(i + j) % len(mix)]),
                                  timeout=120, headers={**tokens[i],
                                                        "Content-Type": "application/sparql-query"})
                assert r.status_code == 200, r.text
                with lock:
                    times.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        print(f"\n{users} users x {per_user} queries through the hub over {triples:,} triples: "
              f"p50 {statistics.median(times) * 1000:.0f} ms, p95 "
              f"{percentile(times, 0.95) * 1000:.0f} ms, {len(times) / wall:.1f} queries/s; "
              f"load average {os.getloadavg()[0]:.1f}")
    finally:
        hub.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--triples", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hub", type=int, default=0, help="users querying a real hub at once")
    ap.add_argument("--hub-triples", type=int, default=100_000)
    ap.add_argument("--per-user", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="echoes-kb-bench-") as tmp:
        if args.triples:
            bench_stores(args.triples, args.repeat, Path(tmp))
        if args.hub:
            bench_hub(args.hub, args.hub_triples, args.per_user, Path(tmp))


if __name__ == "__main__":
    main()
