"""The single-user server's part of sharing: read-only shares, and the lab's "Share" page.

Loaded in every user's server as the server extension
``echoes_lab.hub.services.projects.serverext`` (``echoes_lab.hub.config.singleuser_args``).

* **Read-only shares.** JupyterHub lets a share carry any scope filtered to the shared server,
  but the single-user server only checks ``access:servers``. A share made with
  ``read_only=True`` also carries ``custom:echoes-lab:read-only!server=OWNER/NAME``. The server
  reads its own shares from the hub — every page of them (JupyterHub returns at most
  ``api_page_max_limit``, 200, per call), cached for ``HubOAuth.cache_max_age`` seconds — and
  makes its identity provider, through which every request is authenticated (including handlers
  that skip jupyter-server's ``@authorized``: jupyterlab-git, the lab's settings,
  jupyter-server-proxy, Voilà, nbgitpuller), decide for a read-only sharee by **what the
  request does**: only the routes of :data:`READ_ONLY_ROUTES` are answered, each a ``GET`` or
  ``HEAD`` that reads (the lab's page and its static files and settings, the file browser, file
  downloads, notebooks rendered as HTML without running them). Everything else is refused with
  403 whatever its method: Voilà (rendering runs the notebook), nbgitpuller, nbconvert formats
  that run programs, server-proxy, terminals, kernels and sessions, resource metrics,
  websockets (the live collaborative editor accepts edits from whoever is connected), and any
  route an extension adds later — an allow-list, so a new extension's ``GET`` with side effects
  is refused until it is listed here. The lists of kernels, sessions and terminals, which the
  lab's page polls every few seconds, are answered with an empty list (:data:`EMPTY_LISTS`):
  the sharee's lab shows no stream of 403 errors, and still sees none of the owner's kernels,
  sessions or terminals. Files are read only inside the lab: a path with a hidden component
  (``.local``, ``.ssh``…), or whose resolved target (links followed) leaves the owner's home
  and the project folders, is refused on every route that takes a path; and what is then read
  is the file that was checked, not a name looked up again (a co-member swapping a link in
  after the check won a race, issue 26's second round): the contents manager and ``/files/``
  open the file, check where the descriptor leads (``/proc/self/fd``) and read from that same
  inode (:func:`open_checked`); a folder is listed the same way, its names and their details
  read through the checked folder's descriptor (a link swapped in for the folder between check
  and listing would otherwise show the names inside a hidden folder). The same decision is made
  for browsers (OAuth cookies, whose tokens carry no read-only scope) and API tokens: it rests
  on the share list, and when that list cannot be read completely a non-owner is treated as
  read-only (refusing, not allowing). The owner is never read-only; hub services reach labs by
  their roles, not by shares.
* **The Share page** at ``/user/NAME/echoes/share`` (File → Share this lab… in the lab,
  ``hub_config/lab/overrides.json``): the owner shares their lab with a user, a project or a
  group, read-only or editing, with an expiry; lists and revokes shares. It calls
  :mod:`echoes_lab.sharing`, i.e. JupyterHub's sharing API with the server's own token.
* **Links and apps** (:mod:`.links`): nbgitpuller links and Voilà apps of notebooks written by
  someone else ask before anything runs, and users' proxied web content is sandboxed.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import mimetypes
import os
import re
import stat
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

from tornado import web

from echoes_lab.hub.services.projects import READ_ONLY_SCOPE

#: whether the request being answered is a read-only sharee's (set by the guard for each
#: request; tornado answers each request in its own task, whose context this is)
_SHAREE: contextvars.ContextVar[bool] = contextvars.ContextVar("echoes_read_only_sharee",
                                                               default=False)
#: the notebook an app confirmed for this request (:class:`.links.Pin`), read through its
#: descriptor by the contents manager
PINNED: contextvars.ContextVar = contextvars.ContextVar("echoes_pinned_app", default=None)
_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
HERE = Path(__file__).resolve().parent
HUB_TEMPLATES = HERE.parents[1] / "templates"
_SAFE_METHODS = {"GET", "HEAD"}

#: What a read-only sharee may request (``GET``/``HEAD`` only, no websocket), as patterns of
#: the path under the server's base URL. A named group ``path`` is a file path in the lab,
#: checked by :func:`path_allowed`. Each entry reads and never runs or changes anything.
READ_ONLY_ROUTES = [re.compile(p) for p in (
    r"",                                                  # the server's root: redirects to /lab
    r"lab",
    r"lab/(tree|workspaces)(/.*)?",                       # the lab page itself (JS app)
    r"lab/api/(settings|themes|translations|listings|workspaces|plugins)(/.*)?",
    r"(lab/)?(static|extensions)/.*",
    r"(custom/custom\.css|favicon\.ico|logout)",
    r"api",                                               # server version
    r"api/me",
    r"api/kernelspecs(/.*)?",
    r"kernelspecs/[^/]+/logo-[\w.-]+",                    # kernel logos (not kernel.json)
    r"api/nbconvert",                                     # the list of export formats
    r"api/contents(/(?P<path>.*?))?(/checkpoints(/[^/]*)?)?",
    r"files/(?P<path>.*)",
    # nbconvert formats that render without running anything (not pdf/webpdf: LaTeX, Chromium)
    r"nbconvert/(html|markdown|rst|script|asciidoc|notebook|python)/(?P<path>.*)",
    r"tree(/.*)?",
)]
#: Lists the owner's lab page polls, answered to a read-only sharee's ``GET`` with ``[]``
#: (neither the owner's kernels nor a 403 in the sharee's lab every few seconds)
EMPTY_LISTS = re.compile(r"api/(kernels|sessions|terminals)")


def hub_prefix() -> str:
    """The hub's pages (``…/hub/``) as the lab's own pages link them: at the hub's public
    address when users' servers have origins of their own (``[hub] subdomain_host``; the hub's
    sign-in cookie is not sent to a lab's host), else by path on the shared origin."""
    public = os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL", "")
    if public:
        return public.rstrip("/") + "/"
    return os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/hub/"


