"""The trainer's verbs: create, update materials, status, announce, collect, close.

Everything the hub holds (users, the group, servers, tokens) is changed through its REST API
with the ``echoes-cli`` service token (:func:`echoes_lab.hub.client.connect`); files in homes
are handled directly, as the hub's administrator on the hub machine, and handed to their
owners' accounts. Nothing is ever deleted: closing stops, archives and locks.
"""

from __future__ import annotations

import csv
import os
import shutil
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pooch

from echoes_lab.errors import WorkshopError
from echoes_lab.hub.client import HubClient, connect, hub_url
from echoes_lab.hub.settings import Settings, load_settings
from echoes_lab.hub.services.workshops import materials as _materials
from echoes_lab.hub.services.workshops import registry
from echoes_lab.hub.services.workshops.accounts import Account, ensure_account, give
from echoes_lab.hub.services.workshops.cards import write_cards

MAX_SEATS = 200


def _open(settings_file, hub: HubClient | None = None) -> tuple[Settings, HubClient]:
    """The settings and a hub client: ``hub`` if given (the workshops service's own token),
    else the command line's (``echoes-cli``)."""
    settings = load_settings(settings_file)
    if not settings.workshops.enabled:
        raise WorkshopError(f"workshops are turned off in {settings.source} ([workshops] enabled = false)")
    return settings, hub or connect(settings_file)


def _exists(hub: HubClient, path: str) -> bool:
    return hub.session.get(f"{hub.url}/hub/api{path}", timeout=hub.timeout).status_code == 200


def trainer_folder(settings: Settings, workshop: registry.Workshop, trainer: str | None = None) -> tuple[Path, Account]:
    """``~<trainer>/workshops/<NAME>``, created and owned by the trainer."""
    trainer = trainer or workshop.trainers[0]
    if trainer not in workshop.trainers:
        raise WorkshopError(f"{trainer!r} is not a trainer of workshop {workshop.name!r} "
                            f"(trainers: {', '.join(workshop.trainers)})")
    account = ensure_account(settings, trainer)
    folder = account.home / "workshops" / workshop.name
    folder.mkdir(parents=True, exist_ok=True)
    give(account.home / "workshops", account)
    return folder, account


def create(settings_file, name: str, seats: int, trainers: list[str], materials: str, ends: str,
           credentials: str = "cards", mem_limit: str | None = None) -> dict:
    """Create a workshop: seats' accounts, the group, credentials, materials in every home.

    Returns ``{"seats": [...], "cards": (html, csv), "materials": commit, "pull": {seat: status}}``.
    """
    registry.check_name(name)
    if not 1 <= seats <= MAX_SEATS:
        raise WorkshopError(f"--seats {seats}: a workshop has between 1 and {MAX_SEATS} seats")
    if not trainers:
        raise WorkshopError("name at least one --trainer (a hub user who may open the seats' labs)")
    if credentials not in ("cards", "shared"):
        raise WorkshopError(f"--credentials {credentials!r}: choose 'cards' or 'shared'")
    end = registry.parse_ends(ends)
    if end <= registry.now():
        raise WorkshopError(f"--ends {ends}: that time has already passed")
    settings, hub = _open(settings_file)
    if registry.record_path(settings.state_dir, name).exists():
        raise WorkshopError(f"a workshop named {name!r} already exists (see 'echoes-lab workshop status {name}')")
    names = registry.seat_names(name, seats)
    clash = sorted(set(trainers) & set(names))
    if clash:
        raise WorkshopError(f"--trainer {clash[0]}: that is one of the seats' names")
    if _exists(hub, f"/groups/{name}"):
        raise WorkshopError(f"the hub already has a group named {name!r}: choose another workshop name")
    taken = [seat for seat in names if _exists(hub, f"/users/{seat}")]
    if taken:  # a seat must never take over someone's account
        raise WorkshopError(f"the hub already has a user {taken[0]!r}: choose another workshop name")

    # materials first: a wrong folder or URL stops here, before anything exists in the hub
    url, commit = _materials.publish(settings.state_dir, name, materials)

    for trainer in trainers:
        hub.api("POST", f"/users/{trainer}", ok=(201, 409))
    hub.api("POST", "/users", json={"usernames": names}, ok=(201, 409))
    hub.api("POST", f"/groups/{name}", json={"users": names})

    passwords = {seat: registry.new_password() for seat in names} if credentials == "cards" else {}
    workshop = registry.Workshop(
        name=name, trainers=list(trainers), ends=end.isoformat(timespec="minutes"),
        seats={seat: registry.hash_password(passwords[seat]) if passwords else "" for seat in names},
        credentials=credentials, materials=materials, materials_dir=name,
        mem_limit=mem_limit or settings.workshops.mem_limit,
    )
    registry.save(settings.state_dir, workshop)

    accounts = [ensure_account(settings, seat) for seat in names]
    pulled = _materials.pull_all(settings.state_dir, accounts, url, workshop.materials_dir)

    if not passwords:  # shared: the cards carry the hub's user password
        from echoes_lab.hub.secrets import read_secrets

        shared = read_secrets(settings.state_dir).user_password
        passwords = {seat: shared for seat in names}
    ends_text = f"{end:%Y-%m-%d %H:%M}"
    private = registry.workshops_dir(settings.state_dir) / name
    write_cards(private, name, hub_url(settings), ends_text, passwords)
    folder, trainer = trainer_folder(settings, workshop)
    cards = write_cards(folder, name, hub_url(settings), ends_text, passwords)
    for path in cards:
        give(path, trainer)
    return {"seats": names, "cards": cards, "materials": commit, "pull": pulled}


