"""Links into a lab cannot run code: nbgitpuller links and apps ask first; proxied content is
sandboxed. Loaded with :mod:`.serverext` in every user's server.

* **nbgitpuller** (``/user/NAME/git-pull?repo=…``) stays enabled in every lab, workshops or
  not: it is how course and project material reaches people who do not use git (one link
  clones or updates a folder and keeps their own changes), and what made it dangerous is
  removed here rather than the feature. Its own pages are not answered: ``/git-pull`` shows our
  confirmation page (``/echoes/git-pull``) naming the source repository, branch and target
  folder, and only that page's form (``POST``, XSRF-checked) clones; ``/git-pull/api``, a
  ``GET`` that clones, is refused to everyone. A link whose ``urlpath`` opens an app (Voilà,
  anything but the lab, the file tree or a notebook in the editor) says that the clone will
  then run as the user, and offers to open the folder in the lab instead. ``targetpath`` must
  stay inside the user's home (no absolute path, ``..``, hidden folder, or link leading out),
  and only the URL schemes of ``[spawner] git_pull_schemes`` are cloned (``https`` by
  default: ``git://`` is unauthenticated and ``file://`` reads the server's own disk, e.g. a
  co-member's clone in a project folder; ``ext::`` and other transports never).
* **Apps of someone else's notebook** (``/voila/render/PATH``): Voilà runs the notebook as the
  lab's user. When the file belongs to another account, or lies in a project folder (where
  co-members may change any notebook), the user first sees who owns it and when it last
  changed (``/echoes/app``); the confirmation is bound to the file's content (an HMAC of the
  user, the path and its SHA-256 under the server's cookie secret), so a notebook changed
  after it was confirmed asks again; and Voilà runs the very bytes that were hashed (the file
  is opened once, hashed and read through that descriptor, :class:`Pin`), not a file a
  co-member swapped in between the check and the run (issue 26, second round).
* **One origin per trust level.** Pages a user serves through jupyter-server-proxy
  (``/proxy/…``) or the Dask panel's dashboard proxy (``/dask/dashboard/…``) get
  ``Content-Security-Policy: sandbox`` without ``allow-same-origin``
  (:class:`SandboxUserContent`): their scripts run in an opaque origin, so they cannot read
  the hub's pages or use its cookies to act on another user's server. (jupyter-server already
  sandboxes ``/files/`` and ``/nbconvert/`` output the same way.) Pages that need their own
  origin (a Bokeh or Dask dashboard with live updates over a websocket) then lose it; **in
  production, set** ``[hub] subdomain_host = "https://echoes.example.org"`` (a wildcard DNS
  entry and certificate): each user's server gets its own origin
  (``alice.echoes.example.org``), and one user's pages are cross-origin to everyone else's
  server and to the hub (JupyterHub's documentation, "Subdomains",
  https://jupyterhub.readthedocs.io/en/stable/reference/subdomains.html); our pages in a lab
  then link the hub at its public address (:func:`.serverext.hub_prefix`).
* No ``GET`` on our own routes changes anything: cloning and sharing are ``POST`` forms.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import pwd
import re
import time
import weakref
from urllib.parse import quote, unquote, urlencode, urlparse

from tornado import web

from echoes_lab.hub.services.projects.serverext import (
    _OPEN,
    PINNED,
    ServerPathTransform,
    _environment,
    hub_prefix,
    lab_path,
    owner,
    page_words,
    refused,
    shared_roots,
)

#: the environment variable through which the hub passes ``[spawner] git_pull_schemes``
SCHEMES_ENV = "ECHOES_GIT_PULL_SCHEMES"
#: ``urlpath`` prefixes that open something without running it (else: an app, ask first)
_VIEWS = ("lab", "lab/tree/", "tree", "tree/", "notebooks/", "edit/")
_SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
#: routes that serve what a program of the user's answers: jupyter-server-proxy's
#: ``/proxy/PORT/…`` (and ``/proxy/absolute/…``), and the Dask panel's dashboard proxy, whose
#: target is the cluster's ``dashboard_link`` — any local address the user's own dask
#: configuration names (``distributed.dashboard.link``; issue 26, fourth round)
USER_SERVED = ("proxy/", "dask/dashboard/")
#: notebooks larger than this are not hashed for an app's confirmation (asked every time)
_MAX_HASHED = 64 * 2**20


class LinkError(ValueError):
    """A git-pull link the lab will not follow (the message says which parameter and why)."""


def allowed_schemes() -> set[str]:
    return {s.strip().lower() for s in os.environ.get(SCHEMES_ENV, "https").split(",")
            if s.strip()}


def repo_scheme(repo: str) -> str:
    """``https``, ``git``, ``file``, ``ssh`` (also ``user@host:path``), ``ext``…"""
    if "://" in repo:
        return urlparse(repo).scheme.lower()
    if re.match(r"^[\w.-]+@[\w.-]+:", repo):
        return "ssh"
    if re.match(r"^[A-Za-z][\w+.-]*::", repo):  # git's remote helpers: ext::, fd::
        return repo.split("::", 1)[0].lower()
    return "file"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def check_link(args: dict, root_dir: str) -> dict:
    """Validate a git-pull link's parameters; return them, filled in, or raise LinkError."""
    repo = (args.get("repo") or "").strip()
    if not repo:
        msg = "the link names no repository (repo=…)"
        raise LinkError(msg)
    if repo.startswith("-"):
        msg = f"repo={repo!r} is not a repository address"
        raise LinkError(msg)
    scheme = repo_scheme(repo)
    schemes = allowed_schemes()
    if scheme not in schemes:
        msg = (f"repo={repo!r}: {scheme}:// sources are not allowed in this lab (allowed: "
               f"{', '.join(sorted(schemes))}; an administrator may add schemes to "
               f"[spawner] git_pull_schemes)")
        raise LinkError(msg)
    branch = (args.get("branch") or "").strip()
    if branch.startswith("-") or any(c in branch for c in " \t\n:~^\\"):
        msg = f"branch={branch!r} is not a branch name"
        raise LinkError(msg)
    default = repo.rstrip("/").split("/")[-1].removesuffix(".git") or "repository"
    target = (args.get("targetpath") or args.get("targetPath") or default).strip()
    parts = target.replace("\\", "/").split("/")
    if (target.startswith(("/", "~")) or any(p in ("..", ".") for p in parts)
            or any(p.startswith(".") for p in parts if p)):
        msg = (f"targetpath={target!r}: give a folder inside your home, e.g. "
               f"'{default}' (no absolute path, '..' or hidden folder)")
        raise LinkError(msg)
    home = os.path.realpath(root_dir)
    resolved = os.path.realpath(os.path.join(home, *[p for p in parts if p]))
    if not _inside(resolved, home) or resolved == home:
        msg = (f"targetpath={target!r} leads out of your home (through a link); "
               f"give a folder inside it")
        raise LinkError(msg)
    depth = (args.get("depth") or "").strip()
    if depth and not depth.isdigit():
        msg = f"depth={depth!r} is not a whole number"
        raise LinkError(msg)
    urlpath = (args.get("urlpath") or args.get("urlPath") or "").strip().lstrip("/")
    if "://" in urlpath or urlpath.startswith(("/", "\\")) or ".." in urlpath.split("/"):
        msg = f"urlpath={urlpath!r}: give a path in this lab (e.g. 'lab/tree/…')"
        raise LinkError(msg)
    lab_view = f"lab/tree/{'/'.join(p for p in parts if p)}"
    if not urlpath:
        urlpath = lab_view
    is_app = not (urlpath in ("lab", "tree") or urlpath.startswith(_VIEWS[1:]))
    return {"repo": repo, "branch": branch, "targetpath": "/".join(p for p in parts if p),
            "depth": int(depth) if depth else None, "urlpath": urlpath, "is_app": is_app,
            "lab_view": lab_view, "repo_dir": resolved, "scheme": scheme}


