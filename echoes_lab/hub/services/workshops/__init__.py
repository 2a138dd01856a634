"""Workshops for trainers: ``echoes-lab workshop create | status | update-materials | announce |
collect | close``.

One command prepares a workshop's seats (hub users in a group named after the workshop), their
sign-in cards, the trainers' role (scopes reaching only that group) and the course materials in
every home; at the end the work is collected and every home archived into the trainer's reach.
The hub side (seat passwords, trainers' roles, announcements) is
:mod:`echoes_lab.hub.services.workshops.auth`; the records both sides share are
:mod:`echoes_lab.hub.services.workshops.registry`.
"""

from echoes_lab.hub.services.workshops.manage import (
    announce,
    close,
    collect,
    create,
    status,
    update_materials,
    warm,
)

__all__ = ["announce", "close", "collect", "create", "status", "update_materials", "warm"]