def owner() -> tuple[str, str]:
    return os.environ.get("JUPYTERHUB_USER", ""), os.environ.get("JUPYTERHUB_SERVER_NAME", "")


def _is_owner(hub_user: dict) -> bool:
    return hub_user.get("kind", "user") == "user" and hub_user.get("name") == owner()[0]


def is_read_only(hub_user: dict | None, shares: list[dict] | None = None) -> bool:
    """Whether this hub user reaches this server through read-only shares only.

    Two sources, either suffices: the user's token carries the read-only scope of this server
    (it does when the token was issued for it), or — authoritative, whatever the token says —
    every share of this server that applies to the user (by name, or through one of their
    groups) carries it. ``shares`` is JupyterHub's complete list of this server's shares; None
    means it could not be read completely, and then a non-owner is treated as read-only
    (refusing, not allowing).
    """
    if not hub_user or _is_owner(hub_user):
        return False
    name, server = owner()
    marker = f"{READ_ONLY_SCOPE}!server={name}/{server}"
    if marker in (hub_user.get("scopes") or []):
        return True
    if shares is None:
        return True
    found = applying(hub_user, shares)
    return bool(found) and all(marker in s.get("scopes", []) for s in found)


def applying(hub_user: dict, shares: list[dict]) -> list[dict]:
    """The shares that give this hub user access (by name, or through one of their groups)."""
    groups = set(hub_user.get("groups") or [])
    return [s for s in shares
            if (s.get("user") or {}).get("name") == hub_user.get("name")
            or (s.get("group") or {}).get("name") in groups]


def refused(handler) -> bool:
    """Whether the request changes something (all but plain GET/HEAD; any websocket)."""
    request = handler.request
    if request.method not in _SAFE_METHODS:
        return True
    return request.headers.get("Upgrade", "").lower() == "websocket"


def lab_path(handler) -> str:
    """The request's path under the server's base URL, without slashes at either end."""
    base = handler.settings.get("base_url", "/")
    path = handler.request.path
    if path.startswith(base):
        path = path[len(base):]
    elif path + "/" == base:
        path = ""
    return path.strip("/")


def shared_roots(root_dir: str) -> list[str]:
    """Where files of this lab may resolve to: the owner's home and the project folders."""
    roots = [os.path.realpath(root_dir)]
    projects = os.environ.get("ECHOES_PROJECTS", "")
    if projects:
        roots.append(os.path.realpath(projects))
    return roots


