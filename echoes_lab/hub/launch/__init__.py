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

from echoes_lab.hub.launch.data import install_demo_data, install_real_data, read_only
from echoes_lab.hub.launch.kernelspec import KERNEL_TEMPLATE, install_kernel, install_lab_settings
from echoes_lab.hub.launch.messages import announce, login_message, say
from echoes_lab.hub.launch.ports import check_ports, profile_ports
from echoes_lab.hub.launch.processes import (
    STOP_GRACE,
    StateProcesses,
    clear_stale,
    clear_stale_after_exit,
    stop_processes,
    tell_services_to_stop,
)
from echoes_lab.hub.launch.start import DEFAULT_SETTINGS, preflight, prepare, run_hub
from echoes_lab.hub.launch.supervision import (
    HUB_CONFIG,
    HUB_STOP_DEADLINE,
    hub_command,
    open_log,
    start_hub,
    supervise,
)

__all__ = ["DEFAULT_SETTINGS", "HUB_CONFIG", "HUB_STOP_DEADLINE", "KERNEL_TEMPLATE", "STOP_GRACE",
           "StateProcesses", "announce", "check_ports", "clear_stale",
           "clear_stale_after_exit", "hub_command", "install_demo_data", "install_kernel",
           "install_lab_settings", "install_real_data", "login_message", "open_log",
           "preflight", "prepare", "profile_ports", "read_only", "run_hub", "say", "start_hub",
           "stop_processes", "supervise", "tell_services_to_stop"]
