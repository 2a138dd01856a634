"""``python -m echoes_lab.hub.singleuser``: a stopped server exits, whatever threads are idle."""

from __future__ import annotations

import subprocess
import sys
import time

STUCK = """
import pathlib, queue, sys, threading, time
from echoes_lab.hub.singleuser import exit_when_stopped
threading.Thread(target=queue.Queue().get).start()  # an idle non-daemon worker, as AnyIO's
# a thread finishing its work (a file save) within the grace period
threading.Thread(target=lambda: (time.sleep(0.5), pathlib.Path(sys.argv[1]).write_text("saved"))
                 ).start()
exit_when_stopped(3)
"""


def test_a_stopped_server_exits_though_a_worker_thread_waits_forever(tmp_path):
    saved = tmp_path / "saved.txt"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", STUCK, str(saved)], timeout=30)
    took = time.monotonic() - started
    assert done.returncode == 3
    assert saved.read_text() == "saved"  # the finishing thread was waited for
    assert took < 10, f"{took:.1f} s: it waited for the idle thread"