def path_allowed(path: str, root_dir: str) -> bool:
    """Whether a sharee may read ``path`` (relative to the lab's root, URL-encoded or not).

    Refused: a hidden component (``.local``, ``.jupyter``…), ``..``, and a target that, links
    followed, leaves :func:`shared_roots` or is hidden inside them (a link ``projects/p2/rt`` to
    ``~/.local/share/jupyter/runtime`` planted by a co-member).
    """
    parts = [p for p in unquote(path).split("/") if p]
    if any(p.startswith(".") for p in parts):
        return False
    return target_allowed(os.path.realpath(os.path.join(root_dir, *parts)), root_dir)


def target_allowed(target: str, root_dir: str) -> bool:
    """Whether a resolved path lies in :func:`shared_roots`, not hidden inside them."""
    for root in shared_roots(root_dir):
        if target == root:
            return True
        if target.startswith(root + os.sep):
            inner = os.path.relpath(target, root).split(os.sep)
            return not any(p.startswith(".") for p in inner)
    return False


def open_checked(os_path: str, root_dir: str, flags: int = _OPEN) -> int:
    """Open ``os_path`` for a read-only sharee and check the file opened, not its name.

    :func:`path_allowed` resolves the name before the request is answered; a co-member who
    swaps a link in for a checked file (``rename(2)`` in a loop) would have the read follow
    the link. The descriptor's own path (``/proc/self/fd/N``, the kernel's name for the open
    inode, ``proc(5)``) must pass :func:`target_allowed`; the caller then reads through the
    descriptor (or through ``/proc/self/fd/N``, which reopens that same inode).
    """
    fd = os.open(os_path, flags)
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = ""
    if not target_allowed(target, root_dir):
        os.close(fd)
        raise web.HTTPError(403, "read-only access to this lab: no file out of the lab",
                            reason="read-only access to this lab")
    return fd


async def _closing(result, fd_or_close):
    try:
        return await result
    finally:
        if callable(fd_or_close):
            fd_or_close()
        else:
            os.close(fd_or_close)


class CheckedReads:
    """Mixed into the server's contents manager at extension load: a read-only sharee's file
    is read from the descriptor :func:`open_checked` checked (notebooks are read through
    ``_read_file`` too)."""

    def _read_file(self, os_path, *args, **kwargs):
        pin = PINNED.get()
        if pin is not None and pin.fd is not None and os.path.abspath(os_path) == pin.os_path:
            PINNED.set(None)
            try:
                result = super()._read_file(pin.proc_path, *args, **kwargs)
            except BaseException:
                pin.close()
                raise
            if inspect.isawaitable(result):
                return _closing(result, pin.close)
            pin.close()
            return result
        if not _SHAREE.get():
            return super()._read_file(os_path, *args, **kwargs)
        fd = open_checked(os_path, self.root_dir)
        try:
            result = super()._read_file(f"/proc/self/fd/{fd}", *args, **kwargs)
        except BaseException:
            os.close(fd)
            raise
        if inspect.isawaitable(result):
            return _closing(result, fd)
        os.close(fd)
        return result

    def _read_notebook(self, os_path, as_version=4, capture_validation_error=None, raw=False):
        if not _SHAREE.get():
            return super()._read_notebook(os_path, as_version, capture_validation_error, raw)
        # jupyter-server repairs an unreadable notebook from its atomic-write intermediate
        # (``.~NAME``) by renaming both files: a write as the owner, which a read-only sharee's
        # GET must not cause. Their read takes the notebook as it is (400 if unreadable).
        answer = self._read_file(os_path, "text", raw=raw)
        if inspect.isawaitable(answer):
            return self._parsed_async(answer, os_path, as_version, capture_validation_error, raw)
        return _parsed(answer, os_path, as_version, capture_validation_error, raw)

    async def _parsed_async(self, answer, *args):
        return _parsed(await answer, *args)

    def _dir_model(self, path, content=True, *args, **kwargs):
        if not (_SHAREE.get() and content):
            return super()._dir_model(path, content, *args, **kwargs)
        fd = open_checked(self._get_os_path(path), self.root_dir, _OPEN | os.O_DIRECTORY)
        try:
            model = super()._dir_model(path, False, *args, **kwargs)
        except BaseException:
            os.close(fd)
            raise
        if inspect.isawaitable(model):
            return self._listed_async(model, fd, path)
        try:
            return self._listed(model, fd, path)
        finally:
            os.close(fd)

    async def _listed_async(self, model, fd: int, path: str) -> dict:
        try:
            return await asyncio.to_thread(self._listed, await model, fd, path)
        finally:
            os.close(fd)

    def _listed(self, model: dict, fd: int, path: str) -> dict:
        """``model`` (a folder's, without content) with the entries of the folder open as
        ``fd``: names and details from that descriptor (``dir_fd``), never looked up again by
        name (the name may lead elsewhere by now)."""
        keys = dict.fromkeys(model)
        model.update(_times(os.fstat(fd)), content=[], format="json")
        for name in sorted(os.listdir(fd)):
            if name.startswith(".") or not self.should_list(name):
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                # a link is listed as what it leads to (reading it is checked when asked)
                kind = os.stat(name, dir_fd=fd).st_mode if stat.S_ISLNK(st.st_mode) else st.st_mode
            except OSError:  # gone meanwhile, a broken link, or not ours to see
                continue
            if not (stat.S_ISDIR(kind) or stat.S_ISREG(kind)):
                continue
            entry = {**keys, **_times(st), "name": name, "content": None, "format": None,
                     "path": f"{path.strip('/')}/{name}".lstrip("/"), "mimetype": None,
                     "size": None if stat.S_ISDIR(kind) else st.st_size,
                     "writable": os.access(name, os.W_OK, dir_fd=fd)}
            if stat.S_ISDIR(kind):
                entry["type"] = "directory"
            elif name.endswith(".ipynb"):
                entry["type"] = "notebook"
            else:
                entry.update(type="file", mimetype=mimetypes.guess_type(name)[0])
            model["content"].append(entry)
        return model


