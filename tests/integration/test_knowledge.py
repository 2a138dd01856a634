"""The knowledge base behind a real hub and proxy (issue 28): who sees which graph whatever the
query says, the SPARQL 1.1 Protocol (content negotiation, POST forms, errors), the Graph Store
Protocol on contributors' own graphs, a query past the time limit stopped while another user's
goes on, and the commons' public annotations reaching the graph within 5 s of their creation
(a place annotated, issue 30, as a Linked Art Place)."""

from __future__ import annotations

import csv
import io
import threading
import time
import xml.etree.ElementTree as ET

import pytest
import requests

from harness import REPO, wait_for

pytestmark = pytest.mark.integration

EX = "http://example.org/"
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"


@pytest.fixture(scope="module")
def kb(module_hubs):
    hub = module_hubs(gateway={"enabled": False}, workshops={"enabled": False},
                      reports={"enabled": False}, projects={"enabled": False},
                      knowledge={"query_timeout": 5.0, "max_concurrent": 4})
    for name in ("alice", "bob", "carol"):
        hub.create_user(name)
    assert hub.api("POST", "/groups/lab").status_code in (201, 409)
    assert hub.api("POST", "/groups/lab/users", json={"users": ["alice", "bob"]}).ok
    tokens = {}
    for name in ("alice", "bob", "carol"):
        r = hub.api("POST", f"/users/{name}/tokens", json={
            "scopes": ["access:services!service=knowledge", "access:services!service=commons"],
            "note": "knowledge"})
        assert r.status_code == 201, r.text
        tokens[name] = {"Authorization": f"token {r.json()['token']}"}
    base = f"{hub.url}/services/knowledge/"
    wait_for(lambda: requests.get(f"{base}sparql", timeout=5).status_code == 401, 30,
             "the knowledge service")
    graphs = {}
    for owner, name, visibility, label in (("alice", "notes", "private", "alice's secret"),
                                           ("bob", "campaign", "group:lab", "lab finding"),
                                           ("alice", "catalogue", "public", "public record")):
        iri = f"{base}graphs/{owner}/{name}"
        body = f'<{EX}{name}> <{LABEL}> "{label}" .\n'
        r = requests.put(f"{base}data", params={"graph": iri, "visibility": visibility},
                         data=body.encode(), headers={**tokens[owner],
                                                      "Content-Type": "text/turtle"})
        assert r.status_code == 201, r.text
        graphs[name] = iri
    # before any query: what the service runs besides itself (issue 36: nothing yet)
    service = hub.service_processes()["knowledge"][0]
    at_start = [" ".join(c.cmdline()) for c in service.children(recursive=True)]
    return {"hub": hub, "base": base, "tokens": tokens, "graphs": graphs,
            "service": service, "children_at_start": at_start}


def select(kb, user: str, query: str, **kw) -> list[dict]:
    r = requests.post(f"{kb['base']}sparql", data=query.encode(), timeout=30,
                      headers={**kb["tokens"][user], "Content-Type": "application/sparql-query",
                               "Accept": "application/sparql-results+json"}, **kw)
    assert r.status_code == 200, r.text
    return [{k: v["value"] for k, v in b.items()} for b in r.json()["results"]["bindings"]]


def labels(kb, user: str, query: str) -> set[str]:
    return {row["l"] for row in select(kb, user, query) if "l" in row}


