"""One exception tree for gun; the API and the CLI each translate it in exactly one place.

Every message is one sentence naming the bad input and, where it helps, what to do.
"""

from __future__ import annotations


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


class SchemaMismatch(GunError):
    """The database schema does not match this version of gun."""

    id = "schema_mismatch"
    status = 503


class Unavailable(GunError):
    id = "unavailable"
    status = 503


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
        SchemaMismatch,
        Unavailable,
    )
}