def _parsed(answer, os_path: str, as_version, capture_validation_error, raw: bool):
    import nbformat

    try:
        nb = nbformat.reads(answer[0], as_version=as_version,
                            capture_validation_error=capture_validation_error)
    except Exception as exc:  # what jupyter-server answers before it tries a repair
        raise web.HTTPError(400, f"Unreadable Notebook: {os_path} {exc!r}") from None
    return (nb, answer[2]) if raw else nb


def _times(st: os.stat_result) -> dict:
    # as jupyter-server's contents models (UTC); st_ctime stands in for a creation time there too
    return {"last_modified": datetime.fromtimestamp(st.st_mtime, timezone.utc),
            "created": datetime.fromtimestamp(st.st_ctime, timezone.utc)}


def _chunks(fd: int, start: int | None, end: int | None):
    pos = start or 0
    while end is None or pos < end:
        chunk = os.pread(fd, 65536 if end is None else min(65536, end - pos), pos)
        if not chunk:
            return
        pos += len(chunk)
        yield chunk


class CheckedFiles:
    """Given to a read-only sharee's ``/files/`` handler (tornado's ``StaticFileHandler``):
    the file is opened and checked once (:func:`open_checked`), then its size, time and
    content come from that descriptor, not from the name."""

    _echoes_fd: int | None = None

    def validate_absolute_path(self, root, absolute_path):
        path = super().validate_absolute_path(root, absolute_path)
        if path is not None:
            self._echoes_fd = open_checked(path, root)
        return path

    def _stat(self):
        if self._echoes_fd is None:
            return super()._stat()
        if not hasattr(self, "_stat_result"):
            self._stat_result = os.fstat(self._echoes_fd)
        return self._stat_result

    def get_content(self, abspath, start=None, end=None):  # tornado's is a classmethod
        if self._echoes_fd is None:
            return super().get_content(abspath, start, end)
        return _chunks(self._echoes_fd, start, end)

    def on_finish(self):
        if self._echoes_fd is not None:
            os.close(self._echoes_fd)
            self._echoes_fd = None
        super().on_finish()


@functools.cache
def _mixed(mixin: type, cls: type) -> type:
    return cls if issubclass(cls, mixin) else type(f"Checked{cls.__name__}", (mixin, cls), {})


