"""The cgroup v2 path of ``echoes_lab.hub.limits``, end to end, in a private mount namespace.

The test mounts a cgroup2 hierarchy of its own (``unshare -m``: the mount is seen by nobody
else and goes with the namespace), lets :func:`prepare_limits` make a user's group there with
``memory.max`` and ``cpu.max``, and starts a real process in it through ``Limits.enter`` (as the
spawner's ``preexec_fn`` does): past its memory it is killed by the kernel's OOM killer, which
``memory.events`` counts. References: Linux kernel documentation, "Control Group v2" (mounting,
``cgroup.controllers``, ``memory.max``, ``memory.events``, ``cpu.max``).

Where the host keeps cgroup v1 hierarchies (the hybrid layout), the memory and cpu controllers
belong to them and a cgroup2 mount cannot offer them (a controller is in one hierarchy at a
time): the test says so and skips, an allowed skip (``tests/README.md``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

SKIP = 77  # the child's exit status for "cannot run here", its reason on stdout

CHILD = textwrap.dedent('''
    import json, os, subprocess, sys, tempfile
    from pathlib import Path
    from echoes_lab.hub.limits import prepare_limits

    root = Path(tempfile.mkdtemp(prefix="echoes-cgroup2-"))
    done = subprocess.run(["mount", "-t", "cgroup2", "none", str(root)], capture_output=True,
                          text=True)
    if done.returncode:
        print(f"cannot mount cgroup2 here: {done.stderr.strip()}")
        sys.exit(77)
    try:
        own = next(line.split(":", 2)[2] for line in
                   Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
        available = (root / own.lstrip("/") / "cgroup.controllers").read_text().split()
        if not {"memory", "cpu"} <= set(available):
            print(f"no cgroup v2 memory and cpu controllers here (cgroup.controllers: "
                  f"{' '.join(available) or 'none'}): the host's cgroup v1 hierarchies hold them")
            sys.exit(77)
        limits = prepare_limits("echoes-cg2-test", 64 * 2**20, 0.5, root=root)
        group = Path(limits.procs_files[0]).parent
        hog = "b = bytearray(256 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('survived')"
        run = subprocess.run([sys.executable, "-c", hog], preexec_fn=limits.enter,
                             capture_output=True, text=True, timeout=120)
        events = dict(line.split() for line in (group / "memory.events").read_text().splitlines())
        print(json.dumps({
            "how": limits.how, "memory.max": (group / "memory.max").read_text().strip(),
            "cpu.max": (group / "cpu.max").read_text().strip(),
            "returncode": run.returncode, "stdout": run.stdout, "oom_kill": int(events["oom_kill"]),
            "group": str(group.relative_to(root)),
        }))
        group.rmdir()
        group.parent.rmdir()
    finally:
        subprocess.run(["umount", str(root)])
        root.rmdir()
''')


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups are written by root")
def test_cgroup_v2_limits_a_users_server():
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is missing")
    done = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c",
                           CHILD], capture_output=True, text=True, timeout=180)
    if done.returncode == SKIP:
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["how"] == "cgroup v2"
    assert seen["group"].endswith("echoes-lab/echoes-cg2-test")
    assert seen["memory.max"] == str(64 * 2**20)
    assert seen["cpu.max"] == "50000 100000"  # half of each 100 ms period
    # 256 MiB touched under a 64 MiB limit: the kernel's OOM killer ends it (SIGKILL)
    assert seen["returncode"] == -9 and "survived" not in seen["stdout"], seen
    assert seen["oom_kill"] >= 1
