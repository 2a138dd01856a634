"""The local spawner's account names (never one account for two users) and per-user limits."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from echoes_lab.hub import spawner
from echoes_lab.hub.accounts import _legacy_username, system_username
from echoes_lab.hub.limits import prepare_limits

LINUX_NAME = re.compile(r"^[a-z_][a-z0-9_-]*$")


def test_names_that_collided_get_two_accounts():
    # issue 13: both were jupyter-jeandupont-c6314bc, and one read the other's files
    assert _legacy_username("jean.dupont") == _legacy_username("jeandupont-c6314bc")
    assert system_username("jean.dupont") != system_username("jeandupont-c6314bc")


@pytest.mark.parametrize("name", ["alice", "wk-01", "x_y", "tina", "a" * 24])
def test_plain_names_keep_their_accounts(name):
    assert system_username(name) == f"jupyter-{name}" == _legacy_username(name)


def test_no_two_names_meet():
    names = ["jean.dupont", "Jean.Dupont", "jean-dupont", "jeandupont", "jean_dupont",
             "jeandupont-c6314bc", "jeandupont-c6314bcbcd4a3971", "jeandup-c6314bcbcd4a3971",
             "...", "..", "é", "e", "a" * 24, "a" * 25, "a" * 40, "a" * 41, "Ab", "ab",
             "x-0123456", "x-0123456789abcdef", "x-0123456789abcdeg", "1abc", "-"]
    # names ending like a hashed account name, made to look like another user's account
    names += [system_username(n)[len("jupyter-"):] for n in list(names)]
    accounts = {n: system_username(n) for n in names}
    assert len(set(accounts.values())) == len(set(names))
    for account in accounts.values():
        assert len(account) <= 32 and LINUX_NAME.match(account), account


def test_an_account_of_the_earlier_mapping_stays_its_users(monkeypatch):
    """jean.dupont's account from before (7 hex digits) is still theirs; the other colliding
    user, whose home is not that account's, gets a new one."""
    legacy = _legacy_username("jean.dupont")
    entry = SimpleNamespace(pw_dir="/srv/echoes/.state/homes/jean.dupont/", pw_uid=991)

    def getpwnam(name):
        if name == legacy:
            return entry
        raise KeyError(name)

    monkeypatch.setattr("pwd.getpwnam", getpwnam)
    assert system_username("jean.dupont") == legacy
    assert system_username("jeandupont-c6314bc") != legacy


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups are written by root")
def test_memory_limit_stops_a_process_past_it():
    account = f"jupyter-limtest-{os.getpid()}"
    limits = prepare_limits(account, 150 * 2**20, None)
    if limits.how == "rlimit":
        pytest.skip("no writable cgroups on this machine: RLIMIT_DATA only")
    try:
        hog = ("b = bytearray(400 * 2**20)\n"
               "b[::4096] = b'x' * len(b[::4096])\n"  # touch every page: resident, not reserved
               "print('allocated')")
        done = subprocess.run([sys.executable, "-c", hog], preexec_fn=limits.enter,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "allocated" not in done.stdout
        small = subprocess.run([sys.executable, "-c", "b = bytearray(20 * 2**20); print('ok')"],
                               preexec_fn=limits.enter, capture_output=True, text=True)
        assert small.stdout.strip() == "ok"
    finally:
        _remove_groups(limits)


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups are written by root")
def test_cpu_limit_caps_a_busy_process():
    limits = prepare_limits(f"jupyter-cputest-{os.getpid()}", None, 0.25)
    if limits.how == "none":
        pytest.skip("no writable cgroups on this machine: no CPU limit")
    try:
        busy = "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass\n"
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", busy], preexec_fn=limits.enter)
        usage = os.wait4(proc.pid, 0)[2]
        proc.returncode = 0
        wall = time.monotonic() - started
        cpu = usage.ru_utime + usage.ru_stime
        # a quarter of one CPU, measured over the process's life (start-up included)
        assert cpu / wall < 0.4, (cpu, wall)
    finally:
        _remove_groups(limits)


def test_no_writable_cgroups_falls_back_to_rlimit(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    limits = prepare_limits("jupyter-x", 2**30, 1.0)
    assert limits.how == "rlimit" and limits.rlimit_data == 2**30 and not limits.procs_files
    assert prepare_limits("jupyter-x", None, None).active is False


def _remove_groups(limits) -> None:
    for procs in limits.procs_files:
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(procs))



@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another uid")
def test_examples_are_copied_as_the_user_not_as_root():
    """Root never writes into a user's home itself (issue 13: root followed users' links).

    The home here is root's and not writable by ``nobody``: a copy made as root would succeed,
    the copy made as the user cannot, which shows who made it; in the user's own home it works
    and the files are the user's."""
    import asyncio
    import logging
    import pwd
    import shutil
    import tempfile
    from pathlib import Path

    nobody = pwd.getpwnam("nobody")
    tmp_path = Path(tempfile.mkdtemp(prefix="echoes-examples-"))  # reachable by nobody
    examples = tmp_path / "notebooks"
    examples.mkdir()
    (examples / "a.ipynb").write_text("{}")
    tmp_path.chmod(0o755)
    fake = SimpleNamespace(examples_dir=str(examples), home_dir=str(tmp_path / "root-home"),
                           user=SimpleNamespace(name="nobody"), log=logging.getLogger("t"))
    os.mkdir(fake.home_dir, 0o755)
    asyncio.run(spawner.EchoesSpawner._copy_examples(fake, nobody.pw_uid, nobody.pw_gid))
    assert not os.path.exists(os.path.join(fake.home_dir, "examples"))
    os.chown(fake.home_dir, nobody.pw_uid, nobody.pw_gid)
    asyncio.run(spawner.EchoesSpawner._copy_examples(fake, nobody.pw_uid, nobody.pw_gid))
    copied = os.path.join(fake.home_dir, "examples", "a.ipynb")
    assert os.stat(copied).st_uid == nobody.pw_uid
    shutil.rmtree(tmp_path)
