"""The commons' storage: annotations with their history, tombstones, actors (SQLAlchemy 2).

SQLite (``<state>/commons.sqlite``) on the ``local`` profile, PostgreSQL (a URL in the
settings) on ``kubernetes``; the same code and the same tests run on both.

Tables
------
===============  ================================================================================
``annotations``  the current state of each annotation: its JSON, owner, software actor,
                 visibility (``private`` | ``group:<name>`` | ``public``), licence, version
                 number, tombstone (``deleted``) and moderation (``hidden_*``)
``versions``     every state an annotation has had (version 1 = as created); a version is never
                 changed or removed, so ``…/annotations/<id>/versions/<n>`` is a stable IRI
``keys``         what an annotation is found by: (kind, value) with kind ``target`` (target
                 IRIs and the ``source`` of SpecificResources), ``source``, ``motivation``,
                 ``tag``; creator, generator and group are columns of ``annotations``
``actors``       software agents registered by a hub user (name, version, owner)
``fulltext``     the bodies' words for full-text search, stemmed in their languages
                 (:mod:`echoes_lab.commons.fulltext`): FTS5 on SQLite, ``tsvector`` + GIN on
                 PostgreSQL; keyed by the annotation's ``seq``
``moderation``   the public moderation log: who hid or showed again which annotation, when
                 and why (never the hidden content)
``changes``      the public changes, in order (``Create`` / ``Update`` / ``Delete`` of what the
                 public sees), for the IIIF Change Discovery feed; written in the transaction
                 of the change itself, so the feed misses nothing a crash would lose
``submissions``  the idempotency keys of bulk contributions: (owner, key) -> annotation, so a
                 batch sent again after a lost answer is found, not stored twice
``imported``     annotations copied from another annotation server: the origin's IRI ->
                 the local annotation and a digest of the origin's JSON, so an import that
                 runs again finds what it copied (and what changed) instead of copying twice
``import_runs``  each import source's runs: how many, when the last began and ended, and its
                 counts (a restarted service waits for the next due run, not from scratch)
``tallies``      how many annotations not deleted there are by (motivation, made by software
                 or not), hidden ones included; kept in the transaction of each write, so the
                 Prometheus scrape reads a few rows instead of counting the whole store
===============  ================================================================================

Durability: every write is one transaction. On SQLite the journal is WAL with
``synchronous=FULL``: the WAL is fsynced at each commit, so an acknowledged (201) annotation
survives a crash of the process *and* of the machine (``NORMAL`` would survive a process crash
only; https://www.sqlite.org/pragma.html#pragma_synchronous). PostgreSQL commits are durable
by default (``synchronous_commit = on``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    inspect,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import text as sql
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import REGCONFIG, TSVECTOR

from echoes_lab.commons import fulltext as ft
from echoes_lab.commons.model import CC_BY, index_keys, texts_by_language
from echoes_lab.errors import EchoesError

metadata = MetaData()

annotations = Table(
    "annotations", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # stable order for paging
    Column("id", String(40), nullable=False, unique=True),
    Column("owner", String(255), nullable=False, index=True),
    Column("actor_id", String(40), ForeignKey("actors.id"), nullable=True),
    Column("generator", String(255), nullable=True, index=True),  # the actor's name
    # no index on visibility: three values, and an index there lets the planner fetch every
    # public row by index (an OR of index scans) instead of walking the table in order
    Column("visibility", String(300), nullable=False),
    Column("licence", String(500), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("modified", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("deleted", DateTime(timezone=True), nullable=True),
    Column("deleted_by", String(255), nullable=True),
    Column("hidden_reason", Text, nullable=True),
    Column("hidden_by", String(255), nullable=True),
    Column("hidden_at", DateTime(timezone=True), nullable=True),
    Column("data", JSON, nullable=False),
)

#: the text of the bodies, lower-cased, apart from the wide rows: a ``LIKE`` scans ~50 bytes a
#: row here instead of each annotation's whole JSON
texts = Table(
    "texts", metadata,
    Column("annotation", String(40), ForeignKey("annotations.id"), primary_key=True),
    Column("text", Text, nullable=False),
)

versions = Table(
    "versions", metadata,
    Column("annotation", String(40), ForeignKey("annotations.id"), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("by", String(255), nullable=False),
    Column("action", String(20), nullable=False),  # created | updated | deleted | restored
    Column("visibility", String(300), nullable=False),
    Column("data", JSON, nullable=False),
)

keys = Table(
    "keys", metadata,
    Column("annotation", String(40), ForeignKey("annotations.id"), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("value", String(2000), primary_key=True),
    Index("ix_keys_kind_value", "kind", "value"),
)

actors = Table(
    "actors", metadata,
    Column("id", String(40), primary_key=True),
    Column("owner", String(255), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("version", String(100), nullable=False),
    Column("homepage", String(2000), nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
    UniqueConstraint("owner", "name", "version"),
)

submissions = Table(
    "submissions", metadata,
    Column("owner", String(255), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("annotation", String(40), ForeignKey("annotations.id"), nullable=False),
)

imported = Table(
    "imported", metadata,
    Column("origin", String(2000), primary_key=True),  # the annotation's IRI at its origin
    Column("source", String(2000), nullable=False, index=True),  # the container read
    Column("annotation", String(40), ForeignKey("annotations.id"), nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of the origin's JSON
)

import_runs = Table(
    "import_runs", metadata,
    Column("source", String(2000), primary_key=True),
    Column("runs", Integer, nullable=False),
    Column("started", DateTime(timezone=True), nullable=True),
    Column("finished", DateTime(timezone=True), nullable=True),
    Column("result", JSON, nullable=True),
)

moderation = Table(
    "moderation", metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("by", String(255), nullable=False),
    Column("annotation", String(40), ForeignKey("annotations.id"), nullable=False, index=True),
    Column("action", String(20), nullable=False),  # hidden | shown
    Column("reason", Text, nullable=True),
)

changes = Table(
    "changes", metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("annotation", String(40), ForeignKey("annotations.id"), nullable=False),
    Column("type", String(10), nullable=False),  # Create | Update | Delete
)

#: annotations not deleted, by motivation (``none`` for one without) and by whether a software
#: actor made them: what the metrics report, kept as writes happen (see :meth:`Store._tally`)
tallies = Table(
    "tallies", metadata,
    Column("motivation", String(2000), primary_key=True),
    Column("software", Boolean, primary_key=True),
    Column("n", Integer, nullable=False),
)

#: an annotation with no motivation is counted under this name (as the metrics always did)
NO_MOTIVATION = "none"


def tally_query():
    """The counts of :data:`tallies` computed from the annotations themselves: an outer join
    of ``annotations`` over their ``motivation`` keys, grouped. A full scan of the store; it
    fills ``tallies`` once for a database from before that table, and tests compare the kept
    counts with it. Rows are ``(motivation, software, n)``."""
    motivation = func.coalesce(keys.c.value, literal(NO_MOTIVATION))
    software = annotations.c.actor_id.isnot(None)
    return (select(motivation.label("motivation"), software.label("software"),
                   func.count().label("n"))
            .select_from(annotations.outerjoin(keys, and_(
                keys.c.annotation == annotations.c.id, keys.c.kind == "motivation")))
            .where(annotations.c.deleted.is_(None))
            .group_by(motivation, software))


def _motivations(found: dict[str, set[str]]) -> set[str]:
    """An annotation's motivations as its ``keys`` rows hold them (cut to 2,000 characters)."""
    return {value[:2000] for value in found.get("motivation", ())}


