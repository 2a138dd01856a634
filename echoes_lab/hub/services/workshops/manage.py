"""The trainer's verbs: create, update materials, status, announce, collect, close.

Everything the hub holds (users, the group, servers, tokens, shares) is changed through its
REST API with the ``echoes-cli`` service token (:func:`echoes_lab.hub.client.connect`), or the
workshops service's own. Files in homes go through the profile's
:class:`~echoes_lab.hub.services.workshops.homes.Homes`: on the ``local`` profile root only
creates home folders and connects pipes, and every read or write inside a home is done as the
home's owner. Nothing is ever deleted: closing stops, archives and locks.

Trainers reach their seats' labs through JupyterHub's sharing (``POST /api/shares/<seat>/``
with the trainer as the one shared with, JupyterHub >= 5): each seat's server is shared with
each trainer at ``create`` and the shares are deleted at ``close``. The trainers' role
(:meth:`~echoes_lab.hub.services.workshops.registry.Workshop.role`) keeps the rest, filtered to
the workshop's group: seeing the seats, starting and stopping their servers.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from echoes_lab.errors import EchoesError, WorkshopError
from echoes_lab.hub.client import HubClient, connect, hub_url
from echoes_lab.hub.services.workshops import materials as _materials
from echoes_lab.hub.services.workshops import registry
from echoes_lab.hub.services.workshops.accounts import Account
from echoes_lab.hub.services.workshops.cards import render_cards, write_cards
from echoes_lab.hub.services.workshops.homes import homes_for
from echoes_lab.hub.settings import Settings, load_settings

log = logging.getLogger("echoes.workshops")

MAX_SEATS = 200


def _open(settings_file, hub: HubClient | None = None) -> tuple[Settings, HubClient]:
    """The settings and a hub client: ``hub`` if given (the workshops service's own token),
    else the command line's (``echoes-cli``)."""
    settings = load_settings(settings_file)
    if not settings.workshops.enabled:
        msg = f"workshops are turned off in {settings.source} ([workshops] enabled = false)"
        raise WorkshopError(msg)
    return settings, hub or connect(settings_file)


def _exists(hub: HubClient, path: str) -> bool:
    return hub.session.get(f"{hub.url}/hub/api{path}", timeout=hub.timeout).status_code == 200


def trainer_folder(
    settings: Settings, workshop: registry.Workshop, trainer: str | None = None
) -> tuple[str, Account]:
    """``workshops/<NAME>`` (relative to the trainer's home) and the trainer's account.

    Nothing is created here: whatever goes into that folder is written as the trainer.
    """
    trainer = trainer or workshop.trainers[0]
    if trainer not in workshop.trainers:
        msg = (
            f"{trainer!r} is not a trainer of workshop {workshop.name!r} "
            f"(trainers: {', '.join(workshop.trainers)})"
        )
        raise WorkshopError(msg)
    return f"workshops/{workshop.name}", homes_for(settings).ensure(trainer)


def share_with_trainers(hub: HubClient, workshop: registry.Workshop) -> dict[str, str]:
    """Share every seat's (default) server with every trainer; ``{seat: "ok" or why not}``.

    JupyterHub's sharing API: the grant is ``access:servers!server=<seat>/`` for that trainer
    only, so a trainer reaches the labs of their workshop's seats and nobody else's.
    """
    out = {}
    for seat in workshop.seats:
        try:
            for trainer in workshop.trainers:
                hub.api("POST", f"/shares/{seat}/", json={"user": trainer})
            out[seat] = "ok"
        except EchoesError as exc:
            out[seat] = str(exc)
    return out


def create(
    settings_file,
    name: str,
    seats: int,
    trainers: list[str],
    materials: str,
    ends: str,
    credentials: str = "cards",
    mem_limit: str | None = None,
    warm: bool = False,
    concurrency: int = 4,
    starts: str | None = None,
) -> dict:
    """Create a workshop: seats' accounts, the group, credentials, materials in every home.

    With ``warm``, every seat's server is started at the end (:func:`warm`), so the trainees
    find their labs running. Returns ``{"seats": [...], "cards": (html, csv), "materials":
    commit, "pull": {seat: status}, "shares": {seat: status}, "warnings": [...]}`` (and
    ``"warm"`` when asked).
    """
    end, start = _check_request(name, seats, trainers, credentials, ends, starts)
    settings, hub = _open(settings_file)
    homes = homes_for(settings)
    names = registry.seat_names(name, seats)
    _check_free(hub, settings, name, names, trainers)

    # materials first: a wrong folder or URL stops here, before anything exists in the hub
    warnings: list[str] = []
    url, commit = _materials.publish(settings.state_dir, name, materials, skipped=warnings)

    for trainer in trainers:
        hub.api("POST", f"/users/{trainer}", ok=(201, 409))
    hub.api("POST", "/users", json={"usernames": names}, ok=(201, 409))
    hub.api("POST", f"/groups/{name}", json={"users": names})

    passwords = {seat: registry.new_password() for seat in names} if credentials == "cards" else {}
    workshop = registry.Workshop(
        name=name,
        trainers=list(trainers),
        ends=end.isoformat(timespec="minutes"),
        seats={
            seat: registry.hash_password(passwords[seat]) if passwords else "" for seat in names
        },
        credentials=credentials,
        materials=materials,
        materials_dir=name,
        mem_limit=mem_limit or settings.workshops.mem_limit,
        starts=start.isoformat(timespec="minutes") if start else None,
    )
    registry.save(settings.state_dir, workshop)

    accounts = [homes.ensure(seat) for seat in names]
    pulled = homes.pull_materials(accounts, url, workshop.materials_dir)
    shares = share_with_trainers(hub, workshop)

    cards = _deliver_cards(settings, homes, workshop, passwords, end, warnings)
    out = {
        "seats": names,
        "cards": cards,
        "materials": commit,
        "pull": pulled,
        "shares": shares,
        "warnings": warnings,
    }
    if warm:
        out["warm"] = start_servers(hub, names, concurrency=concurrency)
        workshop.warmed = registry.now().isoformat(timespec="seconds")
        registry.save(settings.state_dir, workshop)
    return out


def _check_request(name: str, seats: int, trainers: list[str], credentials: str, ends: str,
                   starts: str | None):
    """What the trainer asked for, checked before anything is made: → (end, start)."""
    registry.check_name(name)
    if not 1 <= seats <= MAX_SEATS:
        msg = f"--seats {seats}: a workshop has between 1 and {MAX_SEATS} seats"
        raise WorkshopError(msg)
    if not trainers:
        msg = "name at least one --trainer (a hub user who may open the seats' labs)"
        raise WorkshopError(msg)
    if credentials not in ("cards", "shared"):
        msg = f"--credentials {credentials!r}: choose 'cards' or 'shared'"
        raise WorkshopError(msg)
    end = registry.parse_ends(ends)
    if end <= registry.now():
        msg = f"--ends {ends}: that time has already passed"
        raise WorkshopError(msg)
    start = registry.parse_ends(starts, "--starts") if starts else None
    if start is not None and not registry.now() < start < end:
        msg = f"--starts {starts}: give a time after now and before --ends {ends}"
        raise WorkshopError(msg)
    return end, start


def _check_free(hub: HubClient, settings, name: str, names: list[str],
                trainers: list[str]) -> None:
    """The workshop's name, group and seats' accounts are not anyone's yet."""
    if registry.record_path(settings.state_dir, name).exists():
        msg = f"a workshop named {name!r} already exists (see 'echoes-lab workshop status {name}')"
        raise WorkshopError(msg)
    clash = sorted(set(trainers) & set(names))
    if clash:
        msg = f"--trainer {clash[0]}: that is one of the seats' names"
        raise WorkshopError(msg)
    if _exists(hub, f"/groups/{name}"):
        msg = f"the hub already has a group named {name!r}: choose another workshop name"
        raise WorkshopError(msg)
    taken = [seat for seat in names if _exists(hub, f"/users/{seat}")]
    if taken:  # a seat must never take over someone's account
        msg = f"the hub already has a user {taken[0]!r}: choose another workshop name"
        raise WorkshopError(msg)


def _deliver_cards(settings, homes, workshop, passwords: dict, end, warnings: list[str]):
    """The seats' cards (HTML and CSV) in the trainer's home, else in the private workshop
    folder with a warning; → their paths."""
    name, names = workshop.name, list(workshop.seats)
    if not passwords:  # shared: the cards carry the hub's user password
        from echoes_lab.hub.secrets import read_secrets

        shared = read_secrets(settings.state_dir).user_password
        passwords = {seat: shared for seat in names}
    ends_text = f"{end:%Y-%m-%d %H:%M}"
    private = registry.workshops_dir(settings.state_dir) / name
    cards = write_cards(private, name, hub_url(settings), ends_text, passwords)
    folder, trainer = trainer_folder(settings, workshop)
    try:
        homes.put_files(
            trainer, folder, render_cards(name, hub_url(settings), ends_text, passwords)
        )
        cards = (trainer.home / folder / "cards.html", trainer.home / folder / "cards.csv")
    except WorkshopError as exc:  # the workshop exists: say where the cards are instead
        warnings.append(f"{exc}; the cards are in {private} (root only)")
    return cards


def _wait_ready(hub: HubClient, seat: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        user = hub.api("GET", f"/users/{seat}")
        server = (user.get("servers") or {}).get("")
        if server and server.get("ready"):
            return "ok"
        if not user.get("pending") and not server:
            return "the server stopped while starting (see the hub's log)"
        time.sleep(0.25)
    return f"not ready within {timeout:.0f}s"


def start_servers(
    hub: HubClient, seats: list[str], concurrency: int = 4, timeout: float = 300
) -> dict[str, str]:
    """Start every seat's server through the hub's API, ``concurrency`` at a time.

    What a trainer does before the room arrives (``create --warm`` or ``warm``): the spawner
    starts each server exactly as at a trainee's first click, so isolation and limits are the
    same; unused servers are stopped later by the idle culler. Bounded concurrency keeps the
    hub and the machine responsive (a server start costs about 2 CPU-seconds). Returns
    ``{seat: "ok" or why not}``.
    """

    def one(seat: str) -> tuple[str, str]:
        status = "not started"
        for _attempt in range(2):  # once more: on a busy machine a start can time out
            try:
                hub.api("POST", f"/users/{seat}/server", ok=(201, 202, 400))  # 400: running
                status = _wait_ready(hub, seat, timeout)
            except EchoesError as exc:
                status = str(exc)
            if status == "ok":
                break
            log.warning("seat %s: server not started (%s)", seat, status)
        return seat, status

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return dict(pool.map(one, seats))


def warm(settings_file, name: str, concurrency: int = 4, hub: HubClient | None = None) -> dict:
    """Start the servers of an open workshop's seats before the trainees arrive."""
    settings = load_settings(settings_file)
    workshop = registry.load(settings.state_dir, name)
    if not workshop.is_open:
        msg = f"workshop {name!r} is closed or has ended: its seats cannot start servers"
        raise WorkshopError(msg)
    _, hub = _open(settings_file, hub)
    out = start_servers(hub, list(workshop.seats), concurrency=concurrency)
    workshop = registry.load(settings.state_dir, name)  # re-read: the record may have changed
    workshop.warmed = registry.now().isoformat(timespec="seconds")
    registry.save(settings.state_dir, workshop)
    return out


#: how long before ``--starts`` the seats' servers are started (well inside the idle culler's
#: timeout, an hour on the local profile, so they are still running when the room arrives)
WARM_LEAD = timedelta(minutes=10)


def due_to_warm(settings_file) -> list[str]:
    """Open workshops whose ``--starts`` is less than :data:`WARM_LEAD` away and not warmed yet.

    For the workshops service's periodic check: ``for name in due_to_warm(f): warm(f, name,
    hub=...)``, as it does with :func:`overdue` and :func:`close`.
    """
    settings = load_settings(settings_file)
    now = registry.now()
    return [
        w.name
        for w in registry.load_all(settings.state_dir)
        if w.is_open and w.starts and not w.warmed and now >= w.starts_at - WARM_LEAD
    ]


def update_materials(settings_file, name: str, source: str | None = None) -> dict:
    """Publish the materials again and merge them into every seat (trainees' changes kept)."""
    settings, _ = _open(settings_file)
    workshop = registry.load(settings.state_dir, name)
    if workshop.closed:
        msg = f"workshop {name!r} is closed; its homes are archived"
        raise WorkshopError(msg)
    if source and source != workshop.materials:
        workshop.materials = source
        registry.save(settings.state_dir, workshop)
    warnings: list[str] = []
    url, commit = _materials.publish(settings.state_dir, name, workshop.materials, skipped=warnings)
    homes = homes_for(settings)
    accounts = [homes.ensure(seat) for seat in workshop.seats]
    return {
        "materials": commit,
        "warnings": warnings,
        "pull": homes.pull_materials(accounts, url, workshop.materials_dir),
    }


def status(settings_file, name: str, hub: HubClient | None = None) -> list[dict]:
    """One row per seat: signed in yet, server state, last activity (from the hub's API)."""
    workshop = registry.load(load_settings(settings_file).state_dir, name)
    _, hub = _open(settings_file, hub)
    rows = []
    for seat in workshop.seats:
        user = hub.api("GET", f"/users/{seat}")
        server = (user.get("servers") or {}).get("")
        state = (
            "starting"
            if user.get("pending") == "spawn"
            else "stopping"
            if user.get("pending") == "stop"
            else "running"
            if server and server.get("ready")
            else "stopped"
        )
        rows.append(
            {
                "seat": seat,
                "signed_in": user.get("last_activity") is not None,
                "server": state,
                "last_activity": user.get("last_activity") or "",
                "closed": workshop.closed is not None,
            }
        )
    return rows


def announce(settings_file, name: str, message: str) -> registry.Workshop:
    """Show ``message`` on the hub pages of the workshop's seats and trainers ("" clears it)."""
    settings = load_settings(settings_file)
    workshop = registry.load(settings.state_dir, name)
    workshop.announcement = message.strip()
    registry.save(settings.state_dir, workshop)
    return workshop


def collect(
    settings_file,
    name: str,
    patterns: list[str] | None = None,
    trainer: str | None = None,
    rows: list | None = None,
) -> Path:
    """Copy each seat's ``submissions/`` (or ``patterns``) into the trainer's home.

    Writes ``~<trainer>/workshops/<NAME>/collected/<UTC time>/<seat>/...`` and a
    ``manifest.csv`` (seat, file, sha256, bytes, modified) beside it; returns the manifest's
    path (and appends its rows to ``rows``). Each seat's files are read as the seat (links
    skipped), and written as the trainer.
    """
    settings = load_settings(settings_file)
    workshop = registry.load(settings.state_dir, name)
    patterns = patterns or ["submissions"]
    folder, account = trainer_folder(settings, workshop, trainer)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = f"{folder}/collected/{stamp}"
    found = homes_for(settings).collect(list(workshop.seats), patterns, account, out)
    if rows is not None:
        rows.extend(found)
    return account.home / out / "manifest.csv"


def _stop_servers(hub: HubClient, seats, timeout: float = 120) -> None:
    """Stop every server of ``seats``: the default one and any named one (reports, …)."""
    for seat in seats:
        user = hub.api("GET", f"/users/{seat}", ok=(200, 404)) or {}
        names = set(user.get("servers") or {}) | {""}
        for server in names:
            path = f"/users/{seat}/servers/{server}" if server else f"/users/{seat}/server"
            hub.api("DELETE", path, ok=(202, 204, 400, 404))
    deadline = time.monotonic() + timeout
    waiting = list(seats)
    while waiting and time.monotonic() < deadline:
        waiting = [
            s
            for s in waiting
            if (lambda u: u.get("servers") or u.get("pending"))(
                hub.api("GET", f"/users/{s}", ok=(200, 404)) or {}
            )
        ]
        if waiting:
            time.sleep(0.5)
    if waiting:
        msg = (
            f"the servers of {', '.join(waiting)} did not stop within {timeout:.0f}s; "
            "run close again"
        )
        raise WorkshopError(msg)


#: the reports service's prefix behind the hub's proxy
REPORTS_API = "/services/reports/api/schedules"


def disable_schedules(settings: Settings, hub: HubClient, user: str) -> int:
    """Pause every enabled schedule of ``user`` at the reports service; how many.

    The reports API serves a user their own schedules, so the tool asks the hub for a token of
    that user limited to the reports service and to five minutes (``POST
    /users/<user>/tokens``, allowed by the ``tokens`` scope), pauses each schedule with
    ``PATCH {"enabled": false}`` (history and outputs stay), and revokes the token at once. A
    schedule whose notebook no longer validates is deleted instead (its history stays).
    """
    import requests

    if not settings.reports.enabled:
        return 0
    made = hub.api(
        "POST",
        f"/users/{user}/tokens",
        json={
            "scopes": ["access:services!service=reports"],
            "expires_in": 300,
            "note": "echoes-lab workshop: pausing schedules",
        },
    )
    done = 0
    try:
        with requests.Session() as session:
            session.headers["Authorization"] = f"token {made['token']}"
            url = f"{hub.url}{REPORTS_API}"
            r = session.get(url, timeout=hub.timeout)
            if r.status_code != 200:
                msg = (
                    f"the reports service answered {r.status_code} when listing {user}'s "
                    "schedules; is it running? Run close again once it is"
                )
                raise WorkshopError(msg)
            for sch in r.json():
                if not sch.get("enabled"):
                    continue
                one = f"{url}/{sch['id']}"
                r = session.patch(one, json={"enabled": False}, timeout=hub.timeout)
                if r.status_code == 400:
                    r = session.delete(one, timeout=hub.timeout)
                if r.status_code not in (200, 204):
                    msg = (
                        f"the reports service refused to pause schedule {sch['id']} of "
                        f"{user}: {r.status_code} {r.text[:200]}"
                    )
                    raise WorkshopError(msg)
                done += 1
    finally:
        hub.api("DELETE", f"/users/{user}/tokens/{made['id']}", ok=(204, 404))
    return done


def revoke_tokens(hub: HubClient, user: str) -> int:
    revoked = 0
    for token in hub.api("GET", f"/users/{user}/tokens").get("api_tokens", []):
        hub.api("DELETE", f"/users/{user}/tokens/{token['id']}", ok=(204, 404))
        revoked += 1
    return revoked


def end_access(settings: Settings, hub: HubClient, users: list[str]) -> dict:
    """Closed means closed: for each user, in this order, pause their schedules at the reports
    service, stop all their servers, end every other process of their account (detached ones
    too), delete their servers' shares and revoke all their tokens.

    Used by :func:`close` for a workshop's seats; deleting a user should call it first too.
    Returns the counts ``{"schedules_disabled", "processes_killed", "tokens_revoked"}``.
    """
    homes = homes_for(settings)
    schedules = sum(disable_schedules(settings, hub, user) for user in users)
    _stop_servers(hub, users)
    killed = sum(homes.stop_processes(user) for user in users)
    revoked = 0
    for user in users:
        hub.api("DELETE", f"/shares/{user}/", ok=(204, 403, 404))
        revoked += revoke_tokens(hub, user)
    return {"schedules_disabled": schedules, "processes_killed": killed, "tokens_revoked": revoked}


def close(
    settings_file, name: str, trainer: str | None = None, hub: HubClient | None = None
) -> dict:
    """Close a workshop: lock the seats, end their access, archive every home. Deletes nothing.

    The order matters: the registry is marked closed first, so no seat can sign in or start a
    server while its home is archived; then :func:`end_access` (schedules, servers, every
    process, shares, tokens). Returns ``{"archives": {seat: path}, "tokens_revoked": n,
    "schedules_disabled": n, "processes_killed": n}``.
    """
    workshop = registry.load(load_settings(settings_file).state_dir, name)
    settings, hub = _open(settings_file, hub)
    if workshop.closed is None:
        workshop.closed = registry.now().isoformat(timespec="seconds")
        registry.save(settings.state_dir, workshop)
    ended = end_access(settings, hub, list(workshop.seats))
    folder, account = trainer_folder(settings, workshop, trainer)
    homes = homes_for(settings)
    archives = {}
    for seat in workshop.seats:
        path = homes.archive(seat, account, f"{folder}/archive")
        if path is not None:
            archives[seat] = path
    return {"archives": archives, **ended}


def overdue(settings_file) -> list[str]:
    """Names of workshops past their end time and not yet closed."""
    settings = load_settings(settings_file)
    return [
        w.name
        for w in registry.load_all(settings.state_dir)
        if w.closed is None and registry.now() >= w.ends_at
    ]


__all__ = [
    "announce",
    "close",
    "collect",
    "create",
    "end_access",
    "overdue",
    "start_servers",
    "status",
    "update_materials",
    "warm",
]
