"""The hub's knowledge base from a notebook: the SPARQL 1.1 Protocol at ``ECHOES_KNOWLEDGE_URL``
with the lab's own token, answers as the same typed DataFrames as a local store's."""

from __future__ import annotations

import os

import pyoxigraph as ox

from echoes_lab.knowledge.store import KnowledgeError, results_frame


class Remote:
    """The knowledge service of a hub (``…/services/knowledge/``)."""

    def __init__(self, url: str | None = None, token: str | None = None):
        url = url or os.environ.get("ECHOES_KNOWLEDGE_URL")
        token = token or os.environ.get("JUPYTERHUB_API_TOKEN")
        if not url or not token:
            msg = ("no hub knowledge base here: ECHOES_KNOWLEDGE_URL and JUPYTERHUB_API_TOKEN "
                   "are set in a lab the hub started; elsewhere give url= and a hub token with "
                   "the scope access:services!service=knowledge, or use knowledge.open()")
            raise KnowledgeError(msg)
        self.url, self.token = url.rstrip("/") + "/", token

    def __repr__(self) -> str:
        return f"<knowledge.Remote {self.url}>"

    def query(self, sparql: str, timeout: float = 120):
        """SELECT → a typed DataFrame, ASK → bool, CONSTRUCT/DESCRIBE → a DataFrame of
        triples; the service's refusal (a malformed query, a time limit) as an EchoesError."""
        import requests

        try:
            r = requests.post(f"{self.url}sparql", data=sparql.encode(), timeout=timeout,
                              headers={"Authorization": f"token {self.token}",
                                       "Content-Type": "application/sparql-query",
                                       "Accept": "application/sparql-results+json, "
                                                 "application/n-triples;q=0.9"})
        except requests.RequestException as exc:
            msg = f"cannot reach the knowledge base at {self.url}: {exc}"
            raise KnowledgeError(msg) from None
        if r.status_code != 200:
            msg = f"the knowledge base answered {r.status_code}: {r.text.strip()}"
            raise KnowledgeError(msg)
        if r.headers.get("Content-Type", "").startswith("application/n-triples"):
            return results_frame(ox.parse(r.content, format=ox.RdfFormat.N_TRIPLES))
        return results_frame(ox.parse_query_results(r.content,
                                                    format=ox.QueryResultsFormat.JSON))


def remote(url: str | None = None, token: str | None = None) -> Remote:
    """The hub's knowledge base (in a lab: from its environment)."""
    return Remote(url, token)