def update_materials(settings_file, name: str, source: str | None = None) -> dict:
    """Publish the materials again and merge them into every seat (trainees' changes kept)."""
    settings, _ = _open(settings_file)
    workshop = registry.load(settings.state_dir, name)
    if workshop.closed:
        raise WorkshopError(f"workshop {name!r} is closed; its homes are archived")
    if source and source != workshop.materials:
        workshop.materials = source
        registry.save(settings.state_dir, workshop)
    url, commit = _materials.publish(settings.state_dir, name, workshop.materials)
    accounts = [ensure_account(settings, seat) for seat in workshop.seats]
    return {"materials": commit, "pull": _materials.pull_all(settings.state_dir, accounts, url, workshop.materials_dir)}


def status(settings_file, name: str, hub: HubClient | None = None) -> list[dict]:
    """One row per seat: signed in yet, server state, last activity (from the hub's API)."""
    workshop = registry.load(load_settings(settings_file).state_dir, name)
    _, hub = _open(settings_file, hub)
    rows = []
    for seat in workshop.seats:
        user = hub.api("GET", f"/users/{seat}")
        server = (user.get("servers") or {}).get("")
        state = ("starting" if user.get("pending") == "spawn" else
                 "stopping" if user.get("pending") == "stop" else
                 "running" if server and server.get("ready") else "stopped")
        rows.append({"seat": seat, "signed_in": user.get("last_activity") is not None,
                     "server": state, "last_activity": user.get("last_activity") or "",
                     "closed": workshop.closed is not None})
    return rows


def announce(settings_file, name: str, message: str) -> registry.Workshop:
    """Show ``message`` on the hub pages of the workshop's seats and trainers ("" clears it)."""
    settings = load_settings(settings_file)
    workshop = registry.load(settings.state_dir, name)
    workshop.announcement = message.strip()
    registry.save(settings.state_dir, workshop)
    return workshop


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _files(home: Path, patterns: list[str]):
    """Regular files under ``home`` matching ``patterns`` (folders: everything inside).

    Symbolic links are skipped: the tool runs as the administrator, and a link in a trainee's
    home must not copy a file the trainee could not read.
    """
    seen = set()
    for pattern in patterns:
        for match in sorted(home.glob(pattern)):
            candidates = [match] if not match.is_dir() else sorted(match.rglob("*"))
            for path in candidates:
                rel = path.relative_to(home)
                if rel in seen or path.is_symlink() or not path.is_file() or \
                        any(p.is_symlink() for p in path.parents if home in p.parents):
                    continue
                seen.add(rel)
                yield path, rel