def read_only_allows(handler, root_dir: str) -> bool:
    """Whether a read-only sharee's request is on :data:`READ_ONLY_ROUTES` (and its file path,
    if any, passes :func:`path_allowed`)."""
    if refused(handler):
        return False
    path = lab_path(handler)
    for route in READ_ONLY_ROUTES:
        match = route.fullmatch(path)
        if match:
            file_path = match.groupdict().get("path")
            return not file_path or path_allowed(file_path, root_dir)
    return False


class _SharesCache:
    """This server's shares from the hub (the server's own token may read them), every page,
    kept for as long as the server trusts a checked token (``HubOAuth.cache_max_age``)."""

    #: shares per page asked for; JupyterHub gives at most its ``api_page_max_limit`` (200)
    PAGE = 200
    #: pages read at most (a loop bound; a lab shared 200,000 times is refused to non-owners)
    MAX_PAGES = 1000

    def __init__(self):
        self.at, self.items = 0.0, None
        self._lock: asyncio.Lock | None = None

    async def get(self, max_age: float) -> list[dict] | None:
        if self.items is not None and time.monotonic() - self.at < max_age:
            return self.items
        # one reading at a time: the lab's page fires dozens of requests at once, and each
        # would otherwise read every page of the list
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self.items is not None and time.monotonic() - self.at < max_age:
                return self.items
            items = await self.read_all()
            if items is not None:
                self.at, self.items = time.monotonic(), items
            return items

    async def read_all(self) -> list[dict] | None:
        """Every share of this server, or None when the list cannot be read completely."""
        from tornado.httpclient import AsyncHTTPClient

        name, server = owner()
        url = f"{os.environ.get('JUPYTERHUB_API_URL', '').rstrip('/')}/shares/{name}/{server}"
        headers = {"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}",
                   "Accept": "application/jupyterhub-pagination+json"}
        items: list[dict] = []
        try:
            for _ in range(self.MAX_PAGES):
                resp = await AsyncHTTPClient().fetch(
                    f"{url}?offset={len(items)}&limit={self.PAGE}", headers=headers,
                    request_timeout=10)
                body = json.loads(resp.body)
                page, total = body["items"], int(body["_pagination"]["total"])
                items += page
                if len(items) >= total:
                    return items
                if not page:  # shares revoked while paging: the count no longer adds up
                    return None
        except Exception:  # the hub is unreachable or refuses: refuse, do not allow
            return None
        return None


_shares = _SharesCache()


class ServerPathTransform(web.OutputTransform):
    """A transform of this server's replies that knows its request's path below the server's
    prefix (``rel``: ``api/…``, ``files/…``; the whole path when it is not below it)."""

    def __init__(self, request):
        super().__init__(request)
        base = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        self.rel = request.path[len(base):] if request.path.startswith(base) else request.path


class WithoutKernelEnv(ServerPathTransform):
    """A read-only sharee's ``api/kernelspecs`` without each kernel's ``env``.

    The lab's launcher needs the owner's kernels' names, languages and logos; a kernel spec's
    environment (``kernel.json``, which the owner may have given an API key) is the owner's.
    A transform (tornado's hook on the reply) rather than a handler of our own: the reply stays
    jupyter-server's, with only that key emptied.
    """

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        if not (_SHAREE.get() and self.rel.startswith("api/kernelspecs") and finishing
                and status_code == 200 and "Content-Encoding" not in headers):
            return status_code, headers, chunk
        model = json.loads(chunk)
        # the list ({"default", "kernelspecs": {name: model}}) or one kernel's model
        for spec in model["kernelspecs"].values() if "kernelspecs" in model else [model]:
            if isinstance(spec.get("spec"), dict) and "env" in spec["spec"]:
                spec["spec"]["env"] = {}
        chunk = json.dumps(model).encode()
        headers["Content-Length"] = str(len(chunk))
        return status_code, headers, chunk


