"""``echoes-lab hub``: check the machine, prepare the state directory, start JupyterHub.

Every problem found before the start (a bad settings file, no Node.js, no proxy, a port in
use) is one clear line with the fix, raised as an :mod:`echoes_lab.errors` exception.

The launcher owns the hub's life cycle: before the start it stops what an earlier hub of the
same state directory left running (after a ``kill -9``) and checks every fixed port of the
profile; it stays JupyterHub's parent, so SIGTERM/SIGINT/SIGHUP end the hub, its proxy and its
services in bounded time, and the hub gets SIGTERM if the launcher itself is killed. Users'
servers are never the launcher's to stop.

The modules: :mod:`~echoes_lab.hub.launch.start` (the command: pre-flight, preparation,
start), :mod:`~.kernelspec` (the kernel spec and the lab's settings), :mod:`~.processes`
(finding and stopping a state directory's processes), :mod:`~.ports` (port checks),
:mod:`~.data` (the shared datasets folder), :mod:`~.supervision` (the hub as the launcher's
child, its bounded stop), :mod:`~.messages` (what the operator is told).
"""

from __future__ import annotations

import importlib

# loaded on first use: the launcher's supervising process (``python -m
# echoes_lab.hub.launch.supervision``, resident for the hub's whole life) imports this package,
# and must not carry the settings, data and kernel-spec machinery (issue 36)
_WHERE = {
    "data": ("install_demo_data", "install_real_data", "read_only"),
    "kernelspec": ("KERNEL_TEMPLATE", "install_kernel", "install_lab_settings"),
    "messages": ("announce", "login_message", "say"),
    "ports": ("check_ports", "profile_ports"),
    "processes": ("STOP_GRACE", "StateProcesses", "clear_stale", "clear_stale_after_exit",
                  "stop_processes", "tell_services_to_stop"),
    "start": ("DEFAULT_SETTINGS", "preflight", "prepare", "run_hub"),
    "supervision": ("HUB_CONFIG", "HUB_STOP_DEADLINE", "hub_command", "open_log", "start_hub",
                    "supervise"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