def collect(settings_file, name: str, patterns: list[str] | None = None, trainer: str | None = None) -> Path:
    """Copy each seat's ``submissions/`` (or ``patterns``) into the trainer's home.

    Writes ``~<trainer>/workshops/<NAME>/collected/<UTC time>/<seat>/...`` and a
    ``manifest.csv`` (seat, file, sha256, bytes, modified) beside it; returns the manifest.
    """
    settings = load_settings(settings_file)
    workshop = registry.load(settings.state_dir, name)
    patterns = patterns or ["submissions"]
    folder, account = trainer_folder(settings, workshop, trainer)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = folder / "collected" / stamp
    out.mkdir(parents=True)
    rows = []
    for seat in workshop.seats:
        home = settings.homes_dir / seat
        if not home.is_dir():
            continue
        for path, rel in _files(home, patterns):
            dest = out / seat / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            rows.append({"seat": seat, "file": str(rel), "sha256": pooch.file_hash(str(dest), alg="sha256"),
                         "bytes": dest.stat().st_size, "modified": _utc(path.stat().st_mtime)})
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["seat", "file", "sha256", "bytes", "modified"])
        writer.writeheader()
        writer.writerows(rows)
    give(folder / "collected", account)
    return manifest


def _stop_servers(hub: HubClient, seats, timeout: float = 120) -> None:
    for seat in seats:
        hub.api("DELETE", f"/users/{seat}/server", ok=(202, 204, 400, 404))
    deadline = time.monotonic() + timeout
    waiting = list(seats)
    while waiting and time.monotonic() < deadline:
        waiting = [s for s in waiting
                   if (lambda u: u.get("servers") or u.get("pending"))(hub.api("GET", f"/users/{s}"))]
        if waiting:
            time.sleep(0.5)
    if waiting:
        raise WorkshopError(f"the servers of {', '.join(waiting)} did not stop within {timeout:.0f}s; "
                            "run close again")


def close(settings_file, name: str, trainer: str | None = None, hub: HubClient | None = None) -> dict:
    """Close a workshop: lock the seats, stop their servers, archive every home. Deletes nothing.

    The order matters: the registry is marked closed first, so no seat can sign in or start a
    server while its home is archived. Returns ``{"archives": {seat: path}, "tokens_revoked": n}``.
    """
    workshop = registry.load(load_settings(settings_file).state_dir, name)
    settings, hub = _open(settings_file, hub)
    if workshop.closed is None:
        workshop.closed = registry.now().isoformat(timespec="seconds")
        registry.save(settings.state_dir, workshop)
    _stop_servers(hub, list(workshop.seats))
    revoked = 0
    for seat in workshop.seats:
        for token in hub.api("GET", f"/users/{seat}/tokens").get("api_tokens", []):
            hub.api("DELETE", f"/users/{seat}/tokens/{token['id']}", ok=(204, 404))
            revoked += 1
    folder, account = trainer_folder(settings, workshop, trainer)
    archive_dir = folder / "archive"
    archive_dir.mkdir(exist_ok=True)
    archives = {}
    for seat in workshop.seats:
        home = settings.homes_dir / seat
        target = archive_dir / f"{seat}.tar.gz"
        if home.is_dir() and not target.exists():
            tmp = target.with_suffix(".part")
            with tarfile.open(tmp, "w:gz") as tar:
                tar.add(home, arcname=seat)  # symbolic links are stored as links, not followed
            os.replace(tmp, target)
        if target.exists():
            archives[seat] = target
    give(archive_dir, account)
    return {"archives": archives, "tokens_revoked": revoked}


def overdue(settings_file) -> list[str]:
    """Names of workshops past their end time and not yet closed."""
    settings = load_settings(settings_file)
    return [w.name for w in registry.load_all(settings.state_dir)
            if w.closed is None and registry.now() >= w.ends_at]


__all__ = ["announce", "close", "collect", "create", "overdue", "status", "update_materials"]
