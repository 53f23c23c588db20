"""The agent protocol (gun.protocol) at meta's door.

Every agent route depends on `speaks`: the protocol an instance's agent names in its
Gun-Protocol header is heard before anything else of the request (after its token), and an
agent of another protocol is refused with one sentence (UnsupportedProtocol, 400). Bodies are
read by gun.protocol's readers, not by pydantic, and are documented in the OpenAPI schema by
what pydantic makes of the same dataclasses (`body`, `answer`). Every refusal, a version or a
malformed message, is logged with the instance's id: meta's log says which agent speaks what.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Body, Depends, Header
from pydantic import TypeAdapter

from gun import protocol
from gun.api.auth import Who
from gun.core.reports import check_agent
from gun.errors import ProtocolError
from gun.model import Principal

log = logging.getLogger("gun.meta")
T = TypeVar("T")


@contextmanager
def logged(instance_id: str) -> Iterator[None]:
    """Log a ProtocolError raised inside with the instance's id, and let it go on."""
    try:
        yield
    except ProtocolError as e:
        log.warning("instance %s: %s", instance_id, e.message)
        raise


async def speaks(
    instance_id: str,
    who: Who,
    gun_protocol: Annotated[
        str | None,
        Header(
            alias=protocol.HEADER,
            description=f"the agent protocol the agent speaks: {protocol.VERSION}",
        ),
    ] = None,
) -> None:
    """Refuse an agent whose protocol meta does not speak (a missing header included). Only
    the instance's own agent is heard: anyone else's call is refused by its route, as before
    (and is not logged as an agent's)."""
    if who.instance != instance_id:
        return
    with logged(instance_id):
        protocol.read_header(gun_protocol)


SPEAKS = [Depends(speaks)]  # every agent route's: the protocol heard first


def read(reader: Callable[[object], T], data: object, who: Principal, instance_id: str) -> T:
    """A body of the instance's agent, read by one of gun.protocol's readers; a refusal is
    logged. Anyone else is refused (Forbidden) before the body is looked at."""
    check_agent(who, instance_id)
    with logged(instance_id):
        return reader(data)


def schema(cls: type[Any]) -> dict[str, Any]:
    """The JSON schema of a wire type, self-contained (its parts inlined, not referenced)."""
    made = TypeAdapter(cls).json_schema()
    parts = made.pop("$defs", {})

    def inline(node: object) -> object:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(parts[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    out = inline(made)
    assert isinstance(out, dict)
    out["description"] = (
        f"{cls.__name__} of the agent protocol, version {protocol.VERSION} (gun.protocol "
        "says how it is read: every field required, unknown fields ignored)"
    )
    return out


def body(cls: type[Any]) -> Any:
    """The body parameter of a route whose body is a `cls` (read by the route itself)."""
    return Body(json_schema_extra=schema(cls))


def answer(cls: type[Any]) -> dict[int | str, dict[str, Any]]:
    """`responses` of a route that answers a `cls`."""
    return {200: {"content": {"application/json": {"schema": schema(cls)}}}}