class ReadOnlyGuard:
    """Mixed into the server's identity provider (JupyterHub's) at extension load."""

    async def get_user(self, handler):
        user = super().get_user(handler)
        if asyncio.iscoroutine(user) or isinstance(user, asyncio.Future):
            user = await user
        hub_user = getattr(user, "hub_user", None)
        if user is None or not hub_user:
            return user
        if hub_user.get("kind") == "service":  # services reach labs by their roles, not shares
            return user
        read_only = False
        if not _is_owner(hub_user):
            max_age = getattr(getattr(self, "hub_auth", None), "cache_max_age", 30)
            root_dir = handler.settings.get("server_root_dir") or os.getcwd()
            shares = await _shares.get(max_age)
            if shares is not None and not applying(hub_user, shares):
                # a share made since the list was read: read it again rather than treat the
                # user as one with access by role (an administrator, a workshop's trainer)
                shares = await _shares.get(min(max_age, 1.0))
            read_only = is_read_only(hub_user, shares)
            base = handler.settings.get("base_url", "/")
            if read_only and not refused(handler) and handler.request.method == "GET" \
                    and EMPTY_LISTS.fullmatch(handler.request.path.removeprefix(base)):
                handler.set_header("Content-Type", "application/json")
                handler.finish("[]")
                raise web.Finish()
            if read_only and not read_only_allows(handler, os.path.expanduser(root_dir)):
                msg = (f"{user.username} has read-only access to this lab: reading its files "
                       f"only (ask its owner for an editing share)")
                handler.current_user = user  # the error page names them
                raise web.HTTPError(403, msg, reason="read-only access to this lab")
        _SHAREE.set(read_only)
        if read_only:
            from jupyter_server.base.handlers import AuthenticatedFileHandler

            if isinstance(handler, AuthenticatedFileHandler):
                handler.__class__ = _mixed(CheckedFiles, handler.__class__)
        from echoes_lab.hub.services.projects import links

        handler.current_user = user
        links.check(handler, user)  # the owner's (and editors') links and apps: ask first
        return user


def guard(identity_provider) -> None:
    """Give the running identity provider :class:`ReadOnlyGuard` (once)."""
    cls = identity_provider.__class__
    if not issubclass(cls, ReadOnlyGuard):
        identity_provider.__class__ = type(f"ReadOnly{cls.__name__}", (ReadOnlyGuard, cls), {})


def page_language(handler) -> str:
    """The language of a lab page (:func:`echoes_lab.hub.i18n.language_of`: its ``?lang=``
    switch, the ``echoes-lang`` cookie, the browser's ``Accept-Language``); a switch is
    remembered for the whole deployment (the cookie on JupyterHub's base URL), as on the hub's
    and the services' pages."""
    from echoes_lab.hub import i18n

    return i18n.language_of(handler, cookie_path=os.environ.get("JUPYTERHUB_BASE_URL") or "/")


def page_words(handler) -> dict:
    """What a lab page's template needs for its language: the language, the switch's choices
    and the page's own query (which the switch keeps)."""
    from echoes_lab.hub import i18n

    return {"lang": page_language(handler), "languages": i18n.LANGUAGES,
            "query": {k: handler.get_query_argument(k) for k in handler.request.query_arguments
                      if k != "lang"}}


def _environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from echoes_lab.hub import i18n  # service-page.html's strings are gettext calls

    return i18n.install(Environment(loader=FileSystemLoader([str(HUB_TEMPLATES)]),
                                    autoescape=select_autoescape(default=True,
                                                                 default_for_string=True)))


