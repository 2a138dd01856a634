"""Workshops for trainers: ``echoes-lab workshop create | status | update-materials | announce |
collect | close``.

One command prepares a workshop's seats (hub users in a group named after the workshop), their
sign-in cards, the trainers' access (each seat's lab shared with them through JupyterHub's
sharing API, and a role reaching only that group) and the course materials in every home,
optionally starting every seat's server before the room arrives (``--warm``); at the end the
work is collected, the seats' access ended (schedules, processes, shares, tokens) and every
home archived into the trainer's reach. Files in homes are handled through
:mod:`echoes_lab.hub.services.workshops.homes` (as their owners, never following a user's link).
The hub side (seat passwords, trainers' roles, announcements) is
:mod:`echoes_lab.hub.services.workshops.auth`; the records both sides share are
:mod:`echoes_lab.hub.services.workshops.registry`.
"""

__all__ = ["announce", "close", "collect", "create", "status", "update_materials", "warm"]


def __getattr__(name: str):
    # PEP 562: the hub imports the authenticator and the registry from this package; the verbs
    # (and what they import: the hub client, the homes) load only when a command uses them
    if name in __all__:
        from echoes_lab.hub.services.workshops import manage

        return getattr(manage, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
