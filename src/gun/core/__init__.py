"""The Platform: every state change is one method that checks access, validates, writes in one
transaction and records an audit event. API handlers and tests call it, never the store."""

from gun.core.platform import Platform

__all__ = ["Platform"]
