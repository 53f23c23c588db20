"""The Platform: gun's control plane as services, one per vocabulary word (`platform.apps`,
`platform.config`, `platform.formation`, ...). Every state change is one method of one
service that checks access, validates, writes in one transaction and records an audit event.
API handlers and tests call the services, never the store."""

from gun.core.platform import Platform

__all__ = ["Platform"]