def public_change(before: bool, after: bool) -> str | None:
    """The Activity Streams type of a change for the public: ``before``/``after`` say whether
    the public saw the annotation (as ``events.Events.changed`` tells the stream)."""
    if after:
        return "Update" if before else "Create"
    return "Delete" if before else None


#: PostgreSQL's full-text rows (one per annotation and language); SQLite has an FTS5 table
pg_metadata = MetaData()
pg_fulltext = Table(
    "fulltext", pg_metadata,
    Column("seq", Integer, primary_key=True),
    Column("language", String(40), primary_key=True),
    Column("doc", TSVECTOR, nullable=False),
    Index("ix_fulltext_doc", "doc", postgresql_using="gin"),
)

VISIBILITY_HELP = "visibility must be 'private', 'public' or 'group:<hub group name>'"


class StoreError(EchoesError):
    """A store operation cannot proceed; ``status`` is the HTTP status it stands for."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def utcnow() -> datetime:
    """The clock of the store (a seam: tests patch it instead of waiting)."""
    return datetime.now(UTC)


def check_visibility(value: str) -> str:
    if value in ("private", "public") or (value.startswith("group:") and len(value) > 6):
        return value
    msg = f"{VISIBILITY_HELP}, not {value!r}"
    raise StoreError(msg)


def new_id() -> str:
    """A new annotation's (or actor's) id: its creation time then 128 random bits, URL-safe.

    The random part makes it unguessable, so a private annotation's IRI tells nothing to
    whoever does not hold it. The time in front (milliseconds since 1970 in 12 hexadecimal
    digits, which sort as their numbers do) puts ids made one after another next to each
    other in the indexes keyed by them (``annotations.id``, ``versions``, ``keys``,
    ``texts``): a bulk batch writes a few adjacent pages of each instead of one random page
    per annotation, which cut the CPU of ``Store.create_many`` by a quarter at 40,000
    annotations (more as the store grows) and the pages each commit writes to the WAL. It is
    UUID version 7's reason (RFC 9562, §2.1 and §5.7: random ids give poor database index
    locality), with more random bits.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_urlsafe(16)}"


