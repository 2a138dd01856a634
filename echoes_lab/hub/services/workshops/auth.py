"""The hub side of workshops: seat passwords, trainers' roles, announcements, seat limits.

Loaded by ``echoes_lab.hub.config.configure`` when ``[workshops] enabled``. Everything it
knows comes from the registry files the ``echoes-lab workshop`` tool writes
(:mod:`echoes_lab.hub.services.workshops.registry`); it re-reads them when they change, so a new
workshop, a closed one or an announcement takes effect without restarting the hub.

* **Seats** sign in with their own password from the card (scrypt hashes in the registry), or
  with the hub's shared user password when the workshop chose ``--credentials shared``. The
  shared password never opens a seat that has its own password. A closed or ended workshop's
  seats cannot sign in, and their sessions end at the next re-check (``auth_refresh_age``).
* **Trainers** get their workshop's role at sign-in and at every re-check, through
  JupyterHub's authenticator-managed roles (``Authenticator.manage_roles``, JupyterHub >= 5):
  the hub creates the role with scopes filtered to the workshop's group. JupyterHub 6.1 has no
  REST endpoint that creates roles, and this is its supported way to grant one at run time.
* **Everyone else** signs in through the site's identity provider, ``[auth] authenticator`` in
  the settings (any JupyterHub authenticator: LDAP, PAM, an OAuth/OIDC provider…), which
  :class:`WorkshopAuthenticator` composes with the seats; with none set, the hub's shared
  password. An identity provider with its own sign-in pages (OAuth) keeps them, linked from the
  sign-in page above the seats' form.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from pathlib import Path

from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
from markupsafe import escape
from tornado import web
from traitlets import Unicode, import_item

from echoes_lab.errors import SettingsError
from echoes_lab.hub.services import Feature, managed_service, service_command
from echoes_lab.hub.services.workshops import registry


def load_authenticator(name: str, source: str | Path = "the settings"):
    """The authenticator class ``name``: a ``jupyterhub.authenticators`` entry point (as
    ``JupyterHub.authenticator_class`` takes it) or a dotted class path."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="jupyterhub.authenticators"):
        if entry.name.lower() == name.lower():
            return entry.load()
    try:
        return import_item(name)
    except (ImportError, ValueError, AttributeError) as err:
        names = sorted(e.name for e in entry_points(group="jupyterhub.authenticators"))
        msg = (f"{source}: [auth] authenticator = {name!r} is neither an installed "
               f"authenticator ({', '.join(names)}) nor a class that can be imported ({err}); "
               "install its package in the hub's environment or correct the name")
        raise SettingsError(msg) from err


async def maybe_awaitable(value):
    """``value``, awaited if the authenticator's method was a coroutine (both are allowed)."""
    return await value if inspect.isawaitable(value) else value


class _Registry:
    """The registry files, re-read when any of them changes (cheap: one stat per file)."""

    def __init__(self, state_dir: str | Path):
        self.state_dir = Path(state_dir)
        self._stamp: tuple = ()
        self._workshops: list[registry.Workshop] = []

    def _current_stamp(self) -> tuple:
        out = []
        for path in registry.workshops_dir(self.state_dir).glob("*/workshop.json"):
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((str(path), st.st_mtime_ns, st.st_size))
        return tuple(sorted(out))

    def workshops(self) -> list[registry.Workshop]:
        stamp = self._current_stamp()
        if stamp != self._stamp:
            self._workshops = registry.load_all(self.state_dir)
            self._stamp = stamp
        return self._workshops

    def seat(self, username: str) -> registry.Workshop | None:
        return next((w for w in self.workshops() if username in w.seats), None)

    def trained_by(self, username: str) -> list[registry.Workshop]:
        return [w for w in self.workshops() if username in w.trainers]


