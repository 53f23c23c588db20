"""Request bodies and response shapes of the native API (JSON)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic_core import PydanticCustomError

from gun.build.gitrepo import check_repo_url
from gun.core.apps import Status
from gun.errors import InvalidParams
from gun.model import App, Layer, Principal, Release, Run, Token, check_app_name
from gun.rendezvous import Address

# A field with a rule of gun's own has no pydantic max_length: its rule bounds its length, and
# the refusal is the rule's sentence, not pydantic's. Bodies are capped at 1 MiB before this.


def _utf8(value: str) -> str:
    try:
        value.encode()
    except UnicodeEncodeError:
        raise PydanticCustomError("utf8", "must be valid UTF-8 text") from None
    return value


def _text(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("nul", "must not contain a NUL character")
    return _utf8(value)


def rule(check: Callable[[str], object]) -> Callable[[str], str]:
    """A pydantic validator that refuses what `check` refuses, with `check`'s own sentence
    (the API's error mapper passes a `gun` error's message on as it is)."""

    def validate(value: str) -> str:
        try:
            check(value)
        except InvalidParams as e:
            raise PydanticCustomError("gun", "{message}", {"message": e.message}) from None
        return value

    return validate


# Text that reaches the store unchecked: PostgreSQL text cannot hold NUL; JSON strings may
# carry lone surrogates, which no store can encode.
Text = Annotated[StrictStr, AfterValidator(_text)]
AppName = Annotated[StrictStr, AfterValidator(rule(check_app_name))]
# Config var keys are checked by the Platform (rule and length); values are sealed, but must
# encode (and the Platform refuses NUL, naming the key).
ConfigChanges = dict[str, Annotated[str, AfterValidator(_utf8)] | None]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppCreate(Body):
    name: AppName
    repo: Annotated[Text, AfterValidator(rule(check_repo_url))] | None = None


class TokenCreate(Body):
    name: Text  # the Platform's rule: 1 to 100 characters
    role: StrictStr = "developer"
    app: AppName | None = None
    expires: Text | None = Field(
        default=None, max_length=100, description="a duration (30d, 12h, 90m) or an ISO date"
    )


class FormationUpdate(Body):
    type: StrictStr  # the Platform's rule: up to 64 letters, digits, - and _
    quantity: StrictInt | StrictStr = Field(
        description="a whole number, or a string: '2', '+1' or '-1'"
    )


class FormationPatch(Body):
    updates: list[FormationUpdate] = Field(min_length=1, max_length=100)


class Rollback(Body):
    version: StrictInt | StrictStr | None = Field(
        default=None, description="the release to roll back to (3 or 'v3'); default: previous"
    )


class LayerPut(Body):
    types: list[StrictStr] | None = Field(default=None, min_length=1, max_length=100)
    setup: StrictStr | None = None  # "": none
    teardown: StrictStr | None = None
    provider: StrictStr | None = Field(default=None, max_length=100)
    # ec2's settings as typed (layersettings.py); "" unsets one
    settings: dict[StrictStr, StrictStr] | None = Field(default=None, max_length=10)


def app_json(app: App) -> dict[str, Any]:
    return {
        "name": app.name,
        "release": app.release,
        "repo": app.repo,
        "created_at": app.created_at.isoformat(),
    }


def release_json(r: Release, *, config: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """A release; with `config` (as the caller may see it), its process types and config."""
    out: dict[str, Any] = {
        "version": r.version,
        "description": r.description,
        "status": r.status,
        "current": r.current,
        "created_at": r.created_at.isoformat(),
        "commit": r.commit,
        "actor": r.actor,
    }
    if config is not None:
        out["process_types"] = r.process_types
        out["slug"] = r.slug_id  # what it runs: with `commit`, two releases of one build match
        out["config"] = dict(config)
    return out


def status_json(s: Status) -> dict[str, Any]:
    return {
        "app": s.app,
        "release": s.release,
        "formation": s.formation,
        "processes": s.processes,
        "instances": s.instances,
        "last_deploy": s.last_deploy,
    }


def layer_json(la: Layer) -> dict[str, Any]:
    return {
        "name": la.name,
        "types": ["*"] if la.types is None else list(la.types),
        "setup": la.setup,
        "teardown": la.teardown,
        "provider": la.provider,
        "settings": la.settings.to_json(),
    }


def principal_json(p: Principal) -> dict[str, Any]:
    return {"name": p.name, "role": p.role, "app": p.app}


def token_json(t: Token) -> dict[str, Any]:
    """`gun tokens --json`: never the token nor its hash."""
    return {
        "name": t.name,
        "role": t.role,
        "app": t.app,
        "kind": t.kind,
        "created_by": t.created_by,
        "created_at": t.created_at.isoformat(),
        "expires_at": t.expires_at.isoformat() if t.expires_at else None,
    }


def formation_rows(
    totals: dict[str, int], shares: dict[str, dict[str, int]]
) -> list[dict[str, Any]]:
    """One row per (type, layer) share; a type no layer runs shows with layer null."""
    rows: list[dict[str, Any]] = []
    for ptype, total in totals.items():
        placed = [(layer, share[ptype]) for layer, share in shares.items() if ptype in share]
        if not placed:
            rows.append({"type": ptype, "quantity": total, "layer": None})
        rows.extend({"type": ptype, "quantity": n, "layer": layer} for layer, n in placed)
    return rows


def run_json(
    run: Run, attach_url: str | None = None, rendezvous: Address | None = None
) -> dict[str, Any]:
    """A run; for the client that started it, where to attach and how (`attach_tls`, and
    `attach_ca`: the PEM of the CA to trust there, null for the system's CAs)."""
    return {
        "name": run.name,
        "command": run.command,
        "state": run.state,
        "instance": run.instance,
        "release": run.release,
        "owner": run.owner,
        "attach_url": attach_url,
        "attach_tls": rendezvous.tls if rendezvous else False,
        "attach_ca": rendezvous.ca if rendezvous else None,
        "created_at": run.created_at.isoformat(),
    }
