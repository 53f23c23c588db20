"""Who may do what: roles (viewer < developer < admin) and tokens scoped to one app."""

from __future__ import annotations

from gun.errors import Forbidden
from gun.model import Principal, Role, role_at_least


def authorize(who: Principal, need: Role, app: str | None = None) -> None:
    """Raise Forbidden unless `who` has at least role `need` (on `app`, when given)."""
    if who.instance is not None:
        raise Forbidden(
            f"token {who.name!r} belongs to an instance's agent and serves only the agent API"
        )
    if who.app is not None and app != who.app:
        target = f"app {app!r}" if app else "resources outside its app"
        raise Forbidden(
            f"token {who.name!r} is scoped to app {who.app!r} and cannot reach {target}"
        )
    if not role_at_least(who.role, need):
        raise Forbidden(f"token {who.name!r} has role {who.role}; this needs role {need}")