# -- apps of someone else's notebook ------------------------------------------------------

def writer(uid: int) -> str:
    """The hub user (their home folder's name) owning ``uid``, else the account or the uid."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return f"uid {uid}"
    return os.path.basename(entry.pw_dir.rstrip("/")) or entry.pw_name


def foreign(os_path: str, root_dir: str) -> dict | None:
    """Why running this notebook as an app must be confirmed (who wrote it, when), or None.

    Asked when the file belongs to another account, or lies (links followed) in a project
    folder, where a co-member may have changed a notebook whoever created it.
    """
    try:
        st = os.stat(os_path)
    except OSError:
        return None  # Voilà answers 404 itself
    resolved = os.path.realpath(os_path)
    in_project = any(_inside(resolved, root) for root in shared_roots(root_dir)[1:])
    if st.st_uid == os.geteuid() and not in_project:
        return None
    return {"writer": writer(st.st_uid), "yours": st.st_uid == os.geteuid(),
            "in_project": in_project,
            "changed": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(st.st_mtime))}


def _content_hash(os_path: str) -> str | None:
    try:
        with open(os_path, "rb") as f:
            data = f.read(_MAX_HASHED + 1)
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest() if len(data) <= _MAX_HASHED else None


def app_token(secret: bytes, user: str, path: str, os_path: str) -> str | None:
    """The confirmation of running ``path`` as ``user``'s app in its current content."""
    digest = _content_hash(os_path)
    if digest is None or not secret:
        return None
    msg = "\0".join((user, path, digest)).encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


