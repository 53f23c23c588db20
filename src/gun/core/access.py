"""Who may do what: roles (viewer < developer < admin), tokens scoped to one app, and what
each role may read.

The platform's router app (`gun-router`: its instances run the routers, which read every app's
drains and certificates' keys) is an admin's only, whatever the door.

Agent (instance) tokens serve only the agent API, drain tokens only the ingest-token lookup:
every other door refuses them. Viewers see config var names, never their values (Heroku's
read-only role): every door that shows config gives them the names with null values.
"""

from __future__ import annotations

from collections.abc import Mapping

from gun.errors import Forbidden
from gun.model import ROUTER_APP, Principal, Role, role_at_least


def refuse_drain(who: Principal) -> None:
    if who.kind == "drain":
        raise Forbidden(
            f"token {who.name!r} is a drain token: it may only look up ingest tokens "
            "(GET /v1/drain/ingest-tokens/TOKEN)"
        )


def authorize(who: Principal, need: Role, app: str | None = None) -> None:
    """Raise Forbidden unless `who` has at least role `need` (on `app`, when given)."""
    refuse_drain(who)
    if who.instance is not None or who.kind == "instance":
        raise Forbidden(
            f"token {who.name!r} belongs to an instance's agent and serves only the agent API"
        )
    if who.app is not None and app != who.app:
        target = f"app {app!r}" if app else "resources outside its app"
        raise Forbidden(
            f"token {who.name!r} is scoped to app {who.app!r} and cannot reach {target}"
        )
    if app == ROUTER_APP and need != "admin":  # its instances read every app's keys
        need = "admin"
        if who.app is not None:
            raise Forbidden(
                f"token {who.name!r} is scoped to an app: {ROUTER_APP} is the platform's"
            )
    if not role_at_least(who.role, need):
        raise Forbidden(f"token {who.name!r} has role {who.role}; this needs role {need}")


def reads_secrets(who: Principal) -> bool:
    """Config var values (and drain URLs' credentials) are for developers and admins."""
    return role_at_least(who.role, "developer")


def visible_config(who: Principal, config: Mapping[str, str]) -> dict[str, str | None]:
    """The config as `who` may see it: every name; the values only if it reads secrets."""
    return dict(config) if reads_secrets(who) else dict.fromkeys(config)