class WorkshopAuthenticator(SharedPasswordAuthenticator):
    """Workshop seats and trainers composed with the site's identity provider.

    Seats (names in an open workshop's registry) are decided here; every other name goes to
    :attr:`site_authenticator` (its sign-in, allow lists and re-checks), or, with none, to
    JupyterHub's shared-password authenticator this class extends. Trainer roles are added to
    whatever the site's authenticator returns.
    """

    state_dir = Unicode(
        config=True, help="The hub's state directory (holds workshops/*/workshop.json).")
    site_authenticator = Unicode(
        "", config=True,
        help="The site's authenticator for everyone but seats (entry point name or class); "
             "\"\": the shared password.")

    _registry: _Registry | None = None
    _site = None

    @property
    def site(self):
        """The site's authenticator instance (configured from the same config), or None."""
        if self.site_authenticator and self._site is None:
            self._site = load_authenticator(self.site_authenticator)(parent=self, log=self.log)
        return self._site

    def _is_seat(self, username: str) -> bool:
        return self.registry.seat(username) is not None

    async def check_allowed(self, username, authentication=None):
        if self.site is None or self._is_seat(username):
            return await maybe_awaitable(super().check_allowed(username, authentication))
        return await maybe_awaitable(self.site.check_allowed(username, authentication))

    def get_handlers(self, app):
        # the seats' password form stays at /login; an identity provider with its own pages
        # (OAuth: /oauth_login, /oauth_callback) keeps them, each run by the site's instance
        handlers = super().get_handlers(app)
        if self.site is None or not self.site.login_service:
            return handlers
        taken = {path for path, _ in handlers}
        site = self.site
        for path, handler in site.get_handlers(app):
            if path in taken:
                continue
            handlers.append((path, type(handler.__name__, (handler,), {"authenticator": site})))
        return handlers

    def get_custom_html(self, base_url):
        if self.site is None or not self.site.login_service:
            return ""
        # JupyterHub's login page shows either this or its form: both are here
        url = self.site.login_url(base_url)
        return SITE_AND_SEATS_HTML.format(url=escape(url), service=escape(self.site.login_service))

    @property
    def registry(self) -> _Registry:
        if self._registry is None or self._registry.state_dir != Path(self.state_dir):
            self._registry = _Registry(self.state_dir)
        return self._registry

    def _closed_message(self, w: registry.Workshop) -> str:
        if w.closed:
            return f"The workshop '{w.name}' is closed; ask your trainer for your work."
        return f"The workshop '{w.name}' ended at {w.ends_at:%Y-%m-%d %H:%M}."

    def _trainer_roles(self, username: str) -> list[dict] | None:
        trained = self.registry.trained_by(username)
        if not trained or username in self.admin_users:
            return None  # no roles key: JupyterHub leaves this user's roles alone
        # the list replaces the user's roles: keep the default 'user' role (given by name
        # only, so its definition is untouched), plus the role of every open workshop
        current = [w.role() for w in trained if w.is_open]
        return [{"name": "user"}, *current, *([PAGE_ROLE] if current else [])]

    async def authenticate(self, handler, data):
        username = self.normalize_username(data.get("username", ""))
        workshop = self.registry.seat(username)
        if workshop is not None:
            if not workshop.is_open:
                raise web.HTTPError(403, self._closed_message(workshop))
            stored = workshop.seats[username]
            if not stored:  # --credentials shared: the hub's user password
                return await super().authenticate(handler, data)
            # scrypt costs ~40 ms of CPU: off the event loop, so a room signing in at once
            # does not stall the hub
            ok = await asyncio.to_thread(registry.verify_password, data.get("password", ""), stored)
            return {"name": username} if ok else None
        if self.site is not None:
            result = await maybe_awaitable(self.site.authenticate(handler, data))
        else:
            result = await super().authenticate(handler, data)
        if result is None:
            return None
        name = result["name"] if isinstance(result, dict) else result
        roles = self._trainer_roles(name)
        model = result if isinstance(result, dict) else {"name": name}
        return {**model, "roles": roles} if roles is not None else model

    async def refresh_user(self, user, handler=None):
        workshop = self.registry.seat(user.name)
        if workshop is not None:
            return workshop.is_open  # False: the hub ends the session and asks to sign in again
        verdict = True
        if self.site is not None:
            verdict = await maybe_awaitable(self.site.refresh_user(user, handler))
            if not verdict:
                return verdict  # the identity provider ended the session
        roles = self._trainer_roles(user.name)
        if roles is None:
            return verdict
        return {**(verdict if isinstance(verdict, dict) else {"name": user.name}), "roles": roles}

    async def load_managed_roles(self):
        # at hub start: every workshop's role, held by its trainers while it is open
        workshops = self.registry.workshops()
        trainers = sorted({t for w in workshops if w.is_open for t in w.trainers})
        return [*({**w.role(), "users": list(w.trainers) if w.is_open else []} for w in workshops),
                {**PAGE_ROLE, "users": trainers}]


def announcement_for(state_dir: str | Path):
    """A ``template_vars`` callable: the announcements of the user's open workshops, as HTML.

    JupyterHub calls it with the current user (or ``None``) for every hub page it renders and
    shows the result in the ``announcement`` block of ``page.html`` (unescaped, so it is
    escaped here).
    """
    reg = _Registry(state_dir)

    def announcement(user) -> str:
        if user is None:
            return ""
        name = user.name
        texts = [f"<strong>{escape(w.name)}</strong>: {escape(w.announcement)}"
                 for w in reg.workshops()
                 if w.announcement and w.is_open and (name in w.seats or name in w.trainers)]
        return "<br>".join(texts)

    return announcement


