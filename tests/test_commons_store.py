"""The commons' store on SQLite and on a real PostgreSQL server started by the test itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from echoes_lab.commons.model import AnnotationError, index_keys, prepare
from echoes_lab.commons.store import Store, StoreError, Viewer, new_id


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (``initdb``, ``pg_ctl``), of any version.

    ``pg_config --bindir`` names it (Debian: ``/usr/lib/postgresql/<major>/bin``); without
    ``pg_config``, the newest major of the layout Debian's ``pg_ctlcluster`` uses.
    """
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        bindir = Path(done.stdout.strip())
        if done.returncode == 0 and (bindir / "initdb").exists():
            return bindir
    found = [b for b in Path("/usr/lib/postgresql").glob("*/bin") if (b / "initdb").exists()]
    found.sort(key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)
    return found[-1] if found else None


PG_BIN = postgres_bin()
BASE = "http://hub.example/services/commons/"
CANVAS = "https://iiif.example/manifest/1/canvas/p1"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL cluster in a temporary folder (unix socket, free port).

    PostgreSQL refuses to run as root, so under root the cluster belongs to ``nobody``.
    """
    if PG_BIN is None:
        pytest.skip("PostgreSQL's initdb is not installed (neither pg_config --bindir nor "
                    "/usr/lib/postgresql/*/bin has it): apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="echoes-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "nobody", "--"]
        os.chmod(root, 0o755)
        shutil.chown(sock, "nobody")
        data.mkdir()
        shutil.chown(data, "nobody")
    port = _free_port()
    subprocess.run([*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres", "--no-sync"], check=True, capture_output=True)
    ctl = [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log")]
    subprocess.run([*ctl, "-w", "-o", f"-p {port} -k {sock} -h ''", "start"], check=True,
                   capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([*ctl, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


class Clock:
    def __init__(self):
        self.now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self):
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'commons.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = Store(url, clock=Clock())
    yield s
    if not s.sqlite:  # one cluster for the module: empty it for the next test
        from echoes_lab.commons.store import metadata, pg_metadata

        pg_metadata.drop_all(s.engine)
        metadata.drop_all(s.engine)
    s.close()


def region(xywh: str, canvas: str = CANVAS) -> dict:
    return {"type": "SpecificResource", "source": {"id": canvas, "type": "Canvas"},
            "selector": {"type": "FragmentSelector", "value": f"xywh={xywh}",
                         "conformsTo": "http://www.w3.org/TR/media-frags/"}}


def add(store: Store, owner: str, body: str, *, target=None, visibility="public", actor=None,
        motivation="commenting", tags=()):
    ann_id = new_id()
    bodies = [{"type": "TextualBody", "value": body}]
    bodies += [{"type": "TextualBody", "value": t, "purpose": "tagging"} for t in tags]
    data = prepare({"type": "Annotation", "motivation": motivation, "body": bodies,
                    "target": target or region("10,20,30,40")},
                   iri=f"{BASE}annotations/{ann_id}", user=owner, display=owner.title(),
                   base=BASE, now=store.clock(), licence="https://creativecommons.org/licenses/by/4.0/",
                   actor=actor)
    return store.create(ann_id, owner, data, visibility=visibility, actor=actor)


def test_create_get_and_history(store):
    rec = add(store, "alice", "Smalt, discoloured", tags=["smalt"])
    assert rec.version == 1 and rec.data["creator"]["nickname"] == "alice"
    assert rec.data["rights"] == "https://creativecommons.org/licenses/by/4.0/"
    changed = dict(rec.data, body={"type": "TextualBody", "value": "Azurite, not smalt"})
    rec2 = store.update(rec.id, "alice", changed, expect=1)
    assert rec2.version == 2 and rec2.etag != rec.etag
    with pytest.raises(StoreError) as stale:
        store.update(rec.id, "alice", changed, expect=1)
    assert stale.value.status == 412
    hist = store.versions(rec.id)
    assert [v["action"] for v in hist] == ["created", "updated"]
    assert hist[0]["data"]["body"][0]["value"] == "Smalt, discoloured"
    assert store.version(rec.id, 2)["data"]["body"]["value"] == "Azurite, not smalt"
    # the keys follow the new content: the old tag is gone, the new text is found
    assert store.search(Viewer("alice"), tag="smalt")[0] == 0
    assert store.search(Viewer("alice"), q="AZURITE")[0] == 1


def test_tombstone_restore_and_hide(store):
    rec = add(store, "alice", "inscription reads ANNO 1642")
    gone = store.delete(rec.id, "alice", expect=1)
    assert gone.deleted is not None and gone.version == 2
    assert store.search(Viewer(admin=True))[0] == 0
    with pytest.raises(StoreError) as e:
        store.update(rec.id, "alice", rec.data)
    assert e.value.status == 410
    back = store.restore(rec.id, "admin")
    assert back.deleted is None and [v["action"] for v in store.versions(rec.id)] == [
        "created", "deleted", "restored"]
    store.hide(rec.id, "admin", "insulting language")
    hidden = store.get(rec.id)
    assert not Viewer("bob").may_see(hidden) and Viewer("alice").may_see(hidden)
    assert store.search(Viewer("bob"))[0] == 0 and store.search(Viewer("alice"))[0] == 1
    store.hide(rec.id, "admin", None)
    assert store.search(Viewer())[0] == 1


def test_visibility_and_search(store):
    robot = store.add_actor("carol", "tesseract", "5.3.0")
    assert store.add_actor("carol", "tesseract", "5.3.0")["id"] == robot["id"]
    add(store, "alice", "private note", visibility="private")
    add(store, "alice", "for the lab", visibility="group:lab", motivation="describing")
    add(store, "bob", "public 50%_off", target=region("0,0,5,5", canvas=CANVAS + "x"))
    add(store, "carol", "ANNO", visibility="public", actor=robot, motivation="transcribing")
    assert store.search(Viewer())[0] == 2
    assert store.search(Viewer("bob"))[0] == 2
    assert store.search(Viewer("bob", frozenset({"lab"})))[0] == 3
    assert store.search(Viewer("alice"))[0] == 4
    assert store.search(Viewer("alice"), target=CANVAS)[0] == 3       # regions of one canvas
    assert store.search(Viewer("alice"), source=CANVAS + "x")[0] == 1
    assert store.search(Viewer("alice"), generator="tesseract")[0] == 1
    assert store.search(Viewer("alice"), creator="bob")[0] == 1
    assert store.search(Viewer("alice"), motivation="describing")[0] == 1
    assert store.search(Viewer("alice"), motivation="transcribing")[0] == 1
    assert store.search(Viewer("alice"), group="lab")[0] == 1
    assert store.search(Viewer("alice"), q="50%_")[0] == 1            # LIKE wildcards escaped
    assert store.search(Viewer("alice"), q="5%off")[0] == 0
    total, page = store.search(Viewer("alice"), offset=1, limit=2)
    assert total == 4 and len(page) == 2
    gen = store.search(Viewer(), generator="tesseract")[1][0].data["generator"]
    assert gen["type"] == "Software" and gen["version"] == "5.3.0"


def test_keyset_pages_give_every_visible_annotation_once_in_order(store):
    """Paging by key (``after``, the knowledge service's re-read of the commons): every
    annotation the viewer may see exactly once, oldest first, while others are added between
    pages; private, hidden and deleted ones left out as in the offset pages."""
    made = [add(store, "kpalice", f"note {i}") for i in range(7)]
    add(store, "kpalice", "mine alone", visibility="private")
    store.hide(add(store, "kpbob", "insulting").id, "admin", "insulting language")
    store.delete(made[3].id, "kpalice")
    seen: list[str] = []
    after = 0
    while True:
        _, page = store.search(Viewer(), after=after, limit=3, count=False)
        if not page:
            break
        seen += [r.id for r in page]
        after = page[-1].seq
        if len(seen) <= 6:  # added while the reader is between pages: read at the end
            made.append(add(store, "kpalice", f"late {len(made)}"))
    expected = [r.id for r in made if r.id != made[3].id]
    assert seen == expected and len(set(seen)) == len(seen) == 8
    # offset ignored; other criteria apply as in the offset pages
    assert [r.id for r in store.search(Viewer(), after=made[5].seq, offset=4)[1]] == [
        r.id for r in made[6:]]
    assert store.search(Viewer(), after=0, creator="kpbob")[1] == []
    with pytest.raises(StoreError, match="'after'"):
        store.search(Viewer(), after=0, text="note")


def test_server_sets_identity():
    kw = dict(iri=BASE + "annotations/x", user="bob", display="Bob", base=BASE,
              now=datetime(2026, 1, 1, tzinfo=UTC), licence="L")
    ann = {"type": "Annotation", "target": "https://example.org/object/1",
           "creator": {"type": "Person", "nickname": "alice"}}
    with pytest.raises(AnnotationError) as e:
        prepare(ann, **kw)
    assert e.value.status == 403
    with pytest.raises(AnnotationError):
        prepare({"type": "Annotation", "target": "x", "generator": {"type": "Software"}}, **kw)
    with pytest.raises(AnnotationError, match="target"):
        prepare({"type": "Annotation"}, **kw)
    ok = prepare({"type": "Annotation", "target": "t", "id": "http://evil/x",
                  "created": "1900-01-01T00:00:00Z"}, **kw)
    assert ok["id"] == BASE + "annotations/x" and ok["created"] == "2026-01-01T00:00:00Z"
    keys, text = index_keys({"target": [region("1,2,3,4"), "https://o/1"],
                             "body": [{"value": "Lead white", "purpose": "tagging"}]})
    assert keys["target"] == {CANVAS, "https://o/1"} and keys["tag"] == {"Lead white"}
    assert text == "Lead white"


def test_acknowledged_write_survives_a_killed_process(tmp_path):
    """An annotation whose create returned is on disk although the writer is SIGKILLed
    straight after (WAL, synchronous=FULL)."""
    import sys

    db = tmp_path / "c.sqlite"
    code = (
        "import os, signal, sys\n"
        "from echoes_lab.commons.store import Store\n"
        f"s = Store('sqlite:///{db}')\n"
        "for i in range(20):\n"
        "    s.create(f'a{i}', 'alice', {'type': 'Annotation', 'target': 't', 'body': str(i)})\n"
        "    print(i, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == -9
    acked = out.stdout.split()
    assert len(acked) == 20
    s = Store(f"sqlite:///{db}")
    assert s.search(Viewer(admin=True))[0] == 20
    s.close()


def bulk_item(store: Store, owner: str, body: str, key: str | None, actor=None,
              visibility: str = "public") -> dict:
    ann_id = new_id()
    data = prepare({"type": "Annotation", "motivation": "transcribing",
                    "body": {"type": "TextualBody", "value": body}, "target": region("0,0,9,9")},
                   iri=f"{BASE}annotations/{ann_id}", user=owner, display=owner, base=BASE,
                   now=store.clock(), licence="https://creativecommons.org/licenses/by/4.0/",
                   actor=actor)
    return {"id": ann_id, "owner": owner, "data": data, "visibility": visibility,
            "actor": actor, "key": key}


def test_bulk_rows_keep_their_times_as_single_creates_do(tmp_path):
    """``create_many`` writes a time as ``create`` does (SQLAlchemy's SQLite ``DATETIME``
    text), so times compare and sort alike whichever way an annotation came in; it wrote
    sqlite3's default adapter's text, ``2026-12-06 20:00:00+00:00``, which sorts before
    ``2026-12-06 20:00:00.5`` of the same second."""
    moment = datetime(2026, 12, 6, 20, 0, 0, tzinfo=UTC)  # microsecond 0: the telling case
    s = Store(f"sqlite:///{tmp_path / 'commons.sqlite'}", clock=lambda: moment)
    add(s, "ada", "one by one")
    s.create_many([bulk_item(s, "ada", "in bulk", None)])
    with s.engine.connect() as conn:
        created = conn.exec_driver_sql("SELECT created, modified FROM annotations").all()
        at = conn.exec_driver_sql("SELECT at FROM versions UNION ALL SELECT at FROM changes"
                                  ).all()
    s.close()
    text = "2026-12-06 20:00:00.000000"
    assert [tuple(r) for r in created] == [(text, text)] * 2
    assert [r[0] for r in at] == [text] * 4


def test_ids_sort_by_their_time_and_keep_128_random_bits():
    """An id is 12 hex digits of milliseconds since 1970, then 128 random bits in URL-safe
    base64 (22 characters): later ids sort after earlier ones (so a batch's rows sit together
    in the indexes), yet none can be guessed from another."""
    import base64
    import time

    first = new_id()
    ms = int(first[:12], 16)
    assert abs(ms - time.time_ns() // 1_000_000) < 60_000  # the clock's time, not a counter
    while time.time_ns() // 1_000_000 <= ms:  # the next millisecond
        pass
    later = new_id()
    assert later > first and int(later[:12], 16) > ms
    many = [new_id() for _ in range(2000)]
    randoms = {i[12:] for i in many}
    assert len(randoms) == 2000
    assert all(len(r) == 22 and len(base64.urlsafe_b64decode(r + "==")) == 16 for r in randoms)
    assert many == sorted(many, key=lambda i: i[:12])  # never out of time order


def test_create_many_is_one_transaction_and_idempotent(store):
    ocr = store.add_actor("olga", "tesseract", "5.3.0")
    batch = [bulk_item(store, "olga", f"Zeile {i}", f"run-1#{i}", actor=ocr) for i in range(300)]
    made = store.create_many(batch)
    assert [c for _, c in made] == [True] * 300 and len({i for i, _ in made}) == 300
    total, recs = store.search(Viewer(), generator="tesseract", limit=None)
    assert total == 300 and {r.data["body"]["value"] for r in recs} == {
        f"Zeile {i}" for i in range(300)}
    rec = store.get(made[7][0])
    assert rec.version == 1 and rec.owner == "olga" and rec.actor_id == ocr["id"]
    assert rec.data["generator"]["name"] == "tesseract" and rec.licence.endswith("/by/4.0/")
    assert [v["action"] for v in store.versions(rec.id)] == ["created"]
    assert store.search(Viewer(), q="zeile 7", limit=None)[0] >= 1  # its text is searchable
    assert store.search(Viewer(), source=CANVAS, limit=None)[0] == 300  # and its keys

    # the same keys again (a retried batch): found, not stored twice; new keys are stored
    again = [bulk_item(store, "olga", f"Zeile {i}", f"run-1#{i}") for i in range(300)]
    again.append(bulk_item(store, "olga", "Zeile 300", "run-1#300"))
    redo = store.create_many(again)
    assert redo[:300] == [(i, False) for i, _ in made] and redo[300][1] is True
    assert store.search(Viewer(), creator="olga", limit=None)[0] == 301
    # keys are per owner: another person's "run-1#0" is their own
    assert store.create_many([bulk_item(store, "piet", "x", "run-1#0")])[0][1] is True

    # one bad item (a visibility that is none) and the whole batch is refused: nothing stored
    bad = [bulk_item(store, "olga", f"half {i}", None) for i in range(5)]
    bad[3]["visibility"] = "everyone"
    with pytest.raises(StoreError, match="visibility must be"):
        store.create_many(bad)
    assert store.search(Viewer(), q="half", limit=None)[0] == 0
    # a failure in the database half-way (two items with one id): the batch is rolled back
    from sqlalchemy.exc import IntegrityError

    clash = [bulk_item(store, "olga", f"clash {i}", f"run-2#{i}") for i in range(4)]
    clash[3]["id"] = clash[0]["id"]
    with pytest.raises(IntegrityError):
        store.create_many(clash)
    assert store.search(Viewer(), q="clash", limit=None)[0] == 0


def add_lang(store: Store, owner: str, text: str, language: str | None, **kw):
    ann_id = new_id()
    body = {"type": "TextualBody", "value": text, **({"language": language} if language else {})}
    data = prepare({"type": "Annotation", "motivation": kw.get("motivation", "commenting"),
                    "body": body, "target": region("1,2,3,4", kw.get("canvas", CANVAS))},
                   iri=f"{BASE}annotations/{ann_id}", user=owner, display=owner, base=BASE,
                   now=store.clock(), licence="https://creativecommons.org/licenses/by/4.0/")
    return store.create(ann_id, owner, data, visibility=kw.get("visibility", "public"))


def found(store, text, **kw) -> list[str]:
    return [r.data["body"]["value"] for r in store.search(Viewer("zoe"), text=text, **kw)[1]]


def test_full_text_in_english_french_and_german_with_stemming(store):
    """Stems as the Snowball stemmers give them (https://snowballstem.org/algorithms/):
    English *paintings*/*painting* -> ``paint``, *restored* -> ``restor``; French *chevaux*
    and *cheval* -> ``cheval``, *restaurées* -> ``restaur``; German *Gemäldes*/*Gemälde* ->
    ``gemald``, *Häuser*/*Haus* -> ``haus``."""
    en = add_lang(store, "ann", "The paintings were restored in 1890", "en")
    add_lang(store, "ann", "A drawing on vellum", "en")
    fr = add_lang(store, "bea", "Les chevaux de la fresque ont été restaurées", "fr")
    de = add_lang(store, "carl", "Die Farbe des Gemäldes und der Häuser", "de-AT",
                  canvas="https://iiif.example/manifest/1/canvas/p2")
    add_lang(store, "dora", "Gemälde", None, visibility="private")  # dora's own: not zoe's

    assert found(store, "painting restore") == ["The paintings were restored in 1890"]
    assert found(store, "cheval", lang="fr") == [fr.data["body"]["value"]]
    assert found(store, "cheval") == [fr.data["body"]["value"]]  # any language's stems
    assert found(store, "Gemälde haus") == [de.data["body"]["value"]]
    assert found(store, "gemälde") == [de.data["body"]["value"]]  # the private one is dora's
    assert found(store, "unicorn") == []
    # combined with the other filters, and paged
    assert found(store, "gemälde", source="https://iiif.example/manifest/1/canvas/p2") != []
    assert found(store, "gemälde", source=CANVAS) == []
    assert found(store, "restored restaurées", creator="ann") == []  # words are AND-ed
    assert store.search(Viewer("zoe"), text="restored", creator="ann")[0] == 1
    add_lang(store, "bea", "Un cheval blanc", "fr")
    total, page = store.search(Viewer("zoe"), text="chevaux", offset=1, limit=1)
    assert total == 2 and len(page) == 1
    # an update is searched by its new words only
    store.update(en.id, "ann", dict(en.data, body={"type": "TextualBody", "language": "en",
                                                   "value": "Varnish removed"}))
    assert found(store, "painting") == [] and found(store, "varnish") == ["Varnish removed"]


def test_full_text_is_ranked(store):
    """More occurrences of the word in a body of the same length rank higher (BM25 on SQLite,
    S. Robertson & H. Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009;
    ``ts_rank``'s frequency weighting on PostgreSQL)."""
    add_lang(store, "ann", "smalt in a painting of the sky with blue clouds", "en")
    add_lang(store, "ann", "smalt smalt smalt degraded into grey", "en")
    add_lang(store, "ann", "azurite and a little smalt beside lead white", "en")
    ranked = found(store, "smalt")
    assert ranked[0] == "smalt smalt smalt degraded into grey" and len(ranked) == 3


def test_moderation_log(store):
    rec = add(store, "alice", "spam spam")
    store.hide(rec.id, "mod", "advertising")
    store.hide(rec.id, "mod", None, why_shown="link removed by the author")
    store.hide(rec.id, "admin", None)  # showing without a reason is logged too
    with pytest.raises(StoreError, match="reason for hiding"):
        store.hide(rec.id, "mod", "  ")
    total, entries = store.moderation_log()
    assert total == 3
    assert [(e["action"], e["by"], e["reason"], e["annotation"]) for e in entries] == [
        ("shown", "admin", None, rec.id), ("shown", "mod", "link removed by the author", rec.id),
        ("hidden", "mod", "advertising", rec.id)]
    assert entries[0]["at"] > entries[2]["at"]
    assert store.moderation_log(offset=2, limit=5)[1][0]["action"] == "hidden"


def test_public_changes_for_the_change_feed(store):
    a = add(store, "alice", "one")                                   # Create
    add(store, "alice", "mine only", visibility="private")            # not told
    b = add(store, "bob", "two")                                     # Create
    store.update(a.id, "alice", dict(a.data, body={"type": "TextualBody", "value": "1"}))
    store.update(b.id, "bob", b.data, visibility="private")          # left the public: Delete
    store.hide(a.id, "mod", "spam")                                  # Delete
    store.hide(a.id, "mod", None)                                    # back: Create
    store.delete(a.id, "alice")                                      # Delete
    store.restore(a.id, "admin")                                     # Create
    batch = store.create_many([bulk_item(store, "olga", "bulk", None)])  # Create
    total, entries = store.changes()
    assert [(e["type"], e["annotation"]) for e in entries] == [
        ("Create", a.id), ("Create", b.id), ("Update", a.id), ("Delete", b.id),
        ("Delete", a.id), ("Create", a.id), ("Delete", a.id), ("Create", a.id),
        ("Create", batch[0][0])]
    assert total == 9 and [e["n"] for e in entries] == sorted(e["n"] for e in entries)
    assert store.changes(offset=8, limit=5)[1][0]["annotation"] == batch[0][0]


def test_a_database_from_before_the_feed_enters_it_once(store):
    a = add(store, "alice", "old public")
    add(store, "alice", "old private", visibility="private")
    from echoes_lab.commons.store import changes

    changes.drop(store.engine)  # as a commons.sqlite written before the feed existed
    reopened = Store(store.url, clock=store.clock)
    try:
        assert [(e["type"], e["annotation"]) for e in reopened.changes()[1]] == [
            ("Create", a.id)]
        again = Store(store.url, clock=store.clock)  # opened again: not added twice
        assert again.changes()[0] == 1
        again.close()
    finally:
        reopened.close()


def test_an_account_withdrawn_on_request(store):
    public = add(store, "wanda", "my public reading of the seal", tags=["seal"])
    store.update(public.id, "wanda", dict(public.data, body={"type": "TextualBody",
                                                             "value": "second thoughts"}))
    private = add(store, "wanda", "a private hunch", visibility="private")
    group = add(store, "wanda", "for the team", visibility="group:lab")
    other = add(store, "xavier", "not wanda's")
    assert store.withdraw_account("wanda", "admin") == {"erased": 2, "withdrawn": 1}
    assert store.get(private.id) is None and store.get(group.id) is None
    assert store.versions(private.id) == []
    tomb = store.get(public.id)
    assert tomb.deleted is not None and tomb.deleted_by == "admin"
    assert tomb.data["creator"]["nickname"] == "wanda" and tomb.data["target"]  # attribution
    assert "body" not in tomb.data and "withdrawn" in tomb.data["bodyValue"]
    assert all("body" not in v["data"] for v in store.versions(public.id))  # history too
    for words in ("seal", "second", "hunch", "team"):
        assert store.search(Viewer(admin=True), q=words)[0] == 0
        assert store.search(Viewer(admin=True), text=words)[0] == 0
    assert store.changes()[1][-1]["type"] == "Delete"
    assert store.get(other.id).data["body"][0]["value"] == "not wanda's"


def test_imported_copies_are_kept_by_their_origin_iri(store):
    """An import's state (issue 29.5): origin IRI -> copy, with the origin's digest; the runs
    of a source counted across calls (what a restarted service reads)."""
    from echoes_lab.commons.model import imported

    source = "https://other.example/annotations/"
    items = []
    for i in range(3):
        ann_id = new_id()
        origin = {"id": f"https://other.example/annotations/{i}", "type": "Annotation",
                  "target": CANVAS, "body": {"type": "TextualBody", "value": f"copied {i}"}}
        items.append({"id": ann_id, "owner": "import:other.example", "visibility": "public",
                      "data": imported(origin, iri=f"{BASE}annotations/{ann_id}",
                                       now=store.clock()),
                      "origin": origin["id"], "source": source, "digest": f"d{i}",
                      "licence": ""})
    made = store.create_many(items)
    known = store.imported_from(source)
    assert {o: (a, d) for o, (a, d, _) in known.items()} == {
        f"https://other.example/annotations/{i}": (made[i][0], f"d{i}") for i in range(3)}
    assert store.get(made[0][0]).licence == ""  # the origin named none: none invented
    # the same origin twice is refused by the database (a concurrent run cannot double it)
    from sqlalchemy.exc import IntegrityError

    again = {**items[0], "id": new_id()}
    with pytest.raises(IntegrityError):
        store.create_many([again])
    store.delete(made[1][0], "import:other.example")
    store.set_import_digest(items[2]["origin"], "d2-new")
    known = store.imported_from(source)
    assert known[items[1]["origin"]][2] is True and known[items[2]["origin"]][1] == "d2-new"
    assert store.search(Viewer(), q="copied", limit=None)[0] == 2

    assert store.import_run(source)["runs"] == 0
    store.import_run(source, started=store.clock())
    end = store.import_run(source, finished=store.clock(), result={"created": 3})
    assert end["runs"] == 1 and end["result"] == {"created": 3} and end["finished"]


def joined_tallies(store: Store) -> dict[tuple[str, str], int]:
    """The counts the metrics report, computed the slow way: the join over the whole store."""
    from echoes_lab.commons.store import tally_query

    with store.engine.connect() as conn:
        return {(m, "software" if s else "person"): n
                for m, s, n in conn.execute(tally_query()) if n}


def test_tallies_follow_every_write(store):
    """The kept counts (issue 29, scale) equal the join after every kind of write: create
    with one, two or no motivation, a bulk batch of software and people, an update that
    changes motivations, delete, restore, hide and show, an account withdrawn, the restore of
    a withdrawn annotation (its keys were erased: ``none``), a batch the database refuses."""
    from sqlalchemy.exc import IntegrityError

    from echoes_lab.hub.services.commons.metrics import CommonsCollector

    def check(expected: dict[tuple[str, str], int]) -> None:
        assert store.tallies() == joined_tallies(store) == expected

    check({})
    a1 = add(store, "alice", "a comment")
    a2 = add(store, "alice", "two motivations", motivation=["describing", "identifying"])
    a3 = add(store, "bob", "no motivation", motivation=None)
    check({("commenting", "person"): 1, ("describing", "person"): 1,
           ("identifying", "person"): 1, ("none", "person"): 1})
    ocr = store.add_actor("olga", "tesseract", "5.3.0")
    made = store.create_many(
        [bulk_item(store, "olga", f"line {i}", f"t#{i}", actor=ocr,
                   visibility="private" if i == 4 else "public") for i in range(5)]
        + [bulk_item(store, "piet", f"by hand {i}", None) for i in range(2)])
    # a retried batch (found by its keys) counts nothing twice
    store.create_many([bulk_item(store, "olga", "line 0", "t#0", actor=ocr)])
    after_bulk = {("commenting", "person"): 1, ("describing", "person"): 1,
                  ("identifying", "person"): 1, ("none", "person"): 1,
                  ("transcribing", "software"): 5, ("transcribing", "person"): 2}
    check(after_bulk)
    clash = [bulk_item(store, "piet", f"clash {i}", None) for i in range(3)]
    clash[2]["id"] = clash[0]["id"]
    with pytest.raises(IntegrityError):  # rolled back: its counts with it
        store.create_many(clash)
    check(after_bulk)

    store.update(a1.id, "alice", dict(a1.data, motivation="describing"))
    store.update(a3.id, "bob", dict(a3.data, motivation="commenting"))
    check({("commenting", "person"): 1, ("describing", "person"): 2,
           ("identifying", "person"): 1, ("transcribing", "software"): 5,
           ("transcribing", "person"): 2})
    store.delete(a2.id, "alice")
    store.delete(made[0][0], "olga")
    check({("commenting", "person"): 1, ("describing", "person"): 1,
           ("transcribing", "software"): 4, ("transcribing", "person"): 2})
    store.restore(a2.id, "admin")
    store.restore(a1.id, "admin")  # not deleted: a restore changes no count
    store.hide(a1.id, "mod", "spam")  # hidden ones still count, as they did
    check({("commenting", "person"): 1, ("describing", "person"): 2,
           ("identifying", "person"): 1, ("transcribing", "software"): 4,
           ("transcribing", "person"): 2})
    store.hide(a1.id, "mod", None)

    w_public = add(store, "wanda", "public", motivation="bookmarking")
    add(store, "wanda", "private", motivation="bookmarking", visibility="private")
    w_gone = add(store, "wanda", "deleted before", motivation="bookmarking")
    store.delete(w_gone.id, "wanda")
    assert store.tallies()[("bookmarking", "person")] == 2
    assert store.withdraw_account("wanda", "admin") == {"erased": 1, "withdrawn": 2}
    assert ("bookmarking", "person") not in store.tallies()
    store.restore(w_public.id, "admin")  # a tombstone brought back has no keys any more
    final = {("commenting", "person"): 1, ("describing", "person"): 2,
             ("identifying", "person"): 1, ("none", "person"): 1,
             ("transcribing", "software"): 4, ("transcribing", "person"): 2}
    check(final)

    # the Prometheus series reads the same counts (names and labels unchanged)
    class Service:
        pass

    service = Service()
    service.store = store
    family, = CommonsCollector(service).collect()
    assert family.name == "echoes_commons_annotations"
    assert {(s.labels["motivation"], s.labels["actor"]): s.value
            for s in family.samples} == final


def test_a_database_from_before_the_tallies_gets_them_once(store):
    from echoes_lab.commons.store import tallies

    ocr = store.add_actor("olga", "tesseract", "5.3.0")
    store.create_many([bulk_item(store, "olga", f"line {i}", None, actor=ocr)
                       for i in range(3)])
    add(store, "alice", "described and identified", motivation=["describing", "identifying"])
    gone = add(store, "alice", "deleted", motivation="describing")
    store.delete(gone.id, "alice")
    hidden = add(store, "alice", "hidden, still counted", motivation=None)
    store.hide(hidden.id, "mod", "off topic")
    tallies.drop(store.engine)  # as a commons.sqlite written before the tallies existed
    expected = {("transcribing", "software"): 3, ("describing", "person"): 1,
                ("identifying", "person"): 1, ("none", "person"): 1}
    reopened = Store(store.url, clock=store.clock)
    try:
        assert reopened.tallies() == joined_tallies(reopened) == expected
        again = Store(store.url, clock=store.clock)  # opened again: not counted twice
        assert again.tallies() == expected
        again.close()
        add(reopened, "alice", "after", motivation="describing")
        assert reopened.tallies()[("describing", "person")] == 2
    finally:
        reopened.close()
