"""Start a user's JupyterLab server: ``jupyterhub-singleuser`` minus two needless waits.

* ``rfc3987_syntax`` compiles a Lark grammar when imported (about 1 s of CPU per server start,
  measured with ``python -X importtime``). jsonschema imports it only to check the ``iri``
  string format, which none of Jupyter's event schemas use (they use ``date-time`` and ``uri``).
  Blocking that import makes jsonschema leave out the one unused format checker; nothing a user
  sees changes, and a burst of 30 workshop logins saves 30 CPU-seconds.
* Once the server has stopped (kernels shut down, collaboration rooms saved), an AnyIO worker
  thread left idle by jupyter-collaboration can keep the process alive: it is not a daemon
  thread, and AnyIO stops it only when its event loop's root task ends, which stopping tornado's
  loop never does. The interpreter then waits for it until the hub's SIGKILL, 30 s after its
  SIGTERM (seen on a busy machine: "server took 28.9 seconds to stop"). The server exits
  instead once such threads have had a moment to finish.
"""

import sys

#: seconds the stopped server gives its remaining (worker) threads before it exits
THREADS_GRACE = 2.0


def exit_when_stopped(code: int | None) -> None:
    """Exit with ``code``, not waiting for threads still running past :data:`THREADS_GRACE`."""
    import logging
    import os
    import threading
    import time

    deadline = time.monotonic() + THREADS_GRACE
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def lab_in_user_language() -> None:
    """JupyterLab in the language the hub saw when it started this server (``ECHOES_LANG``),
    unless the user chose one (echoes_lab.hub.i18n.set_lab_language; this process runs as the
    user, so the setting is written as the user, in their own settings folder)."""
    import logging
    import os

    from echoes_lab.hub.i18n import set_lab_language

    try:
        set_lab_language(os.environ.get("ECHOES_LANG"))
    except OSError as e:  # a read-only or full home: the lab starts, in English
        logging.getLogger("echoes_lab").warning("JupyterLab's language not set: %s", e)


if __name__ == "__main__":
    sys.modules.setdefault("rfc3987_syntax", None)  # import now raises ImportError, as if absent
    lab_in_user_language()
    from jupyterhub.singleuser import main

    exit_when_stopped(main())
