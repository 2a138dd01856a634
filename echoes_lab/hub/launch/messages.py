"""What the launcher tells the operator: one line on standard output, and the first start's
passwords on a terminal only, never in a log."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the launcher's supervising process imports say() and no settings machinery
    from echoes_lab.hub.secrets import Secrets
    from echoes_lab.hub.settings import Settings


def say(line: str) -> None:
    """One line for the operator on standard output (``echoes-lab hub`` is a command line)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def login_message(settings: Settings, secrets: Secrets, first_run: bool) -> str:
    """The first-start banner with both passwords (the terminal only), or one plain line."""
    url = f"http://{settings.hub.ip}:{settings.hub.port}"
    store = settings.state_dir / "secrets.json"
    if not first_run:
        return f"ECHOES Lab: starting at {url} (credentials are in {store}, mode 0600)"
    admins = ", ".join(settings.auth.admins) or "(none)"
    return "\n".join([
        f"ECHOES Lab: first start. Open {url} and sign in:",
        f"  admin ({admins}): password {secrets.admin_password}",
        f"  everyone else: any user name, password {secrets.user_password}",
        f"These are shown this once, on this terminal; they are kept in {store} (mode 0600).",
    ])


def _terminal():
    """A stream that reaches the person who ran the command, never a file: stderr when it is
    a terminal, else the controlling terminal; ``None`` when there is none (a service manager,
    a pipe into a log)."""
    if sys.stderr is not None and sys.stderr.isatty():
        return sys.stderr
    try:
        return open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 - closed by announce
    except OSError:
        return None


def announce(settings: Settings, secrets: Secrets, first_run: bool) -> None:
    """Tell the operator where the hub is; the passwords go to a terminal, never to a log."""
    url = f"http://{settings.hub.ip}:{settings.hub.port}"
    store = settings.state_dir / "secrets.json"
    say(f"ECHOES Lab: starting at {url} (credentials are in {store}, mode 0600)")
    if not first_run:
        return
    tty = _terminal()
    if tty is None:
        say("ECHOES Lab: first start, and no terminal to show the passwords on: read them in "
            f"{store} (admin_password, user_password)")
        return
    try:
        tty.write(login_message(settings, secrets, first_run) + "\n")
        tty.flush()
    finally:
        if tty is not sys.stderr:
            tty.close()