class Pin:
    """A notebook opened once for an app: hashed, then read by Voilà, through one descriptor.

    Set in :data:`.serverext.PINNED` for the request; the contents manager reads the pinned
    path through ``/proc/self/fd/N`` (the same inode) once, then the descriptor is closed (at
    the latest when the request's handler goes)."""

    def __init__(self, os_path: str):
        self.os_path = os.path.abspath(os_path)
        self.fd: int | None = os.open(os_path, _OPEN)

    @property
    def proc_path(self) -> str:
        return f"/proc/self/fd/{self.fd}"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _root_dir(handler) -> str:
    return os.path.expanduser(handler.settings.get("server_root_dir") or os.getcwd())


def _redirect(handler, path: str, query: dict | str) -> None:
    query = query if isinstance(query, str) else urlencode(query)
    handler.redirect(handler.base_url + path + (f"?{query}" if query else ""))
    raise web.Finish()


def check(handler, user) -> None:
    """For the owner and editing sharees: git-pull links and foreign apps go through our pages."""
    path = lab_path(handler)
    if path == "git-pull/api":
        raise web.HTTPError(403, "nbgitpuller's direct pull is off in this lab: open the link "
                                 "(/git-pull?repo=…), which shows what it clones and asks")
    if refused(handler):
        return
    if path == "git-pull":
        _redirect(handler, "echoes/git-pull", handler.request.query)
    match = re.fullmatch(r"voila/render/(.+)", path)
    if match:
        nb = unquote(match[1])
        if ".." in nb.split("/"):
            # never "out of the lab, Voilà refuses it": ``x%2F..%2Fnb.ipynb`` (slashes encoded,
            # so neither browsers nor tornado collapse the ``..``) is a notebook inside the lab
            # to the contents manager, which a co-member's link ran unasked (issue 26, fourth
            # round); no page of the lab spells an app's path with ``..``
            raise web.HTTPError(404, "no app at a path with '..'")
        root = _root_dir(handler)
        os_path = os.path.join(root, *[p for p in nb.split("/") if p])
        if foreign(os_path, root) is None:
            return
        given = handler.get_query_argument("echoes_confirm", "")
        try:
            pin = Pin(os_path)
        except OSError:
            return  # Voilà answers 404 itself
        weakref.finalize(handler, pin.close)
        expected = app_token(handler.settings.get("cookie_secret", b""), user.username, nb,
                             pin.proc_path)
        if not (expected and given and hmac.compare_digest(given, expected)):
            pin.close()
            _redirect(handler, "echoes/app", {"path": nb})
        PINNED.set(pin)  # Voilà reads what was hashed, whatever the name now leads to


