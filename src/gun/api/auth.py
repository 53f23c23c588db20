"""Bearer tokens (and Basic auth with the token as password, as Heroku clients send)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request

from gun.core import Platform
from gun.core.access import refuse_drain
from gun.errors import NotFound
from gun.model import Principal


def the_platform(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


async def platform(request: Request) -> Platform:
    return the_platform(request)


def token_of(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


PRINCIPAL = "principal"  # where the gate (api/gate.py) leaves who it let in, in request.state


def caller(request: Request) -> Principal:
    """Who calls: the gate (api/gate.py) authenticated them before the body was read. Without
    the gate, here, on the event loop: a cached token costs no query, an uncached one a single
    one."""
    who: Principal | None = getattr(request.state, PRINCIPAL, None)
    if who is None:
        who = the_platform(request).tokens.authenticate(
            token_of(request.headers.get("authorization"))
        )
    return who


async def principal(request: Request) -> Principal:
    """Every route's caller but the drain's one route: a drain token is refused here, so a
    route added later cannot forget to."""
    who = caller(request)
    refuse_drain(who)
    # A path part with a NUL byte names nothing, and PostgreSQL text cannot even hold one
    # (looking it up would be a 500).
    for name, value in request.path_params.items():
        if "\x00" in value:
            raise NotFound(f"{name} {value!r} does not exist")
    return who


async def drain_principal(request: Request) -> Principal:
    """The caller of the drain's route, which judges the token it asks about itself (and
    answers the same for every token no app has, a NUL byte in it or not)."""
    return caller(request)


Who = Annotated[Principal, Depends(principal)]
DrainWho = Annotated[Principal, Depends(drain_principal)]  # only for the drain's route
Gun = Annotated[Platform, Depends(platform)]
