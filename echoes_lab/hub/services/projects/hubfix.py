"""Group shares for tokens: a fix applied to the hub process for JupyterHub 6.1.

JupyterHub resolves a *token's* permissions (API tokens, and the OAuth tokens with which
browsers reach a server) in ``jupyterhub.scopes.get_scopes_for`` from its owner's roles and
``owner.shared_with_me`` — the shares made with the user by name — but not the shares made
with the user's groups (``orm.User.all_shared_with_me`` has both; the branch for users, not
tokens, does add group shares). So a server shared with a group is refused to every member.
:func:`apply` wraps ``get_scopes_for`` so a token also gets the scopes of its owner's group
shares, intersected with what the token may do — exactly what the user branch does. When
JupyterHub includes them itself the union adds nothing.
"""

from __future__ import annotations

import functools


def apply() -> None:
    from jupyterhub import orm, scopes

    original = scopes.get_scopes_for
    if getattr(original, "_echoes_group_shares", False):
        return

    @functools.wraps(original)
    def get_scopes_for(orm_object):
        result = original(orm_object)
        if not isinstance(orm_object, orm.APIToken) or orm_object.user is None:
            return result
        user = orm_object.user
        shared = set()
        for group in user.groups:
            for share in group.shared_with_me:
                shared |= scopes.expand_share_scopes(share)
        if not shared:
            return result
        if "inherit" in orm_object.scopes:
            return frozenset(set(result) | shared)
        token = set(scopes.expand_scopes(orm_object.scopes, owner=user,
                                         oauth_client=orm_object.oauth_client))
        if orm_object.client_id != "jupyterhub":
            token |= scopes.access_scopes(orm_object.oauth_client)
        import sqlalchemy as sa

        extra = scopes._intersect_expanded_scopes(token, shared, db=sa.inspect(orm_object).session)
        return frozenset(set(result) | set(extra))

    get_scopes_for._echoes_group_shares = True
    scopes.get_scopes_for = get_scopes_for
