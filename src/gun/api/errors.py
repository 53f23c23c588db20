"""The one place where gun's errors become HTTP responses `{"id", "message"}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from gun.errors import GunError, InsufficientStorage, disk_full

log = logging.getLogger("gun.api")

_STATUS_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_params",
}


def error(status: int, id_: str, message: str) -> JSONResponse:
    return JSONResponse({"id": id_, "message": message}, status_code=status)


_UNION_TAGS = {"int", "str", "bool", "float", "list", "dict", "none", "function-after[_text()]"}


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    while len(parts) > 1 and parts[-1] in _UNION_TAGS:
        parts.pop()  # pydantic names the union member it tried: not the user's field
    return ".".join(parts) or "body"


def validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """One sentence for the first problem; a body that is not JSON is a 400."""
    first = exc.errors()[0]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return 400, "request body is not valid JSON"
    loc = tuple(first.get("loc", ()))
    where = loc[0] if loc else "body"
    if kind == "missing" and loc == ("body",):
        return 400, "request body is missing: send a JSON object"
    if kind == "gun":  # a rule of gun's own: its sentence says it all
        return 422, str(first.get("ctx", {}).get("message", "is invalid"))
    field = _field(loc)
    msg = str(first.get("msg", "is invalid")).rstrip(".")
    if kind == "missing":
        return 422, f"{where} field {field!r} is required"
    if kind == "extra_forbidden":
        return 422, f"{where} field {field!r} is not allowed"
    return 422, f"{where} field {field!r} is invalid: {msg[0].lower() + msg[1:]}"


def install(app: FastAPI) -> None:
    @app.exception_handler(GunError)
    async def _gun(_: Request, exc: GunError) -> JSONResponse:
        return error(exc.status, exc.id, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = validation_message(exc)
        return error(status, _STATUS_IDS[status], message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        resp = error(exc.status_code, _STATUS_IDS.get(exc.status_code, "error"), message)
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        full = disk_full(exc, _database(request))
        if full is not None:  # a full disk, wherever meta met it: slug store, uploads, SQLite
            log.error("%s %s: %s", request.method, request.url.path, full)
            return error(InsufficientStorage.status, InsufficientStorage.id, full)
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, "internal_error", "meta hit an internal error; see its log")


def _database(request: Request) -> str | None:
    """The SQLite file meta's store is, if it is one."""
    platform = getattr(request.app.state, "platform", None)
    engine = getattr(getattr(platform, "store", None), "engine", None)
    if engine is None or engine.dialect.name != "sqlite":
        return None
    return str(engine.url.database) if engine.url.database else None