def seat_limits_hook(state_dir: str | Path, default_mem_limit: str | None):
    """A ``Spawner.pre_spawn_hook`` giving a seat's server its workshop's memory limit.

    ``mem_limit`` is enforced by spawners that can (SystemdSpawner, KubeSpawner); the local
    process spawner passes it to the server as ``MEM_LIMIT``, which the lab displays.
    """
    reg = _Registry(state_dir)

    def hook(spawner) -> None:
        workshop = reg.seat(spawner.user.name)
        if workshop is None:
            return
        spawner.environment = {**spawner.environment, "ECHOES_WORKSHOP": workshop.name}
        limit = workshop.mem_limit or default_mem_limit
        if limit:
            spawner.mem_limit = limit

    return hook


#: the sign-in page with a site identity provider of its own pages: its button, and the form
#: seats use (JupyterHub's login page renders this through Jinja: the XSRF field is its own)
SITE_AND_SEATS_HTML = """
<div class="service-login text-center mb-4">
  <a role="button" class="btn btn-jupyter btn-lg" href="{url}">Sign in with {service}</a>
</div>
<form action="{{{{ authenticator_login_url }}}}" method="post" role="form">
  {{{{ xsrf_form_html() | safe }}}}
  <div class="auth-form-header"><h2 class="h5">Workshop seat</h2></div>
  <div class="auth-form-body m-auto">
    <label for="username_input">Seat name:</label>
    <input id="username_input" type="text" autocapitalize="off" autocorrect="off"
           autocomplete="username" class="form-control" name="username" tabindex="1">
    <label for="password_input">Password from your card:</label>
    <input type="password" autocomplete="current-password" class="form-control"
           name="password" id="password_input" tabindex="2">
    <input type="submit" id="login_submit" class="btn btn-jupyter form-control mt-2"
           value="Sign in" tabindex="3">
  </div>
</form>
"""

SERVICE = "workshops"
#: lets a trainer open the trainers' page (the page shows only the workshops they train)
PAGE_ROLE = {"name": "workshop-trainers-page",
             "description": "the trainers' page of the workshops service",
             "scopes": [f"access:services!service={SERVICE}"]}


def _service(settings, secrets) -> dict:
    """The ``workshops`` service: the trainers' page, closing workshops at their end time."""
    command = service_command("echoes_lab.hub.services.workshops", settings)
    return managed_service(SERVICE, settings, command, port=settings.workshops.port,
                           info={"description": "Trainers' page of the workshops"})


def _roles(settings) -> list[dict]:
    return [{
        "name": f"{SERVICE}-service",
        "scopes": ["admin:users", "admin:groups", "admin:servers", "tokens", "list:users",
                   "read:users", "shares"],
        "services": [SERVICE],
    }]


def configure_hub(c, settings) -> None:
    """Set the hub's options for workshops (:data:`FEATURE`, applied by
    ``echoes_lab.hub.config.configure``): the authenticator, sign-in re-checks, announcements
    and seat limits."""
    state = str(settings.state_dir)
    ws = settings.workshops
    # a subclass of the shared-password authenticator: its passwords and admins still apply
    c.JupyterHub.authenticator_class = (
        "echoes_lab.hub.services.workshops.auth.WorkshopAuthenticator")
    # composed with the site's identity provider, not replacing it
    c.WorkshopAuthenticator.site_authenticator = settings.auth.authenticator
    c.WorkshopAuthenticator.state_dir = state
    c.WorkshopAuthenticator.manage_roles = True
    # JupyterHub 6.1 bug: with manage_roles and reset_managed_roles_on_startup = False,
    # JupyterHub.init_role_assignment indexes a dict it only fills when the reset is on, so the
    # hub cannot start once a managed role has a member (KeyError: 'users'). Our
    # load_managed_roles is complete (every workshop role and its trainers, from the registry),
    # so resetting to it at start-up is also the right meaning.
    c.WorkshopAuthenticator.reset_managed_roles_on_startup = True
    c.Authenticator.auth_refresh_age = ws.auth_refresh_age
    # a closed workshop's seat cannot start a server with an old session cookie
    c.Authenticator.refresh_pre_spawn = True
    c.JupyterHub.template_vars = {**c.JupyterHub.get("template_vars", {}),
                                  "announcement": announcement_for(state)}
    c.Spawner.pre_spawn_hook = seat_limits_hook(state, ws.mem_limit)
    folder = registry.workshops_dir(settings.state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o711)  # seats pass through to materials; cannot list the workshops


FEATURE = Feature(SERVICE, enabled=lambda s: s.workshops.enabled, service=_service, roles=_roles,
                  configure_hub=configure_hub)
