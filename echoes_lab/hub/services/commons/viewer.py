"""The commons viewer: a IIIF manifest's canvases with the commons' annotations, for people who
do not code (issue 29 item 7).

``viewer?manifest=URL[&canvas=IRI]`` is a service page (the hub's look, ``commons-viewer.html``)
that runs OpenSeadragon with Annotorious (``@recogito/annotorious-openseadragon``, npm, copied
into ``<venv>/viewer/node_modules`` by ``make install`` from ``hub_config/viewer/``) and our own
``viewer.js``. Everything the page loads comes from this service: ``viewer/lib/…`` serves a fixed
list of files of those packages, ``viewer/static/…`` our script and style. No CDN.

The browser reads the manifest itself (the IIIF Presentation API asks servers to send
``Access-Control-Allow-Origin: *``); the service fetches nothing for it, so the viewer cannot be
used to make the service reach an address the user could not (hub API, other services). A
manifest whose server sends no CORS header is reported on the page with that reason.

The page talks to the commons' own protocol endpoints (``annotations/``, ``search``) with the
user's OAuth cookie and the ``_xsrf`` token of the page, as the commons' forms do: it works for
a user whose lab is not running. Annotations are read with ``search?canvas=IRI`` (all pages),
replies and assessments with ``search?target=<annotation IRI>``.

Images: a IIIF Image API service of level 1 or 2 is opened as tiles (``info.json``); level 0
or no service, the painting body's image as one plain image (so a static file server is
enough). Annotorious draws in the image's pixels; the page converts to and from the canvas's
coordinates (``width``/``height`` of the canvas), which is what the commons keeps.

Moderation: hub admins and holders of ``custom:commons-moderate`` (``!group=G`` for a group's
moderators, roles from ``[commons] moderators``) get a reason field and a *Hide* button on each
annotation, and *Show again* on the ones they hid (``annotations/<id>/hidden``, PUT and DELETE,
which decide whether the annotation is theirs to moderate).

Offline: a manifest whose images are on another server shows its canvases and the commons'
annotations of each canvas in the list (filters, replies, agree/disagree work), but the image
area says that the image could not be loaded, with its URL, and no region can be drawn.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlencode

from tornado import web

from echoes_lab.hub.services.base import ServiceHandler

STATIC = Path(__file__).with_name("viewer_static")

#: the files of the npm packages the page may load (relative to ``node_modules``)
LIB_FILES = {
    "openseadragon.min.js": "openseadragon/build/openseadragon/openseadragon.min.js",
    "annotorious.min.js":
        "@recogito/annotorious-openseadragon/dist/openseadragon-annotorious.min.js",
    "annotorious.min.css": "@recogito/annotorious-openseadragon/dist/annotorious.min.css",
}
#: OpenSeadragon's navigation button images
LIB_IMAGES = "openseadragon/build/openseadragon/images"

LICENCES = {
    "https://creativecommons.org/licenses/by/4.0/": "CC BY 4.0",
    "http://creativecommons.org/publicdomain/zero/1.0/": "CC0 1.0",
}


def node_modules() -> Path:
    """Where ``make install`` put the viewer's npm packages (beside the proxy's)."""
    return Path(sys.prefix) / "viewer" / "node_modules"


class ViewerPageHandler(ServiceHandler):
    """The viewer page; the manifest and canvas come from the query (or the form on the page)."""

    @web.authenticated
    async def get(self):
        manifest = self.get_query_argument("manifest", "").strip()
        if manifest and not manifest.startswith(("https://", "http://")):
            raise web.HTTPError(400, f"manifest {manifest!r}: give the http(s) URL of a IIIF "
                                     "Presentation manifest")
        missing = [name for name, rel in LIB_FILES.items() if not (node_modules() / rel).is_file()]
        if missing:
            raise web.HTTPError(503, "the viewer's libraries are not installed "
                                     f"({', '.join(missing)} under {node_modules()}): run "
                                     "'make install'")
        from echoes_lab.hub.services.commons.app import moderated_groups

        # hub admins and holders of the moderator scope get the hide control (the service
        # decides per annotation whether it is theirs to hide)
        user = self.current_user or {}
        moderator = bool(user.get("admin")) or moderated_groups(user.get("scopes")) != set()
        self.render_page("commons-viewer.html", manifest=manifest,
                         canvas=self.get_query_argument("canvas", ""), moderator=moderator,
                         licences=LICENCES, default_licence=self.settings["licence"])


class LibHandler(web.StaticFileHandler):
    """The npm packages' files of :data:`LIB_FILES` and OpenSeadragon's button images; nothing
    else under ``node_modules`` is reachable (the path is looked up, never joined)."""

    def initialize(self, **_kwargs):
        super().initialize(path=str(node_modules()))

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        if path in LIB_FILES:
            return str(Path(root) / LIB_FILES[path])
        name = path.removeprefix("images/")
        if path.startswith("images/") and "/" not in name and name.endswith(".png"):
            return str(Path(root) / LIB_IMAGES / name)
        raise web.HTTPError(404, f"no viewer library file {path}")

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        if not Path(absolute_path).is_file():
            raise web.HTTPError(404, f"{absolute_path} is not installed: run 'make install'")
        return absolute_path


#: the commons page's search fields, as the store's search names them
LISTING_FILTERS = {"q": "q", "canvas": "source", "creator": "creator", "motivation": "motivation"}


def listing_filters(handler: web.RequestHandler) -> dict[str, str]:
    """The commons page's search (``?q=&canvas=&creator=&motivation=``) as keyword arguments
    of :meth:`echoes_lab.commons.store.Store.search`; empty fields are left out."""
    got = {}
    for field, keyword in LISTING_FILTERS.items():
        value = handler.get_query_argument(field, "").strip()
        if value:
            got[keyword] = value
    return got


def viewer_link(base_url: str, annotation: dict) -> str | None:
    """The viewer's URL for an annotation on a IIIF canvas whose manifest it names (a target
    ``source`` with ``partOf`` a Manifest, as the viewer writes and IIIF Presentation 3 §3.4
    recommends); None for any other target."""
    for target in annotation.get("target") if isinstance(annotation.get("target"), list) \
            else [annotation.get("target")]:
        source = target.get("source") if isinstance(target, dict) else None
        if not isinstance(source, dict) or not isinstance(source.get("id"), str):
            continue
        for part in source.get("partOf") or ():
            manifest = part.get("id") if isinstance(part, dict) else part
            if isinstance(manifest, str) and manifest.startswith(("https://", "http://")):
                query = urlencode({"manifest": manifest, "canvas": source["id"]})
                return f"{base_url}viewer?{query}"
    return None


def handlers() -> list[tuple]:
    """The viewer's routes, under the commons' prefix."""
    return [
        (r"viewer", ViewerPageHandler),
        (r"viewer/lib/(.+)", LibHandler),
        (r"viewer/static/([a-z-]+\.(?:js|css))", web.StaticFileHandler, {"path": str(STATIC)}),
    ]
