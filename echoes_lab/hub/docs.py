"""The documentation on the hub: ``/hub/docs/`` serves the HTML that ``make docs`` builds.

The pages are static files (Sphinx's HTML of ``docs/``, in ``docs/_build/html`` of the
checkout the hub runs from), so they need no internet and no service process; everyone who
reaches the hub may read them, signed in or not, as the project's public documentation.
The home page, every service page and the lab's Help menu link here.
"""

from __future__ import annotations

from pathlib import Path

from tornado import web

from echoes_lab.hub.services import Feature

#: where ``make docs`` (and ``make hub``) put the built pages
HTML = Path(__file__).resolve().parents[2] / "docs" / "_build" / "html"


class DocsHandler(web.StaticFileHandler):
    """The built pages; a clear 404 saying how to build them when they are not there."""

    async def get(self, path: str, include_body: bool = True) -> None:
        if not (Path(self.root) / "index.html").is_file():
            raise web.HTTPError(404, reason="Documentation not built")
        await super().get(path, include_body)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        if status_code == 404 and not (Path(self.root) / "index.html").is_file():
            self.finish(f"The documentation is not built on this machine ({self.root}): "
                        "run 'make docs' in the ECHOES Lab checkout, then reload.\n")
        else:
            self.finish(f"{status_code} {self._reason}\n")


def configure_hub(c, settings) -> None:
    """Serve ``docs/_build/html`` at ``/hub/docs/`` (JupyterHub adds its prefix)."""
    # JupyterHub calls extra_handlers deprecated (3.1: "use services") and still honours them
    # (5.x); a service would be one more process in every hub only to send static files
    c.JupyterHub.extra_handlers = [
        *c.JupyterHub.get("extra_handlers", []),
        # relative: /hub/docs -> /hub/docs/, whatever the hub's base URL
        (r"/docs", web.RedirectHandler, {"url": "docs/"}),
        (r"/docs/(.*)", DocsHandler, {"path": str(HTML), "default_filename": "index.html"}),
    ]


FEATURE = Feature("docs", configure_hub=configure_hub)