SEES = {"alice": {"alice's secret", "lab finding", "public record"},
        "bob": {"lab finding", "public record"},
        "carol": {"public record"}}


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_every_query_form_sees_only_what_the_user_may(kb, user):
    g = kb["graphs"]
    seen = SEES[user]
    assert labels(kb, user, "SELECT ?l WHERE { ?s rdfs:label ?l }") == seen
    rows = select(kb, user, "SELECT ?g ?l WHERE { GRAPH ?g { ?s rdfs:label ?l } }")
    assert {r["l"] for r in rows} == seen
    assert {r["g"] for r in rows} <= set(g.values())
    # naming another's graph does not open it: the protocol's dataset replaces FROM (NAMED)
    for graph, label in ((g["notes"], "alice's secret"), (g["campaign"], "lab finding")):
        expect = {label} & seen
        assert labels(kb, user, f"SELECT ?l FROM <{graph}> WHERE {{ ?s rdfs:label ?l }}") \
            == expect
        assert labels(kb, user, f"SELECT ?l FROM NAMED <{graph}> WHERE {{ GRAPH ?g "
                                f"{{ ?s rdfs:label ?l }} }}") == expect
        assert labels(kb, user, f"SELECT ?l WHERE {{ GRAPH <{graph}> {{ ?s rdfs:label ?l }} "
                                "}") == expect
    # ASK, CONSTRUCT, DESCRIBE
    h = {**kb["tokens"][user], "Content-Type": "application/sparql-query"}
    r = requests.post(f"{kb['base']}sparql", data=f"ASK {{ <{EX}notes> ?p ?o }}", headers={
        **h, "Accept": "application/sparql-results+json"})
    assert r.json()["boolean"] is (user == "alice")
    r = requests.post(f"{kb['base']}sparql", headers={**h, "Accept": "application/n-triples"},
                      data="CONSTRUCT { ?s rdfs:label ?l } WHERE { ?s rdfs:label ?l }")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/n-triples")
    assert {line.split('"')[1] for line in r.text.splitlines() if '"' in line} == seen
    r = requests.post(f"{kb['base']}sparql", data=f"DESCRIBE <{EX}notes>",
                      headers={**h, "Accept": "text/turtle"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/turtle")
    assert ("alice's secret" in r.text) is (user == "alice")
    # the graphs listed are the same ones
    listed = requests.get(f"{kb['base']}graphs", headers=kb["tokens"][user]).json()
    assert {x["graph"] for x in listed} >= {g[n] for n, v in (("notes", "alice's secret"),
                                                              ("campaign", "lab finding"),
                                                              ("catalogue", "public record"))
                                            if v in seen}
    assert g["notes"] not in {x["graph"] for x in listed} or user == "alice"


def test_query_processes_start_with_the_first_query(kb):
    """The queries' fork server (and multiprocessing's resource tracker) are started by the
    first query, not with the service (issue 36: ~21 MiB PSS a service nobody queries saves)."""
    assert not any("multiprocessing" in c for c in kb["children_at_start"]), \
        kb["children_at_start"]
    assert labels(kb, "carol", "SELECT ?l WHERE { ?s rdfs:label ?l }") == SEES["carol"]
    children = [" ".join(c.cmdline()) for c in kb["service"].children(recursive=True)]
    assert any("multiprocessing.forkserver" in c for c in children), children


def test_graph_store_writes_only_ones_own_graphs(kb):
    base, g, t = kb["base"], kb["graphs"], kb["tokens"]
    ttl = {"Content-Type": "text/turtle"}
    assert requests.get(f"{base}data", params={"graph": g["notes"]},
                        headers=t["carol"]).status_code == 404
    assert requests.delete(f"{base}data", params={"graph": g["notes"]},
                           headers=t["carol"]).status_code == 404
    r = requests.put(f"{base}data", params={"graph": g["notes"]}, data=b"<a:x> <a:y> <a:z> .",
                     headers={**t["carol"], **ttl})
    assert r.status_code == 403
    # bob reads the group graph, cannot overwrite it (bob owns it; alice only reads it)
    r = requests.get(f"{base}data", params={"graph": g["campaign"]},
                     headers={**t["alice"], "Accept": "text/turtle"})
    assert r.status_code == 200 and "lab finding" in r.text
    assert requests.post(f"{base}data", params={"graph": g["campaign"]},
                         data=b"<a:x> <a:y> <a:z> .",
                         headers={**t["alice"], **ttl}).status_code == 403
    # a group one is not in
    r = requests.put(f"{base}data", params={"graph": f"{base}graphs/carol/x",
                                            "visibility": "group:lab"},
                     data=b"<a:x> <a:y> <a:z> .", headers={**t["carol"], **ttl})
    assert r.status_code == 403
    # bad RDF: 400 naming the line
    r = requests.put(f"{base}data", params={"graph": f"{base}graphs/carol/x"},
                     data=b"<a:x> <a:y> <a:z> .\n<a:x> <a:y> .", headers={**t["carol"], **ttl})
    assert r.status_code == 400 and "line 2" in r.text
    # own graph: create, add, replace, delete
    mine = f"{base}graphs/carol/x"
    r = requests.put(f"{base}data", params={"graph": mine}, data=b"<a:x> <a:y> <a:z> .",
                     headers={**t["carol"], **ttl})
    assert r.status_code == 201
    assert requests.post(f"{base}data", params={"graph": mine}, data=b"<a:x> <a:y> <a:w> .",
                         headers={**t["carol"], **ttl}).status_code == 204
    rows = select(kb, "carol", f"SELECT ?o WHERE {{ GRAPH <{mine}> {{ ?s ?p ?o }} }}")
    assert {r["o"] for r in rows} == {"a:z", "a:w"}
    assert not select(kb, "bob", f"SELECT ?o WHERE {{ GRAPH <{mine}> {{ ?s ?p ?o }} }}")
    assert requests.delete(f"{base}data", params={"graph": mine},
                           headers=t["carol"]).status_code == 204
    assert not select(kb, "carol", f"SELECT ?o WHERE {{ GRAPH <{mine}> {{ ?s ?p ?o }} }}")


def test_protocol_negotiation_forms_and_errors(kb):
    base, t = kb["base"], kb["tokens"]["carol"]
    q = "SELECT ?l WHERE { ?s rdfs:label ?l }"
    # unauthenticated
    r = requests.get(f"{base}sparql", params={"query": q})
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    # GET, each results format with its media type
    for accept, ctype in (("application/sparql-results+json", "application/sparql-results+json"),
                          ("application/sparql-results+xml", "application/sparql-results+xml"),
                          ("text/csv", "text/csv"),
                          ("text/tab-separated-values", "text/tab-separated-values")):
        r = requests.get(f"{base}sparql", params={"query": q}, headers={**t, "Accept": accept})
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].split(";")[0] == ctype
    xml = requests.get(f"{base}sparql", params={"query": q},
                       headers={**t, "Accept": "application/sparql-results+xml"})
    ns = {"s": "http://www.w3.org/2005/sparql-results#"}
    assert [e.text for e in ET.fromstring(xml.content).findall(".//s:literal", ns)] == [
        "public record"]
    rows = list(csv.reader(io.StringIO(requests.get(
        f"{base}sparql", params={"query": q}, headers={**t, "Accept": "text/csv"}).text)))
    assert rows == [["l"], ["public record"]]
    # POST form-encoded
    r = requests.post(f"{base}sparql", data={"query": q}, headers=t)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/sparql-results+json")
    # malformed: 400 with the parser's message (line and column)
    r = requests.post(f"{base}sparql", data="SELECT ?x WHERE {\n ?x ?y }",
                      headers={**t, "Content-Type": "application/sparql-query"})
    assert r.status_code == 400 and "line 2, column" in r.text
    # no update, no SERVICE, no unacceptable format
    for body, ctype in (("INSERT DATA { <a:a> <a:b> <a:c> }", "application/sparql-query"),
                        ("INSERT DATA { <a:a> <a:b> <a:c> }", "application/sparql-update")):
        r = requests.post(f"{base}sparql", data=body, headers={**t, "Content-Type": ctype})
        assert r.status_code == 400 and "Graph Store" in r.text
    r = requests.post(f"{base}sparql", data={"update": "CLEAR ALL"}, headers=t)
    assert r.status_code == 400
    r = requests.post(f"{base}sparql", headers={**t, "Content-Type": "application/sparql-query"},
                      data="SELECT * WHERE { SERVICE <http://127.0.0.1:1/> { ?s ?p ?o } }")
    assert r.status_code == 400 and "SERVICE" in r.text
    r = requests.get(f"{base}sparql", params={"query": q}, headers={**t, "Accept": "image/png"})
    assert r.status_code == 406
    # from a notebook: the same typed tables as a local store
    from echoes_lab import knowledge
    from echoes_lab.errors import EchoesError

    kb_remote = knowledge.remote(base, t["Authorization"].split()[1])
    table = kb_remote.query(q)
    assert list(table["l"]) == ["public record"] and str(table["l"].dtype) == "string"
    assert kb_remote.query(f"ASK {{ <{EX}notes> ?p ?o }}") is False
    with pytest.raises(EchoesError, match="400.*line 1"):
        kb_remote.query("SELECT ?x WHERE { ?x ?y }")


def test_query_past_time_limit_stopped_while_others_go_on(kb):
    base, t = kb["base"], kb["tokens"]
    # 3,000 triples: a triple cartesian product is 2.7e10 rows, hours of work
    body = "".join(f'<{EX}n{i}> <{EX}p> "{i}" .\n' for i in range(3000)).encode()
    big = f"{base}graphs/alice/big"
    assert requests.put(f"{base}data", params={"graph": big}, data=body, headers={
        **t["alice"], "Content-Type": "application/n-triples"}).status_code == 201
    slow: dict = {}

    def run_slow():
        started = time.monotonic()
        slow["r"] = requests.post(
            f"{base}sparql", timeout=60,
            data=f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{big}> {{ ?a ?b ?c . ?d ?e ?f . "
                 f"?g ?h ?i }} }}",
            headers={**t["alice"], "Content-Type": "application/sparql-query"})
        slow["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run_slow)
    thread.start()
    time.sleep(0.5)  # let alice's query start before bob's (a head start, not a wait on it)
    answered = []
    while thread.is_alive():  # bob's queries keep being answered while alice's runs
        started = time.monotonic()
        assert labels(kb, "bob", "SELECT ?l WHERE { ?s rdfs:label ?l }") == SEES["bob"]
        answered.append(time.monotonic() - started)
    thread.join()
    assert slow["r"].status_code == 503, slow["r"].text
    assert "longer than 5 s" in slow["r"].text
    assert slow["seconds"] < 15
    # each answered while alice's ran, none waiting for it to end
    assert answered and max(answered) < 5


def test_public_annotation_reaches_the_graph_within_5_s(kb):
    hub, t = kb["hub"], kb["tokens"]
    container = f"{hub.url}/services/commons/annotations/"
    target = f"{EX}object/enigma"

    def note(text, visibility):
        return {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
                "motivation": "assessing", "visibility": visibility, "target": target,
                "body": {"type": "TextualBody", "value": text}}

    ld = {"Content-Type": "application/ld+json"}
    private = requests.post(container, json=note("not for the graph", "private"),
                            headers={**t["alice"], **ld})
    assert private.status_code == 201
    r = requests.post(container, json=note("Rotor wiring replaced", "public"),
                      headers={**t["alice"], **ld})
    assert r.status_code == 201, r.text
    created = time.monotonic()
    ann = r.json()["id"]
    query = (f"SELECT ?text ?who WHERE {{ ?a oa:hasTarget <{target}> ; oa:hasBody/rdf:value "
             "?text ; dcterms:creator/foaf:nick ?who }")
    rows = wait_for(lambda: select(kb, "carol", query), 5, "the public annotation in the graph")
    assert time.monotonic() - created < 5
    assert rows == [{"text": "Rotor wiring replaced", "who": "alice"}]
    # made private: it leaves the public graph; the private one never came
    r = requests.put(ann, json={**r.json(), "visibility": "private"},
                     headers={**t["alice"], **ld})
    assert r.status_code == 200, r.text
    wait_for(lambda: not select(kb, "carol", query), 5, "the annotation to leave the graph")


def test_place_annotation_reaches_the_graph_as_a_linked_art_place(kb):
    """Issue 30: a place annotated in the commons (its target a GeoJSON Feature that
    echoes_lab.sites makes from a real register entry, Historic England's list entry 1067865)
    is, in the public graph, a crm:E53_Place with its name and its point as WKT (Linked Art
    ``defined_by``), found by the site's IRI; it leaves with the last annotation on it."""
    import echoes_lab

    hub, t = kb["hub"], kb["tokens"]
    sites = echoes_lab.read_sites(
        REPO / "tests" / "data" / "real" / "sites" / "trafford-listed-buildings.geojson",
        id="ListEntry", name="Name", designation="Grade")
    place = sites.sites.place_target("1067865")
    r = requests.post(f"{hub.url}/services/commons/annotations/", json={
        "@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
        "motivation": "assessing", "visibility": "public", "target": place,
        "body": {"type": "TextualBody", "value": "Churchyard wall leaning"}},
        headers={**t["bob"], "Content-Type": "application/ld+json"})
    assert r.status_code == 201, r.text
    query = (f"SELECT ?a ?label ?wkt WHERE {{ ?a oa:hasTarget <{place['id']}> . "
             f"<{place['id']}> a crm:E53_Place ; rdfs:label ?label ; "
             "crm:P168_place_is_defined_by ?wkt }")
    rows = wait_for(lambda: select(kb, "carol", query), 5, "the place in the graph")
    assert rows == [{"a": r.json()["id"], "label": "Old Church Of Saint Werburg",
                     "wkt": "POINT (-2.457281027999954 53.402144969000055)"}]
    # made private, the only annotation on the place: the place leaves the public graph too
    r = requests.put(r.json()["id"], json={**r.json(), "visibility": "private"},
                     headers={**t["bob"], "Content-Type": "application/ld+json"})
    assert r.status_code == 200, r.text
    place_query = f"SELECT ?p ?o WHERE {{ <{place['id']}> ?p ?o }}"
    wait_for(lambda: not select(kb, "carol", place_query), 5, "the place to leave the graph")

def test_query_page_signed_in_through_the_hub(kb):
    """The page (hub OAuth, the hub's look) and the request its script makes: the query POSTed
    with the session cookie and the page's XSRF token; without the token, refused."""
    import re

    from harness import login

    hub = kb["hub"]
    browser = login(hub, "carol", hub.secrets["user_password"], next_url="/hub/home")
    page = browser.get(kb["base"], timeout=30)
    assert page.status_code == 200 and "The knowledge base" in page.text
    assert "/hub/static/css/style.min.css" in page.text  # the hub's stylesheet
    assert not re.search(r"<script[^>]+src=\"https?://", page.text)  # nothing from elsewhere
    xsrf = re.search(r'<meta name="xsrf" content="([^"]+)"', page.text)[1]
    q = "SELECT ?l WHERE { ?s rdfs:label ?l }"
    r = browser.post(f"{kb['base']}sparql", data=q, timeout=30,
                     headers={"Content-Type": "application/sparql-query", "X-XSRFToken": xsrf,
                              "Accept": "application/sparql-results+json"})
    assert r.status_code == 200, r.text
    assert [b["l"]["value"] for b in r.json()["results"]["bindings"]] == ["public record"]
    r = browser.post(f"{kb['base']}sparql", data=q, timeout=30,
                     headers={"Content-Type": "application/sparql-query"})
    assert r.status_code in (401, 403)  # the cookie alone does not count: no identity