def _share_page_handler():
    from jupyter_server.base.handlers import JupyterHandler

    class SharePage(JupyterHandler):
        """The owner's page for sharing this lab."""

        def _check_owner(self):
            if self.current_user.username != owner()[0]:
                raise web.HTTPError(403, "only the owner of this lab can share it")

        async def _render(self, message="", error=""):
            from echoes_lab import sharing
            from echoes_lab.hub import i18n

            try:
                items = await asyncio.to_thread(sharing.shares)
            except sharing.ShareError as exc:
                items, error = [], error or str(exc)
            words = page_words(self)
            with i18n.rendering_in(words["lang"]):
                # the handler's own words are (msgid, values), said in the page's language (a
                # callable value, such as a time, is written in it too)
                message, error = (
                    i18n.gettext(m[0], **{k: v() if callable(v) else v for k, v in m[1].items()})
                    if isinstance(m, tuple) else m for m in (message, error))
                page = self.settings["echoes_share_env"].get_template("lab-share.html").render(
                    hub_prefix=hub_prefix(), user={"name": self.current_user.username},
                    xsrf_token=self.xsrf_token.decode(), shares=items, message=message,
                    error=error, owner=owner()[0], lab_url=self.base_url + "lab", **words)
            self.finish(page)

        @web.authenticated
        async def get(self):
            self._check_owner()
            await self._render()

        @web.authenticated
        async def post(self):
            from echoes_lab import sharing
            from echoes_lab.hub.i18n import N_, when

            self._check_owner()
            arg = self.get_body_argument
            kind, who = arg("kind", "user"), arg("who", "").strip()
            target = {kind: who} if kind in ("user", "project", "group") and who else None
            try:
                if target is None:
                    await self._render(error=(N_("give a user, a project or a group"), {}))
                    return
                if arg("action", "share") == "revoke":
                    await asyncio.to_thread(sharing.revoke, **target)
                    message = (N_("%(who)s: share revoked"), {"who": who})
                else:
                    expires = arg("expires", "").strip() or None
                    model = await asyncio.to_thread(
                        sharing.share, **target, read_only=arg("mode", "edit") == "read",
                        expires=expires)
                    message = ((N_("shared with %(who)s until %(until)s"),
                                {"who": who,
                                 "until": functools.partial(when, model["expires_at"])})
                               if model["expires_at"] else
                               (N_("shared with %(who)s"), {"who": who}))
            except sharing.ShareError as exc:
                await self._render(error=str(exc))
                return
            await self._render(message=message)

    return SharePage


def voila_files_handler():
    """Voilà's ``/voila/files/`` handler, signed in and sandboxed like jupyter-server's
    ``/files/``; None without Voilà.

    Voilà serves a lab's images (``file_allowlist``: ``.png``, ``.jpg``, ``.gif``, ``.svg``)
    with tornado's bare ``StaticFileHandler``, which asks for no user, follows links and serves
    hidden files: anyone could read ``/user/NAME/voila/files/projects/p2/x.png`` (a link a
    co-member planted to the owner's kernel connection file), bypassing the read-only guard,
    and an ``.svg`` of a co-member ran its script on the owner's origin (issue 26, fourth
    round). jupyter-server's ``AuthenticatedFileHandler`` mixed in asks for a user allowed the
    lab's contents, refuses hidden files and adds ``Content-Security-Policy: sandbox``; Voilà's
    allow- and deny-lists still apply.
    """
    try:
        from voila.static_file_handler import AllowListFileHandler
    except ImportError:
        return None
    from jupyter_server.base.handlers import AuthenticatedFileHandler

    return _mixed(AuthenticatedFileHandler, AllowListFileHandler)


def _voila_files_checked(web_app) -> int:
    """Give Voilà's ``/voila/files/`` routes :func:`voila_files_handler`; how many were given."""
    checked = voila_files_handler()
    if checked is None:
        return 0
    from voila.static_file_handler import AllowListFileHandler

    found, routers = 0, [web_app.default_router, web_app.wildcard_router]
    while routers:
        for rule in routers.pop().rules:
            target = rule.target
            if hasattr(target, "rules"):
                routers.append(target)
            elif isinstance(target, type) and issubclass(target, AllowListFileHandler):
                rule.target, found = checked, found + 1
    return found


def _jupyter_server_extension_points():
    return [{"module": "echoes_lab.hub.services.projects.serverext"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join

    from echoes_lab.hub.services.projects import links

    guard(serverapp.identity_provider)
    cm = serverapp.contents_manager
    if hasattr(cm, "_read_file"):  # file-backed: reads of sharees through checked descriptors
        cm.__class__ = _mixed(CheckedReads, cm.__class__)
    web_app = serverapp.web_app
    web_app.settings["echoes_share_env"] = _environment()
    route = url_path_join(web_app.settings["base_url"], "echoes", "share")
    web_app.add_handlers(".*$", [(route, _share_page_handler()), *links.handlers(web_app)])
    web_app.add_transform(links.SandboxUserContent)
    web_app.add_transform(WithoutKernelEnv)
    if voila_files_handler() is not None:
        # extensions load in the order of their names, Voilà after this one: it registers
        # the handler it finds in its module then (the start hook below checks every route)
        import voila.server_extension

        voila.server_extension.AllowListFileHandler = voila_files_handler()


async def _start_jupyter_server_extension(serverapp) -> None:
    # every extension's routes are in place by now, whatever their order of loading
    _voila_files_checked(serverapp.web_app)