class SandboxUserContent(ServerPathTransform):
    """``Content-Security-Policy: sandbox`` (no ``allow-same-origin``) on users' proxied pages.

    A transform, not a handler's header: jupyter-server-proxy copies the proxied server's own
    headers into the reply; a second CSP header can only narrow what the first allows
    (CSP 3, "multiple policies": every policy is enforced).
    """

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        if self.rel.startswith(USER_SERVED):
            headers.add("Content-Security-Policy", _SANDBOX)
        return status_code, headers, chunk


# -- pages ---------------------------------------------------------------------------------

def handlers(web_app) -> list[tuple]:
    from jupyter_server.base.handlers import JupyterHandler
    from jupyter_server.utils import url_path_join

    class _Page(JupyterHandler):
        def render_page(self, template: str, status: int = 200, **ns) -> None:
            from echoes_lab.hub import i18n

            env = self.settings.setdefault("echoes_share_env", _environment())
            self.set_status(status)
            words = page_words(self)  # the page's language; the links' checks are above
            with i18n.rendering_in(words["lang"]):
                self.finish(env.get_template(template).render(
                    hub_prefix=hub_prefix(), user={"name": self.current_user.username},
                    xsrf_token=self.xsrf_token.decode(), owner=owner()[0],
                    lab_url=self.base_url + "lab", base_url=self.base_url, **words, **ns))

    class GitPullPage(_Page):
        """Shows what a git-pull link clones and asks; the form's POST clones."""

        def _link(self) -> tuple[dict, str]:
            args = {k: self.get_argument(k, "") for k in (
                "repo", "branch", "targetpath", "targetPath", "urlpath", "urlPath", "depth")}
            try:
                return check_link(args, _root_dir(self)), ""
            except LinkError as exc:
                return {"repo": args["repo"], "branch": args["branch"]}, str(exc)

        @web.authenticated
        async def get(self):
            link, error = self._link()
            self.render_page("lab-git-pull.html", 400 if error else 200, link=link, error=error)

        @web.authenticated
        async def post(self):
            from nbgitpuller import GitPuller

            link, error = self._link()
            if error:
                self.render_page("lab-git-pull.html", 400, link=link, error=error)
                return

            def pull() -> str:
                puller = GitPuller(link["repo"], link["repo_dir"], branch=link["branch"] or None,
                                   depth=link["depth"], parent=self.settings.get("nbapp"))
                return "\n".join(str(line).rstrip() for line in puller.pull())

            try:
                await asyncio.to_thread(pull)
            except Exception as exc:  # git's own message is what the user needs
                self.log.warning("git-pull of %s failed: %s", link["repo"], exc)
                self.render_page("lab-git-pull.html", 502, link=link,
                                 error=f"cloning {link['repo']} failed: {exc}")
                return
            run = self.get_body_argument("open", "lab") == "app"
            self.redirect(self.base_url + quote(link["urlpath"] if run else link["lab_view"],
                                                safe="/?=&%"))

    class AppPage(_Page):
        """Before an app runs someone else's notebook: who wrote it, when; run or read."""

        @web.authenticated
        async def get(self):
            nb = self.get_query_argument("path", "").lstrip("/")
            root = _root_dir(self)
            os_path = os.path.join(root, *[p for p in nb.split("/") if p])
            about = foreign(os_path, root) if nb and ".." not in nb.split("/") else None
            if about is None:
                raise web.HTTPError(404, f"no notebook {nb!r} of someone else in this lab")
            token = app_token(self.settings.get("cookie_secret", b""),
                              self.current_user.username, nb, os_path)
            run_url = (f"{self.base_url}voila/render/{quote(nb)}?"
                       f"{urlencode({'echoes_confirm': token})}") if token else ""
            self.render_page("lab-app.html", path=nb, about=about, run_url=run_url,
                             read_url=f"{self.base_url}lab/tree/{quote(nb)}")

    base = web_app.settings["base_url"]
    return [(url_path_join(base, "echoes", "git-pull"), GitPullPage),
            (url_path_join(base, "echoes", "app"), AppPage)]
