"""Every fixed port of a profile, checked before the start; a port in use is reported with the
process that holds it."""

from __future__ import annotations

import contextlib
import errno
import socket

import psutil
from pydantic import BaseModel

from echoes_lab.errors import SetupError
from echoes_lab.hub.launch.processes import _command
from echoes_lab.hub.settings import Settings


def profile_ports(settings: Settings) -> list[tuple[str, str, int]]:
    """Every fixed port of the profile: ``(address, settings key, port)``.

    The hub's three, then every ``port`` / ``*_port`` key of the other sections that is not
    0 (0 means "any free port, chosen at each start"), so a service added later is checked
    without a change here.
    """
    hub = settings.hub
    ports = [(hub.ip, "hub.port", hub.port),
             ("127.0.0.1", "hub.proxy_api_port", hub.proxy_api_port),
             ("127.0.0.1", "hub.hub_port", hub.hub_port)]
    for section in type(settings).model_fields:
        value = getattr(settings, section)
        if section == "hub" or not isinstance(value, BaseModel):
            continue
        if hasattr(value, "enabled") and not value.enabled:
            continue
        for key in type(value).model_fields:
            port = getattr(value, key)
            if (key == "port" or key.endswith("_port")) and isinstance(port, int) and port:
                ports.append(("127.0.0.1", f"{section}.{key}", port))
    return ports


def _listening_pids() -> dict[int, set[int]]:
    """``{port: {pid, ...}}`` of every listening TCP socket this account can see."""
    found: dict[int, set[int]] = {}
    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.Error:
        return found
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.pid and conn.laddr:
            found.setdefault(conn.laddr.port, set()).add(conn.pid)
    return found


def _processes(pids: set[int]) -> list[psutil.Process]:
    procs = []
    for pid in sorted(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    return procs


def _port_in_use(ip: str, port: int) -> OSError | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as exc:
            return exc
    return None


def check_ports(settings: Settings) -> None:
    """Raise :class:`SetupError` naming the process that holds a port of the profile."""
    listening = _listening_pids()
    for ip, key, port in profile_ports(settings):
        holders = _processes(listening.get(port, set()))
        addresses = [ip] if ip == "127.0.0.1" else [ip, "127.0.0.1"]
        problem = next((e for a in addresses if (e := _port_in_use(a, port))), None)
        if not holders and problem is None:
            continue
        if problem is not None and problem.errno != errno.EADDRINUSE:
            msg = f"cannot listen on {ip}:{port} ('{key}': {problem.strerror})"
            raise SetupError(msg)
        who = ", ".join(f"pid {p.pid} ({_command(p)})" for p in holders) or (
            "a process this account cannot see")
        msg = (f"port {port} ('{key}') is already in use by {who}, which is not this hub's: "
               f"stop it, or set '{key}' in {settings.source}")
        raise SetupError(msg)
