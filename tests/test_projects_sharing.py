"""Unit tests of team projects and sharing: names, folders made safely, links, expiry, the
read-only rule of shared labs. The real hub is in tests/integration/test_projects.py and
test_sharing.py."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from echoes_lab.hub.services.projects import ProjectError, check_name, is_project_group, storage
from echoes_lab.hub.services.projects.lab import sync_links, user_projects
from echoes_lab.hub.services.projects.serverext import is_read_only, refused
from echoes_lab.hub.services.projects.service import ExpiryStore
from echoes_lab.hub.settings import load_settings
from echoes_lab.sharing import ShareError, parse_expiry


@pytest.fixture
def settings(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('profile = "t"\n[hub]\nstate_dir = "state"\n[spawner]\nisolation = "none"\n')
    return load_settings(f)


@pytest.mark.parametrize("name", ["", "P1", "-x", "a b", "../etc", "a" * 24, "p1/x"])
def test_bad_project_names_are_refused(name):
    with pytest.raises(ProjectError, match="lower-case letters"):
        check_name(name)


def test_only_groups_marked_by_admins_are_projects():
    assert is_project_group({"name": "project-p1", "properties": {"echoes_project": True}})
    # a workshop (or anyone's group) called project-x is not a project
    assert not is_project_group({"name": "project-x", "properties": {}})
    assert not is_project_group({"name": "p1", "properties": {"echoes_project": True}})


def test_folder_created_private_without_root(settings):
    path = storage.ensure_folder(settings, "p1")
    assert path == settings.state_dir / "projects" / "p1"
    assert oct(path.stat().st_mode & 0o777) == "0o700"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o711"
    assert "NOT isolated" in storage.isolation_note(settings)


def test_folder_never_follows_a_symlink(settings, tmp_path):
    """A link planted where a project folder goes is refused; its target is not touched."""
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    root = settings.state_dir / "projects"
    root.mkdir(parents=True)
    (root / "p1").symlink_to(victim)
    with pytest.raises(ProjectError, match="is not a folder"):
        storage.ensure_folder(settings, "p1")
    assert oct(victim.stat().st_mode & 0o777) == "0o755"


def test_links_follow_membership_and_spare_the_users_files(tmp_path):
    home, root = tmp_path / "home", str(tmp_path / "projects")
    home.mkdir()
    sync_links(str(home), root, ["p1", "p2"])
    assert os.readlink(home / "projects" / "p1") == f"{root}/p1"
    (home / "projects" / "mine").write_text("kept")
    (home / "projects" / "elsewhere").symlink_to("/tmp")
    sync_links(str(home), root, ["p2"])  # left p1
    assert sorted(os.listdir(home / "projects")) == ["elsewhere", "mine", "p2"]


def test_archived_and_foreign_groups_give_no_project():
    group = lambda name, **p: SimpleNamespace(name=name, properties=p)  # noqa: E731
    user = SimpleNamespace(groups=[group("project-a", echoes_project=True),
                                   group("project-b", echoes_project=True, archived=True),
                                   group("project-c"), group("colour-101")])
    assert user_projects(user) == ["a"]


def test_expiry_parsing():
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert parse_expiry("2h", now) == now + timedelta(hours=2)
    assert parse_expiry(90, now) == now + timedelta(seconds=90)
    assert parse_expiry("2026-05-02T00:00+00:00", now) == datetime(2026, 5, 2, tzinfo=UTC)
    assert parse_expiry(None, now) is None
    with pytest.raises(ShareError, match="in the past"):
        parse_expiry("2026-04-01T00:00+00:00", now)
    with pytest.raises(ShareError, match="a duration such as"):
        parse_expiry("soon", now)


def test_expiry_store_returns_due_shares(tmp_path):
    store = ExpiryStore(tmp_path / "e.sqlite")
    t = datetime(2026, 5, 1, 12, tzinfo=UTC)
    store.put("alice", "", "carol", "", t)
    store.put("alice", "", "", "project-p1", t + timedelta(hours=1))
    assert store.due(t - timedelta(seconds=1)) == []
    assert store.due(t) == [("alice", "", "carol", "")]
    assert store.delete("alice", "", "carol", "") == 1
    assert [e["group"] for e in store.of("alice")] == ["project-p1"]
    assert oct((tmp_path / "e.sqlite").stat().st_mode & 0o777) == "0o600"


def test_read_only_users_may_only_read(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.setenv("JUPYTERHUB_SERVER_NAME", "")
    marker = "custom:echoes-lab:read-only!server=alice/"
    carol = {"kind": "user", "name": "carol", "scopes": ["access:servers!server=alice/", marker]}
    assert is_read_only(carol)
    bob = {"kind": "user", "name": "bob", "scopes": ["access:servers!server=alice/"],
           "groups": ["project-p1"]}
    edit = {"user": {"name": "bob"}, "scopes": ["access:servers!server=alice/"]}
    ro_group = {"group": {"name": "project-p1"}, "scopes": ["access:servers!server=alice/", marker]}
    # the shares decide whatever the token says: an editing share wins over a read-only one
    assert not is_read_only(bob, [edit, ro_group])
    assert is_read_only(bob, [ro_group])
    assert not is_read_only(bob, [])  # no share: access by other means (an admin, a trainer)
    assert is_read_only(bob, None)  # the hub could not be asked: refuse rather than allow
    # the owner holds the scope on her own servers (to grant it), and is never read-only
    assert not is_read_only({"kind": "user", "name": "alice",
                             "scopes": ["custom:echoes-lab:read-only!user=alice", marker]})
    req = lambda method, **h: SimpleNamespace(request=SimpleNamespace(method=method, headers=h))  # noqa: E731
    assert not refused(req("GET"))
    assert refused(req("PUT")) and refused(req("POST")) and refused(req("DELETE"))
    assert refused(req("GET", Upgrade="websocket"))


def test_group_shares_reach_tokens_with_the_hub_fix():
    """JupyterHub 6.1.1 leaves group shares out of a token's scopes; hubfix adds them, and
    only as far as the token itself reaches (JupyterHub's own ORM, in memory)."""
    from jupyterhub import orm, roles, scopes

    from echoes_lab.hub.services.projects import hubfix

    db = orm.new_session_factory("sqlite:///:memory:")()
    db.add(orm.OAuthClient(identifier="jupyterhub"))
    for role in roles.get_default_roles():
        roles.create_role(db, role)
    alice, dave, group = orm.User(name="alice"), orm.User(name="dave"), orm.Group(name="project-p1")
    db.add_all([alice, dave, group])
    db.commit()
    for user in (alice, dave):
        roles.grant_role(db, user, "user")
    group.users.append(dave)
    spawner = orm.Spawner(user=alice, name="")
    db.add(spawner)
    db.commit()
    orm.Share.grant(db, spawner, group, scopes=["access:servers!server=alice/"])

    def token(wanted):
        orm.APIToken.new(user=dave, scopes=wanted)
        return db.query(orm.APIToken).order_by(orm.APIToken.id.desc()).first()

    full, narrow = token(["inherit"]), token(["read:users:name!user"])
    on_alice = lambda t: {s for s in scopes.get_scopes_for(t) if "alice" in s}  # noqa: E731
    original = scopes.get_scopes_for
    try:
        hubfix.apply()
        assert on_alice(full) == {"access:servers!server=alice/"}
        assert on_alice(narrow) == set()  # the fix never widens a token
    finally:
        scopes.get_scopes_for = original


def test_the_folder_is_cleared_of_setid_files_without_following_links(settings, tmp_path):
    """What a leaver leaves (issue 26): setuid/setgid bits go from every file in the project,
    also reached through a hard link elsewhere; a link is never followed (its target keeps its
    bits); folders keep setgid (new files' group); archive drops every write bit."""
    import stat

    folder = storage.ensure_folder(settings, "p1")
    (folder / "sub").mkdir()
    os.chmod(folder / "sub", 0o2770)
    shell, setuid = folder / ".gsh", folder / "sub" / "su"
    for f in (shell, setuid):
        f.write_bytes(b"#!/bin/sh\n")
    os.chmod(shell, 0o2755)
    os.chmod(setuid, 0o4755)
    home_link = tmp_path / "home-gsh"
    os.link(shell, home_link)  # the leaver's hard link in their home
    victim = tmp_path / "victim"
    victim.write_bytes(b"x")
    os.chmod(victim, 0o4755)
    (folder / "sub" / "to-victim").symlink_to(victim)
    os.mkfifo(folder / "fifo")  # opened by no one: the walk must not block on it

    done = storage.secure_tree(settings, "p1")
    assert sorted(done.stripped) == [".gsh", "sub/su"]
    mode = lambda p: stat.S_IMODE(os.lstat(p).st_mode)  # noqa: E731
    assert mode(shell) == mode(home_link) == 0o755 and mode(setuid) == 0o755
    assert mode(victim) == 0o4755
    assert mode(folder / "sub") == 0o2770

    done = storage.secure_tree(settings, "p1", read_only=True)
    assert done.stripped == []
    for path in [folder, folder / "sub", shell, setuid]:
        assert not mode(path) & 0o222, path
    assert mode(victim) == 0o4755


def test_a_folder_deeper_than_pythons_recursion_is_cleared_too(settings):
    """A member's folder 1100 levels deep (os.fwalk recurses, and would stop at Python's
    recursion limit, leaving a setgid shell at the bottom) is walked to its end."""
    import stat

    depth = 1100
    folder = storage.ensure_folder(settings, "deep")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    made = os.open("gsh", os.O_WRONLY | os.O_CREAT, 0o755, dir_fd=fd)
    os.fchmod(made, 0o2755)
    os.close(made)
    os.close(fd)
    bottom = folder / ("d/" * depth + "gsh")
    try:
        done = storage.secure_tree(settings, "deep")
        assert done.stripped == ["d/" * depth + "gsh"]
        assert stat.S_IMODE(os.stat(bottom).st_mode) == 0o755
    finally:  # rmtree recurses too: remove it from the bottom up
        os.unlink(bottom)
        for level in range(depth, 0, -1):
            os.rmdir(folder / ("d/" * level))