@dataclass(frozen=True)
class Batch:
    """A bulk contribution's rows made before its transaction (:meth:`Store.batch`): per item
    (the item, its ``annotations`` row without its times, ``keys`` rows, lower-cased text,
    motivations, full-text document on SQLite), and each item's JSON text by ``id()`` of its
    data."""

    rows: list[tuple]
    encoded: dict[int, str]


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a hub name (None: anonymous), their hub groups, and admin rights."""

    name: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    def may_see(self, rec: Record) -> bool:
        if self.admin or (self.name and rec.owner == self.name):
            return True
        if rec.hidden_reason is not None:
            return False
        return rec.visibility == "public" or rec.visibility in {f"group:{g}" for g in self.groups}


@dataclass(frozen=True)
class Record:
    id: str
    seq: int
    owner: str
    actor_id: str | None
    generator: str | None
    visibility: str
    licence: str
    created: datetime
    modified: datetime
    version: int
    deleted: datetime | None
    deleted_by: str | None
    hidden_reason: str | None
    hidden_by: str | None
    data: dict

    @property
    def etag(self) -> str:
        # strong: a new version is new bytes; the id keeps tags of different annotations apart
        return f'"{self.id}.{self.version}"'


def _record(row) -> Record:
    m = row._mapping
    return Record(**{k: m[k] for k in Record.__dataclass_fields__})


class Store:
    """The commons' database.

    Parameters
    ----------
    url
        A SQLAlchemy URL: ``sqlite:///path/commons.sqlite`` or
        ``postgresql+psycopg://user@/db?host=/socket/dir``.
    clock
        Returns the current time (UTC); the default is :func:`utcnow`.
    """

    def __init__(self, url: str, clock: Callable[[], datetime] = utcnow):
        self.url = url
        self.clock = clock
        self.sqlite = url.startswith("sqlite")
        kwargs = {"connect_args": {"timeout": 30}} if self.sqlite else {"pool_pre_ping": True}
        # orjson: the annotations' JSON in and out of the database at a third of the json
        # module's time (a bulk batch encodes each item twice, a page decodes each)
        self.engine = create_engine(url, json_serializer=to_json, json_deserializer=orjson.loads,
                                    **kwargs)
        if self.sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        had_changes = inspect(self.engine).has_table("changes")
        had_tallies = inspect(self.engine).has_table("tallies")
        metadata.create_all(self.engine)
        self._fulltext_setup()
        if not had_changes:
            self._changes_setup()
        if not had_tallies:
            self._tallies_setup()

    def _changes_setup(self) -> None:
        """A database from before the change feed: its public annotations enter the feed
        once, as ``Create`` at their last modification, oldest first."""
        with self.engine.begin() as conn:
            conn.execute(changes.insert().from_select(
                ["at", "annotation", "type"],
                select(annotations.c.modified, annotations.c.id, literal("Create"))
                .where(annotations.c.visibility == "public", annotations.c.deleted.is_(None),
                       annotations.c.hidden_reason.is_(None))
                .order_by(annotations.c.modified, annotations.c.seq)))

    # -- counts for the metrics -------------------------------------------------------------
    def _tallies_setup(self) -> None:
        """A database from before :data:`tallies`: its counts are computed once, from the
        annotations (:func:`tally_query`), in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(tallies.delete())
            conn.execute(tallies.insert().from_select(["motivation", "software", "n"],
                                                      tally_query()))

    def _tally(self, conn, deltas: dict[tuple[str, bool], int]) -> None:
        """Add ``deltas`` ((motivation, software) -> change of the count) to :data:`tallies`
        in the caller's transaction.

        An upsert (``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n``), which both
        SQLite (https://www.sqlite.org/lang_upsert.html) and PostgreSQL
        (https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT) apply
        atomically to the row. The rows go in a fixed order so that two concurrent
        PostgreSQL transactions lock them in the same order and cannot deadlock.
        """
        rows = [{"motivation": m, "software": s, "n": n}
                for (m, s), n in sorted(deltas.items()) if n]
        if not rows:
            return
        insert = (sqlite_dialect if self.sqlite else pg_dialect).insert(tallies)
        conn.execute(insert.on_conflict_do_update(
            index_elements=[tallies.c.motivation, tallies.c.software],
            set_={"n": tallies.c.n + insert.excluded.n}), rows)

    @staticmethod
    def _count(deltas: dict[tuple[str, bool], int], motivations, software: bool,
               sign: int) -> None:
        for m in motivations or (NO_MOTIVATION,):
            deltas[m, software] = deltas.get((m, software), 0) + sign

    def _motivation_keys(self, conn, ann_ids: list[str]) -> dict[str, set[str]]:
        """The motivations stored in ``keys`` for each of ``ann_ids`` (none: not there)."""
        out: dict[str, set[str]] = {}
        for start in range(0, len(ann_ids), 500):  # SQLite's bound-parameter limit
            rows = conn.execute(select(keys.c.annotation, keys.c.value).where(
                keys.c.kind == "motivation", keys.c.annotation.in_(ann_ids[start:start + 500])))
            for ann_id, value in rows:
                out.setdefault(ann_id, set()).add(value)
        return out

    def tallies(self) -> dict[tuple[str, str], int]:
        """Annotations not deleted (hidden ones included) by motivation (``none`` when an
        annotation has none; one with two motivations counts under each) and by who made
        them, ``person`` or ``software``: ``{(motivation, actor type): n}``, n > 0. Reads the
        few rows of :data:`tallies`, kept by every write, never the annotations."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(tallies).where(tallies.c.n > 0)).all()
        return {(r.motivation, "software" if r.software else "person"): r.n for r in rows}

    # -- full text ----------------------------------------------------------------------
    def _fulltext_setup(self) -> None:
        """Create the full-text index; a database from before it gets its annotations
        indexed once, here."""
        if inspect(self.engine).has_table("fulltext"):
            return
        with self.engine.begin() as conn:
            if self.sqlite:
                # stems only (no diacritics folding of stems is lost: both sides fold)
                conn.exec_driver_sql("CREATE VIRTUAL TABLE IF NOT EXISTS fulltext USING "
                                     "fts5(doc, tokenize='unicode61 remove_diacritics 2')")
            else:
                pg_metadata.create_all(conn)
            after = 0
            while True:
                rows = conn.execute(select(annotations.c.seq, annotations.c.data)
                                    .where(annotations.c.seq > after)
                                    .order_by(annotations.c.seq).limit(5000)).all()
                if not rows:
                    break
                self._index_text(conn, [(r.seq, r.data) for r in rows])
                after = rows[-1].seq

    def _index_text(self, conn, items: list[tuple[int, dict]], replace: bool = False) -> None:
        if not items:
            return
        if self.sqlite:
            if replace:
                conn.exec_driver_sql("DELETE FROM fulltext WHERE rowid = ?",
                                     [(seq,) for seq, _ in items])
            conn.exec_driver_sql("INSERT INTO fulltext(rowid, doc) VALUES (?, ?)",
                                 [(seq, ft.document(texts_by_language(data)))
                                  for seq, data in items])
            return
        if replace:
            conn.execute(pg_fulltext.delete().where(
                pg_fulltext.c.seq.in_([seq for seq, _ in items])))
        rows: dict[tuple[int, str], list[str]] = {}
        for seq, data in items:
            for lang, text in texts_by_language(data):
                rows.setdefault((seq, ft.config(lang)), []).append(text)
        if rows:
            conn.execute(pg_fulltext.insert().values(
                seq=bindparam("b_seq"), language=bindparam("b_language"),
                doc=func.to_tsvector(cast(bindparam("b_language"), REGCONFIG),
                                     bindparam("b_text"))),
                [{"b_seq": seq, "b_language": lang, "b_text": " ".join(texts)}
                 for (seq, lang), texts in rows.items()])

    def _ranked(self, text: str, lang: str | None):
        """A subquery ``(seq, score)`` of the annotations matching ``text``, and the order
        (best first) of its score."""
        if self.sqlite:
            match = ft.fts5_query(text, lang)
            if match is None:
                msg = f"search text {text!r} has no word to look for"
                raise StoreError(msg)
            sub = (sql("SELECT rowid AS seq, bm25(fulltext) AS score FROM fulltext "
                       "WHERE fulltext MATCH :m").bindparams(m=match)
                   .columns(seq=Integer, score=Float).subquery("ft"))
            return sub, sub.c.score.asc()  # bm25: lower is better
        names = (ft.config(lang),) if lang else ("simple", *ft.CONFIGS)
        query = None
        for name in names:
            one = func.websearch_to_tsquery(cast(literal(name), REGCONFIG), text)
            query = one if query is None else query.op("||")(one)  # || of tsqueries: OR
        sub = (select(pg_fulltext.c.seq,
                      func.max(func.ts_rank(pg_fulltext.c.doc, query)).label("score"))
               .where(pg_fulltext.c.doc.op("@@")(query)).group_by(pg_fulltext.c.seq)
               .subquery("ft"))
        return sub, sub.c.score.desc()

    def close(self) -> None:
        self.engine.dispose()

    # -- annotations ------------------------------------------------------------------
    def create(self, ann_id: str, owner: str, data: dict, *, visibility: str = "private",
               licence: str = CC_BY, actor: dict | None = None) -> Record:
        """Store a new annotation (``data`` already prepared, with its ``id``) as version 1."""
        check_visibility(visibility)
        now = self.clock()
        found, text = index_keys(data)
        row = dict(id=ann_id, owner=owner, actor_id=actor["id"] if actor else None,
                   generator=actor["name"] if actor else None, visibility=visibility,
                   licence=data.get("rights") or licence, created=now, modified=now, version=1,
                   data=data)
        with self.engine.begin() as conn:
            done = conn.execute(annotations.insert().values(**row))
            conn.execute(versions.insert().values(annotation=ann_id, n=1, at=now, by=owner,
                                                  action="created", visibility=visibility,
                                                  data=data))
            self._write_keys(conn, ann_id, found, text)
            self._index_text(conn, [(done.inserted_primary_key[0], data)])
            deltas: dict[tuple[str, bool], int] = {}
            self._count(deltas, _motivations(found), row["actor_id"] is not None, 1)
            self._tally(conn, deltas)
            if visibility == "public":
                conn.execute(changes.insert().values(at=now, annotation=ann_id, type="Create"))
        return self.get(ann_id)

    def batch(self, items: list[dict]) -> Batch:
        """The rows of a bulk contribution (:meth:`create_many`'s ``items``), made without
        the database: the commons service makes a batch's while the previous one commits."""
        rows, encoded = [], {}
        for item in items:
            ann_id, owner, data = item["id"], item["owner"], item["data"]
            visibility = check_visibility(item.get("visibility", "private"))
            actor = item.get("actor")
            found, text = index_keys(data)
            if self.sqlite:
                # what _insert_many and the full-text index would make inside the transaction
                encoded[id(data)] = to_json(data)
                doc = ft.document(texts_by_language(data))
            else:
                doc = None
            rows.append((item, dict(
                id=ann_id, owner=owner, actor_id=actor["id"] if actor else None,
                generator=actor["name"] if actor else None, visibility=visibility,
                licence=data.get("rights") or item.get("licence", CC_BY), created=None,
                modified=None, version=1, deleted=None, deleted_by=None, hidden_reason=None,
                hidden_by=None, hidden_at=None, data=data),
                [{"annotation": ann_id, "kind": kind, "value": value[:2000]}
                 for kind, values in found.items() for value in sorted(values)],
                text.lower(), _motivations(found), doc))
        return Batch(rows, encoded)

    def create_many(self, items: list[dict] | Batch, conn=None) -> list[tuple[str, bool]]:
        """Store many new annotations in ONE transaction (a bulk contribution).

        Each item is a dict with ``id``, ``owner``, ``data`` (prepared, with its ``id``),
        ``visibility``, optionally ``actor`` and ``key`` (an idempotency key, unique per owner).
        An item whose ``(owner, key)`` was stored before is not stored again: its annotation's
        id is given back instead. Either every new item is stored or none is (a crash in the
        middle leaves nothing half-written), so a client that got no answer sends the same
        batch again with the same keys.

        Parameters
        ----------
        items
            The annotations, as above, or their :meth:`batch`.
        conn
            A connection in a transaction the caller commits (the commons service commits a
            batch in a thread while it reads the next request); default: a transaction of its
            own, committed here.

        Returns
        -------
        list of (annotation id, created)
            In the order of ``items``; ``created`` is False for an item found by its key.
        """
        batch = items if isinstance(items, Batch) else self.batch(items)
        # the time of the transaction, not of the batch's making: the change feed's times
        # follow the order of its rows
        now = self.clock()
        out: list[tuple[str, bool]] = []
        with self.engine.begin() if conn is None else contextlib.nullcontext(conn) as conn:
            known: dict[tuple[str, str], str] = {}
            keyed = [(i["owner"], i["key"]) for i, *_ in batch.rows if i.get("key")]
            for owner in {o for o, _ in keyed}:
                wanted = [k for o, k in keyed if o == owner]
                for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
                    rows = conn.execute(select(submissions.c.key, submissions.c.annotation)
                                        .where(submissions.c.owner == owner,
                                               submissions.c.key.in_(wanted[start:start + 500])))
                    known.update({(owner, k): a for k, a in rows})
            rows_a, rows_v, rows_t, rows_k, rows_s, rows_i = [], [], [], [], [], []
            deltas: dict[tuple[str, bool], int] = {}  # the batch's counts, one upsert a pair
            docs: dict[str, str] = {}
            for item, row, found, text, motivations, doc in batch.rows:
                hit = known.get((item["owner"], item.get("key")))
                if hit is not None:
                    out.append((hit, False))
                    continue
                ann_id, owner = row["id"], row["owner"]
                row["created"] = row["modified"] = now
                rows_a.append(row)
                rows_v.append(dict(annotation=ann_id, n=1, at=now, by=owner, action="created",
                                   visibility=row["visibility"], data=row["data"]))
                rows_t.append({"annotation": ann_id, "text": text})
                rows_k += found
                docs[ann_id] = doc
                self._count(deltas, motivations, row["actor_id"] is not None, 1)
                if item.get("key"):
                    rows_s.append({"owner": owner, "key": item["key"], "annotation": ann_id})
                    known[(owner, item["key"])] = ann_id  # the same key twice in one batch
                if item.get("origin"):  # copied from another server (an import)
                    rows_i.append({"origin": item["origin"], "source": item["source"],
                                   "annotation": ann_id, "digest": item["digest"]})
                out.append((ann_id, True))
            encoded = batch.encoded  # each item's JSON once, for its row and version 1
            for table, rows in ((annotations, rows_a), (versions, rows_v), (texts, rows_t),
                                (keys, rows_k), (submissions, rows_s), (imported, rows_i)):
                if rows:
                    self._insert_many(conn, table, rows, encoded)
            public = [{"at": now, "annotation": r["id"], "type": "Create"} for r in rows_a
                      if r["visibility"] == "public"]
            if public:
                self._insert_many(conn, changes, public, encoded)
            self._tally(conn, deltas)
            new = {r["id"]: r["data"] for r in rows_a}
            ids = list(new)
            for start in range(0, len(ids), 500):
                found_seq = conn.execute(select(annotations.c.id, annotations.c.seq).where(
                    annotations.c.id.in_(ids[start:start + 500]))).all()
                if self.sqlite:
                    conn.exec_driver_sql("INSERT INTO fulltext(rowid, doc) VALUES (?, ?)",
                                         [(seq, docs[i]) for i, seq in found_seq])
                else:
                    self._index_text(conn, [(seq, new[i]) for i, seq in found_seq])
        return out

    def _insert_many(self, conn, table: Table, rows: list[dict], encoded: dict[int, str]) -> None:
        """``INSERT`` many rows in one executemany.

        On SQLite the rows go straight to the driver, converted by the columns' own bind
        processors (the values SQLAlchemy would store): its per-row parameter building was
        half the time of a bulk batch. PostgreSQL takes SQLAlchemy's "insertmanyvalues" path,
        which batches rows into multi-row ``INSERT`` statements itself.
        """
        if not self.sqlite:
            conn.execute(table.insert(), rows)
            return
        cols = list(rows[0])
        procs = []
        for name in cols:
            col_type = table.c[name].type
            if isinstance(col_type, JSON):
                procs.append(lambda v: encoded.get(id(v)) or encoded.setdefault(
                    id(v), to_json(v)))
            else:
                # the dialect's own type (SQLite's DATETIME formats the text create() stores;
                # the generic DateTime has no processor, and sqlite3's deprecated default
                # adapter then wrote another text, with "+00:00", for each row)
                procs.append(col_type.dialect_impl(conn.dialect).bind_processor(conn.dialect))
        names = ", ".join(f'"{c}"' for c in cols)
        marks = ", ".join("?" * len(cols))
        columns = []
        for name, proc in zip(cols, procs, strict=True):
            values = [r[name] for r in rows]
            if proc is not None:
                # column by column, each distinct object converted once: a batch's rows share
                # one timestamp, and an item's JSON is the same object in two tables
                memo: dict[int, object] = {}
                values = [None if v is None else memo[id(v)] if id(v) in memo
                          else memo.setdefault(id(v), proc(v)) for v in values]
            columns.append(values)
        conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',
                             list(zip(*columns, strict=True)))

    def _write_keys(self, conn, ann_id: str, found: dict[str, set[str]], text: str,
                    replace: bool = False) -> None:
        if replace:
            conn.execute(keys.delete().where(keys.c.annotation == ann_id))
            conn.execute(texts.delete().where(texts.c.annotation == ann_id))
        conn.execute(texts.insert().values(annotation=ann_id, text=text.lower()))
        rows = [{"annotation": ann_id, "kind": kind, "value": value[:2000]}
                for kind, values in found.items() for value in sorted(values)]
        if rows:
            conn.execute(keys.insert(), rows)

    def get(self, ann_id: str) -> Record | None:
        """The annotation, tombstoned or hidden ones included (the caller decides)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(annotations).where(annotations.c.id == ann_id)).first()
        return _record(row) if row else None

    def _change(self, ann_id: str, by: str, action: str, *, expect: int | None = None,
                **values) -> Record:
        """Apply ``values`` as the next version, if the stored version is ``expect``."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(annotations).where(annotations.c.id == ann_id)
                               .with_for_update()).first()
            if row is None:
                msg = f"no annotation {ann_id}"
                raise StoreError(msg, 404)
            cur = _record(row)
            if expect is not None and cur.version != expect:
                msg = (f"annotation {ann_id} is at version {cur.version}, not {expect}: "
                       "read it again and re-apply your change")
                raise StoreError(msg, 412)
            n = cur.version + 1
            values.setdefault("data", cur.data)
            values.setdefault("visibility", cur.visibility)
            # compare-and-set on the version: two concurrent writers cannot both win
            done = conn.execute(update(annotations)
                                .where(annotations.c.id == ann_id,
                                       annotations.c.version == cur.version)
                                .values(version=n, modified=now, **values))
            if done.rowcount != 1:
                msg = f"annotation {ann_id} changed meanwhile; read it again"
                raise StoreError(msg, 412)
            conn.execute(versions.insert().values(annotation=ann_id, n=n, at=now, by=by,
                                                  action=action,
                                                  visibility=values["visibility"],
                                                  data=values["data"]))
            seen = cur.visibility == "public" and cur.deleted is None and cur.hidden_reason is None
            shown = (values["visibility"] == "public" and cur.hidden_reason is None
                     and action != "deleted" and (cur.deleted is None or action == "restored"))
            kind = public_change(seen, shown)
            if kind:
                conn.execute(changes.insert().values(at=now, annotation=ann_id, type=kind))
            # the counts: out with what the annotation counted as, in with what it counts as
            # now (its stored keys, not its JSON: a withdrawn one's keys were erased)
            before = self._motivation_keys(conn, [ann_id]).get(ann_id, set())
            after = before
            if action == "updated":
                found, text = index_keys(values["data"])
                after = _motivations(found)
                self._write_keys(conn, ann_id, found, text, replace=True)
                self._index_text(conn, [(cur.seq, values["data"])], replace=True)
            deltas: dict[tuple[str, bool], int] = {}
            software = cur.actor_id is not None
            if cur.deleted is None:
                self._count(deltas, before, software, -1)
            if values.get("deleted", cur.deleted) is None:
                self._count(deltas, after, software, 1)
            self._tally(conn, deltas)
        return self.get(ann_id)

    def update(self, ann_id: str, by: str, data: dict, *, visibility: str | None = None,
               expect: int | None = None) -> Record:
        """Replace the annotation's JSON (a new version; the previous one is kept)."""
        values = {"data": data, "licence": data.get("rights") or CC_BY}
        if visibility is not None:
            values["visibility"] = check_visibility(visibility)
        cur = self.get(ann_id)
        if cur is not None and cur.deleted is not None:
            msg = f"annotation {ann_id} was deleted"
            raise StoreError(msg, 410)
        return self._change(ann_id, by, "updated", expect=expect, **values)

    def delete(self, ann_id: str, by: str, expect: int | None = None) -> Record:
        """Tombstone: the annotation answers 410 from now on; its history stays."""
        return self._change(ann_id, by, "deleted", expect=expect, deleted=self.clock(),
                            deleted_by=by)

    def restore(self, ann_id: str, by: str) -> Record:
        """Undo a delete (admins)."""
        return self._change(ann_id, by, "restored", deleted=None, deleted_by=None)

    def hide(self, ann_id: str, by: str, reason: str | None, *,
             why_shown: str | None = None) -> Record:
        """Hide an abusive annotation from everyone but its owner and admins (``reason`` is
        kept; ``None`` shows it again, for the reason ``why_shown`` if given). Not a new
        version: the content did not change. Each hide and show is written to the moderation
        log in the same transaction."""
        if reason is not None and not reason.strip():
            msg = "give the reason for hiding the annotation"
            raise StoreError(msg)
        why = reason if reason is not None else (why_shown or "").strip() or None
        now = self.clock()
        with self.engine.begin() as conn:
            cur = conn.execute(select(annotations.c.visibility, annotations.c.deleted,
                                      annotations.c.hidden_reason)
                               .where(annotations.c.id == ann_id)).first()
            done = conn.execute(update(annotations).where(annotations.c.id == ann_id).values(
                hidden_reason=reason, hidden_by=by if reason else None,
                hidden_at=now if reason else None))
            if done.rowcount != 1 or cur is None:
                msg = f"no annotation {ann_id}"
                raise StoreError(msg, 404)
            public = cur.visibility == "public" and cur.deleted is None
            kind = public_change(public and cur.hidden_reason is None,
                                 public and reason is None)
            if kind:
                conn.execute(changes.insert().values(at=now, annotation=ann_id, type=kind))
            conn.execute(moderation.insert().values(
                at=now, by=by, annotation=ann_id, action="hidden" if reason else "shown",
                reason=why))
        return self.get(ann_id)

    def withdraw_account(self, owner: str, by: str) -> dict[str, int]:
        """An account's deletion on request: its private and group annotations are erased
        (rows, history, search entries); its public ones become tombstones that keep who made
        them, when and on what (``creator``, ``generator``, ``created``, ``target``) but not
        what they said, in every version. Returns the counts ``erased`` and ``withdrawn``.
        """
        now = self.clock()
        kept = ("@context", "id", "type", "creator", "generator", "created", "target",
                "motivation")
        with self.engine.begin() as conn:
            rows = conn.execute(select(annotations.c.id, annotations.c.seq,
                                       annotations.c.visibility, annotations.c.data,
                                       annotations.c.deleted, annotations.c.hidden_reason,
                                       annotations.c.actor_id)
                                .where(annotations.c.owner == owner)
                                # locked (PostgreSQL): an update of one meanwhile waits, so
                                # the motivations uncounted below are the ones stored
                                .with_for_update()).all()
            erase = [r for r in rows if r.visibility != "public"]
            withdraw = [r for r in rows if r.visibility == "public"]
            # every one counted so far stops counting: erased, or a tombstone from now on
            counted = [r for r in rows if r.deleted is None]
            found = self._motivation_keys(conn, [r.id for r in counted])
            deltas: dict[tuple[str, bool], int] = {}
            for r in counted:
                self._count(deltas, found.get(r.id), r.actor_id is not None, -1)
            self._tally(conn, deltas)
            for r in rows:  # the search entries of both go: nothing to find them by content
                conn.execute(keys.delete().where(keys.c.annotation == r.id))
                conn.execute(texts.delete().where(texts.c.annotation == r.id))
            self._unindex_text(conn, [r.seq for r in rows])
            for r in erase:
                for table in (versions, submissions, changes, moderation):
                    conn.execute(table.delete().where(table.c.annotation == r.id))
                conn.execute(annotations.delete().where(annotations.c.id == r.id))
            for r in withdraw:
                stub = {k: r.data[k] for k in kept if k in r.data}
                stub["bodyValue"] = "(withdrawn at the author's request)"
                conn.execute(versions.update().where(versions.c.annotation == r.id)
                             .values(data=stub))
                gone = {} if r.deleted is not None else {"deleted": now, "deleted_by": by}
                conn.execute(update(annotations).where(annotations.c.id == r.id)
                             .values(data=stub, modified=now, **gone))
                if r.deleted is None and r.hidden_reason is None:
                    conn.execute(changes.insert().values(at=now, annotation=r.id,
                                                         type="Delete"))
        return {"erased": len(erase), "withdrawn": len(withdraw)}

    # -- imports from other annotation servers ------------------------------------------
    def imported_from(self, source: str) -> dict[str, tuple[str, str, bool]]:
        """What was copied from the container ``source``: origin IRI -> (local annotation id,
        digest of the origin's JSON, whether the local copy is deleted)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(imported.c.origin, imported.c.annotation,
                                       imported.c.digest, annotations.c.deleted)
                                .join(annotations, annotations.c.id == imported.c.annotation)
                                .where(imported.c.source == source)).all()
        return {r.origin: (r.annotation, r.digest, r.deleted is not None) for r in rows}

    def set_import_digest(self, origin: str, digest: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(imported).where(imported.c.origin == origin)
                         .values(digest=digest))

    def import_run(self, source: str, *, started: datetime | None = None,
                   finished: datetime | None = None, result: dict | None = None) -> dict:
        """Record (and return) the state of ``source``'s runs: ``started`` counts a new run;
        ``finished`` with ``result`` ends it."""
        with self.engine.begin() as conn:
            row = conn.execute(select(import_runs).where(import_runs.c.source == source)
                               ).first()
            if row is None:
                conn.execute(import_runs.insert().values(source=source, runs=0))
                row = conn.execute(select(import_runs)
                                   .where(import_runs.c.source == source)).first()
            values: dict = {}
            if started is not None:
                values.update(started=started, runs=row.runs + 1)
            if finished is not None:
                values.update(finished=finished, result=result)
            if values:
                conn.execute(update(import_runs).where(import_runs.c.source == source)
                             .values(**values))
                row = conn.execute(select(import_runs)
                                   .where(import_runs.c.source == source)).first()
        return dict(row._mapping)

    def _unindex_text(self, conn, seqs: list[int]) -> None:
        for start in range(0, len(seqs), 500):
            part = seqs[start:start + 500]
            if self.sqlite:
                conn.exec_driver_sql("DELETE FROM fulltext WHERE rowid = ?",
                                     [(seq,) for seq in part])
            else:
                conn.execute(pg_fulltext.delete().where(pg_fulltext.c.seq.in_(part)))

    def changes(self, offset: int = 0, limit: int | None = 100) -> tuple[int, list[dict]]:
        """The public changes, oldest first: ``(total, entries)`` with ``n`` (the change's
        number, increasing), ``at``, ``annotation`` (id) and ``type``."""
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(changes)).scalar_one()
            query = select(changes).order_by(changes.c.n).offset(offset)
            rows = conn.execute(query if limit is None else query.limit(limit)).all()
        return total, [dict(r._mapping) for r in rows]

    def change(self, n: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(changes).where(changes.c.n == n)).first()
        return dict(row._mapping) if row else None

    def moderation_log(self, offset: int = 0, limit: int = 100) -> tuple[int, list[dict]]:
        """The moderation log, newest first: ``(total, entries)``; an entry is ``at``,
        ``by``, ``annotation`` (its id), ``action`` (``hidden`` | ``shown``), ``reason``."""
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(moderation)).scalar_one()
            rows = conn.execute(select(moderation).order_by(moderation.c.n.desc())
                                .offset(offset).limit(limit)).all()
        return total, [dict(r._mapping) for r in rows]

    def versions(self, ann_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(versions).where(versions.c.annotation == ann_id)
                                .order_by(versions.c.n)).all()
        return [dict(r._mapping) for r in rows]

    def version(self, ann_id: str, n: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(versions).where(versions.c.annotation == ann_id,
                                                      versions.c.n == n)).first()
        return dict(row._mapping) if row else None

    # -- search -------------------------------------------------------------------------
    def _visible(self, viewer: Viewer):
        if viewer.admin:
            return None
        cond = annotations.c.visibility == "public"
        if viewer.groups:
            cond = or_(cond, annotations.c.visibility.in_([f"group:{g}" for g in viewer.groups]))
        cond = cond & annotations.c.hidden_reason.is_(None)
        if viewer.name:
            cond = or_(cond, annotations.c.owner == viewer.name)
        return cond

    def search(self, viewer: Viewer, *, offset: int = 0, limit: int | None = 100,
               target: str | None = None, source: str | None = None,
               creator: str | None = None, generator: str | None = None,
               motivation: str | None = None, tag: str | None = None,
               group: str | None = None, visibility: str | None = None,
               q: str | None = None, text: str | None = None, lang: str | None = None,
               count: bool = True, after: int | None = None) -> tuple[int, list[Record]]:
        """Annotations ``viewer`` may see, oldest first, matching every criterion given.

        Returns the total number of matches and the ``limit`` records from ``offset``.
        ``after`` (a record's ``seq``; 0 for the start) pages by key instead: the records
        after that one, ``offset`` ignored. Each such page is a range read of the primary key,
        where an offset page reads and drops every row before it (a whole collection read by
        offset is quadratic; Winand, *SQL Performance Explained*, 2012, §7 "Paging Through
        Results"), and an annotation added meanwhile only ever comes after the last key.
        ``q`` matches the text of the bodies, case-insensitively (``LIKE`` on a lower-cased
        copy in the narrow ``texts`` table: portable across SQLite and PostgreSQL, ~70 ms at
        10⁵ annotations, see ``benchmarks/commons.py``). ``text`` is a full-text search
        (words reduced to their stems, in ``lang`` or in every supported language; see
        :mod:`echoes_lab.commons.fulltext`): the results are then ranked, best first.
        """
        conds = [annotations.c.deleted.is_(None)]
        visible = self._visible(viewer)
        if visible is not None:
            conds.append(visible)
        for kind, value in (("target", target), ("source", source),
                            ("motivation", motivation), ("tag", tag)):
            if value:
                conds.append(annotations.c.id.in_(
                    select(keys.c.annotation).where(keys.c.kind == kind, keys.c.value == value)))
        if creator:
            conds.append(annotations.c.owner == creator)
        if generator:
            conds.append(annotations.c.generator == generator)
        if group:
            conds.append(annotations.c.visibility == f"group:{group}")
        if visibility:
            conds.append(annotations.c.visibility == visibility)
        if q:
            words = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(annotations.c.id.in_(select(texts.c.annotation).where(
                texts.c.text.like(f"%{words}%", escape="\\"))))
        if after is not None:
            if text:
                msg = ("'after' pages in the collection's order and 'text' ranks the "
                       "matches: use one or the other")
                raise StoreError(msg)
            conds.append(annotations.c.seq > after)
            offset = 0
        source_ = annotations
        order = [annotations.c.seq]
        if text:
            sub, best = self._ranked(text, lang)
            source_ = annotations.join(sub, sub.c.seq == annotations.c.seq)
            order = [best, annotations.c.seq]
        query = select(annotations).select_from(source_).where(*conds).order_by(*order)
        if limit is not None:
            query = query.offset(offset).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            total = (conn.execute(select(func.count()).select_from(source_).where(*conds))
                     .scalar_one() if count else len(rows))
        return total, [_record(r) for r in rows]

    # -- actors -------------------------------------------------------------------------
    def add_actor(self, owner: str, name: str, version: str, homepage: str | None = None) -> dict:
        """Register (or find) the software agent ``name`` ``version`` owned by ``owner``."""
        for label, value in (("name", name), ("version", version)):
            if not isinstance(value, str) or not value.strip():
                msg = f"an actor needs a '{label}' (a non-empty string)"
                raise StoreError(msg)
        with self.engine.begin() as conn:
            row = conn.execute(select(actors).where(actors.c.owner == owner,
                                                    actors.c.name == name,
                                                    actors.c.version == version)).first()
            if row is None:
                conn.execute(actors.insert().values(id=new_id(), owner=owner, name=name,
                                                    version=version, homepage=homepage,
                                                    created=self.clock()))
        return next(a for a in self.actors(owner) if a["name"] == name and a["version"] == version)

    def actor(self, actor_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(actors).where(actors.c.id == actor_id)).first()
        return dict(row._mapping) if row else None

    def actors(self, owner: str | None = None) -> list[dict]:
        query = select(actors).order_by(actors.c.created)
        if owner:
            query = query.where(actors.c.owner == owner)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def to_json(data) -> str:
    """JSON text of ``data`` as the database keeps it (UTF-8 characters, no escapes)."""
    return orjson.dumps(data).decode()


def dumps(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
