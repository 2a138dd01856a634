"""SPARQL queries run in processes of their own, each stopped at its deadline.

pyoxigraph cannot interrupt a query, so a query that would run for an hour (a cartesian
product, a property path over the whole graph) is given a process: it opens the store
read-only (RocksDB replays the write-ahead log, so it sees every committed write), evaluates
the query over a dataset of the asker's graphs only, serialises the answer within the size
limit and sends it back through a pipe. At the deadline the service kills the process; other
users' queries, in their own processes, go on. Processes come from a ``forkserver`` (started
before any store is open in it, with pyoxigraph imported once), so a query costs a fork, not
an interpreter start.

What reaches the worker was decided by the service: the graphs (``dataset``) and whether the
query may run (SERVICE refused before). The worker never widens the dataset: the protocol's
dataset replaces any ``FROM``/``FROM NAMED`` of the query (SPARQL 1.1 Protocol §2.1.4), so a
query cannot name its way into another graph.
"""

from __future__ import annotations

import io
import re

#: result media types by kind of answer; the first is the default (SPARQL 1.1 Protocol §2.1.5)
SOLUTION_TYPES = {
    "application/sparql-results+json": "JSON", "application/json": "JSON",
    "application/sparql-results+xml": "XML", "application/xml": "XML",
    "text/csv": "CSV", "text/tab-separated-values": "TSV",
}
GRAPH_TYPES = {
    "text/turtle": "TURTLE", "application/n-triples": "N_TRIPLES",
    "application/rdf+xml": "RDF_XML", "application/ld+json": "JSON_LD",
    "application/n-quads": "N_QUADS", "application/trig": "TRIG",
}


def accepted(accept: str | None, table: dict[str, str]) -> str | None:
    """The media type of ``table`` the Accept header prefers (RFC 9110 §12.5.1: by q, then
    order); the table's first when the header accepts anything; None when it accepts none."""
    if not accept:
        return next(iter(table))
    ranked = []
    for i, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        mtype, q = fields[0].lower(), 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        ranked.append((-q, i, mtype))
    for negq, _, mtype in sorted(ranked):
        if negq == 0:
            break
        if mtype in table:
            return mtype
        if mtype in ("*/*", "application/*", "text/*"):
            prefix = mtype.split("/")[0]
            for candidate in table:
                if mtype == "*/*" or candidate.startswith(prefix + "/"):
                    return candidate
    return None


class TooLarge(Exception):
    pass


class _Bounded(io.RawIOBase):
    """A bytes sink that refuses to grow beyond ``limit`` bytes."""

    def __init__(self, limit: int):
        self.buf, self.limit = bytearray(), limit

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.buf += b
        if len(self.buf) > self.limit:
            raise TooLarge
        return len(b)


_POSITION = re.compile(r"error at (\d+):(\d+)")


def _open_read_only(ox, path: str, attempts: int = 20):
    """The store, read-only. RocksDB lists its table files, then opens them; the service's
    own writes compact files away in between now and then, and the open fails with "No such
    file or directory" although nothing is wrong: listing again finds the current files."""
    import time

    for attempt in range(attempts):
        try:
            return ox.Store.read_only(path)
        except (RuntimeError, OSError) as exc:
            if "No such file" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    return None  # not reached: the last attempt raises


def run_query(path: str, query: str, dataset: tuple[list[str], list[str]], accept: str | None,
              limit: int, prefixes: dict[str, str], conn, memory_mb: int = 0) -> None:
    """Evaluate ``query`` over ``dataset`` (its default graph: the union of the first list;
    its named graphs: the second) and send ``(status, type, body)``.

    Statuses: 200 with the answer; 400 the query does not parse (the parser's message, with
    line and column); 406 no acceptable format; 413 the answer is above ``limit`` bytes;
    500 the store failed. ``memory_mb`` bounds what the process may allocate (``RLIMIT_DATA``):
    a query sorting or joining without end fails in its own process, and the machine's memory
    stays for everyone else (the kernel's OOM killer might otherwise pick the hub).
    """
    import resource

    import pyoxigraph as ox

    if memory_mb:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_mb << 20, memory_mb << 20))

    try:
        store = _open_read_only(ox, path)
        result = store.query(query, default_graph=[ox.NamedNode(g) for g in dataset[0]],
                             named_graphs=[ox.NamedNode(g) for g in dataset[1]],
                             prefixes=prefixes)
        if isinstance(result, (ox.QuerySolutions, ox.QueryBoolean)):
            mtype = accepted(accept, SOLUTION_TYPES)
            fmt = getattr(ox.QueryResultsFormat, SOLUTION_TYPES.get(mtype, "JSON"))
        else:
            mtype = accepted(accept, GRAPH_TYPES)
            fmt = getattr(ox.RdfFormat, GRAPH_TYPES.get(mtype, "TURTLE"))
        if mtype is None:
            kinds = ", ".join(SOLUTION_TYPES if isinstance(
                result, (ox.QuerySolutions, ox.QueryBoolean)) else GRAPH_TYPES)
            conn.send((406, "text/plain", f"no acceptable format; this answer is one of {kinds}"))
            return
        sink = _Bounded(limit)
        result.serialize(sink, format=fmt)
        ctype = fmt.media_type
        if ctype.startswith("text/") and "charset" not in ctype:
            ctype += "; charset=utf-8"
        conn.send((200, ctype, bytes(sink.buf)))
    except SyntaxError as exc:
        m = _POSITION.search(str(exc))
        where = f"line {m[1]}, column {m[2]}: " if m else ""
        conn.send((400, "text/plain", f"the query does not parse: {where}{exc}"))
    except TooLarge:
        conn.send((413, "text/plain", f"the answer is larger than {limit} bytes: add LIMIT, "
                                      "or select fewer variables"))
    except (OSError, RuntimeError) as exc:  # pyoxigraph reports a store's failure as either
        if isinstance(exc.__context__, TooLarge) or "TooLarge" in repr(exc):
            conn.send((413, "text/plain", f"the answer is larger than {limit} bytes: add "
                                          "LIMIT, or select fewer variables"))
        else:
            conn.send((500, "text/plain", f"the query failed: {exc}"))
    finally:
        conn.close()
