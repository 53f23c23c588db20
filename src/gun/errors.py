"""One exception tree for gun; the API and the CLI each translate it in exactly one place.

Every message is one sentence naming the bad input and, where it helps, what to do.
"""

from __future__ import annotations

import errno


class GunError(Exception):
    """Base of every error gun raises on purpose."""

    id = "internal_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GunError):
    id = "bad_request"
    status = 400


class Unauthorized(GunError):
    id = "unauthorized"
    status = 401


class Forbidden(GunError):
    id = "forbidden"
    status = 403


class NotFound(GunError):
    id = "not_found"
    status = 404


class Conflict(GunError):
    id = "conflict"
    status = 409


class PayloadTooLarge(GunError):
    id = "payload_too_large"
    status = 413


class InvalidParams(GunError):
    """A well-formed request whose values are not acceptable (bad name, bad formation, ...)."""

    id = "invalid_params"
    status = 422


class ProtocolError(GunError):
    """A message of the agent protocol (gun.protocol) that does not read: the sentence names the
    field by its path. (400: the message is malformed, not a well-formed request refused.)"""

    id = "protocol_error"
    status = 400


class UnsupportedProtocol(ProtocolError):
    """An agent, or a slice, of a protocol version the reader does not speak. (400, not 409:
    a conflict is with the state of what is asked for, and passes when that changes; this
    request never works, whatever meta holds, until the agent speaks meta's protocol.)"""

    id = "unsupported_protocol"
    status = 400


class SchemaMismatch(GunError):
    """The database schema does not match this version of gun."""

    id = "schema_mismatch"
    status = 503


class Unavailable(GunError):
    id = "unavailable"
    status = 503


class InsufficientStorage(GunError):
    """A disk meta writes to is full (WebDAV's 507: the server cannot store what the request
    needs; unlike 503, nothing is wrong with the request or with meta being up)."""

    id = "insufficient_storage"
    status = 507


class UsageError(GunError):
    """The command line itself was wrong (CLI exit code 2); never sent over HTTP."""

    id = "usage"
    status = 400


BY_ID: dict[str, type[GunError]] = {
    cls.id: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        InvalidParams,
        ProtocolError,
        UnsupportedProtocol,
        SchemaMismatch,
        Unavailable,
        InsufficientStorage,
    )
}

SQLITE_FULL = 13  # sqlite3's "database or disk is full"
PG_DISK_FULL = "53100"  # PostgreSQL's disk_full SQLSTATE


def disk_full(e: BaseException, database: str | None = None) -> str | None:
    """The sentence for an error that a full disk caused, or None if it is not one: an OSError
    ENOSPC or EDQUOT (naming the file, when known), SQLite's SQLITE_FULL (naming `database`,
    its file), PostgreSQL's disk_full; SQLAlchemy's wrappers are looked through."""
    inner = getattr(e, "orig", None) or e
    if isinstance(inner, OSError) and inner.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {inner.filename}" if inner.filename is not None else ""
        return f"no space left on device{where}"
    if getattr(inner, "sqlite_errorcode", None) == SQLITE_FULL:
        where = f" writing the database {database}" if database else " writing the database"
        return f"no space left on device{where}"
    if getattr(inner, "sqlstate", None) == PG_DISK_FULL:
        return "no space left on the PostgreSQL server's disk"
    return None
