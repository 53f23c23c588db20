"""Schemathesis against the meta API's own /openapi.json: no request it generates gets a 5xx.

The app runs in-process (ASGI) on a real store (SQLite and PostgreSQL), authenticated as admin,
with an app "demo" seeded so that path parameters reach existing things too, not only 404s.
Every error response must be gun's `{"id", "message"}` JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans

from gun.api import create_app
from gun.core import Platform
from gun.errors import Conflict
from gun.model import Principal

DEMO = "demo"


class Seeded:
    """The platform, its admin token and principal; `ensure_demo` re-creates "demo" if deleted."""

    def __init__(self, platform: Platform) -> None:
        token = platform.tokens.bootstrap_admin(None)
        assert token is not None
        self.platform = platform
        self.token = token
        self.admin: Principal = platform.tokens.authenticate(token)
        self.ensure_demo()

    def ensure_demo(self) -> None:
        try:
            self.platform.apps.create(self.admin, DEMO, "https://example.com/demo.git")
        except Conflict:
            return
        self.platform.config.change(self.admin, DEMO, {"RAILS_ENV": "production"})

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def seeded(platform: Platform) -> Seeded:
    return Seeded(platform)


def _aim_at_demo(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return params
    out = dict(params)
    if "app" in out:
        out["app"] = DEMO
    if "version" in out:
        out["version"] = "1"
    if "layer" in out:
        out["layer"] = "default"
    return out


# Explicit examples, added to the document (for this test only): the seeded app, and
# inputs that once broke meta (NUL bytes that PostgreSQL refuses, a non-ASCII digit as version).
PATH_EXAMPLES = {
    "app": [DEMO, "no-such-app", "nul\x00app"],
    "version": ["1", "v1", "99", "\u00b2"],
    "layer": ["default", "Bad_Layer"],
}
BODY_EXAMPLES = {
    ("/v1/apps", "post"): [
        {"name": "fresh", "repo": "https://x/y.git"},
        {"name": "nul-repo", "repo": "git\x00x"},
    ],
    ("/v1/tokens", "post"): [
        {"name": "ci", "role": "viewer", "app": DEMO},
        {"name": "nul\x00name", "role": "viewer"},
        {"name": "x", "role": "viewer", "app": "nul\x00app"},
    ],
    ("/v1/apps/{app}/config-vars", "patch"): [
        {"RAILS_ENV": "staging", "GONE": None},
        {"NUL": "a\x00b"},
    ],
    ("/v1/apps/{app}/formation", "patch"): [
        {"updates": [{"type": "web", "quantity": 2}]},
        {"updates": [{"type": "web", "quantity": "+1"}]},
    ],
    ("/v1/apps/{app}/rollback", "post"): [{"version": "v1"}, {"version": "\u00b2"}, {}],
    ("/v1/apps/{app}/layers/{layer}", "put"): [{"types": ["web", "worker"]}, {"types": ["*"]}],
}


def _with_examples(doc: dict[str, Any]) -> None:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                values = PATH_EXAMPLES.get(param["name"]) if param["in"] == "path" else None
                if values:
                    param["examples"] = {f"e{i}": {"value": v} for i, v in enumerate(values)}
            bodies = BODY_EXAMPLES.get((path, method))
            if bodies:
                media = op["requestBody"]["content"]["application/json"]
                media["examples"] = {f"e{i}": {"value": v} for i, v in enumerate(bodies)}


# The document is the app's own /openapi.json (built without serving, so no platform is
# needed); each test then sends its cases in-process to an app on that test's platform.
DOC = create_app(cast(Platform, None)).openapi()
_with_examples(DOC)
schema = schemathesis.openapi.from_dict(DOC)


@schema.hook
def flatmap_path_parameters(_ctx: Any, params: dict[str, Any] | None) -> Any:
    # Half the cases name the seeded app (and v1 / the default layer), half stay random.
    return st.sampled_from([params, _aim_at_demo(params)])


APP_NAMES = st.from_regex(r"[a-z][a-z0-9-]{1,29}", fullmatch=True)
CONFIG_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


def _valid_parts(label: str, body: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]] | None:
    """For a generated JSON object, a strategy that makes its identifying parts valid, so the
    rest of the generated values (repo, token name, config values, quantities) reach the store."""
    if label == "POST /v1/apps":
        return APP_NAMES.map(lambda name: {**body, "name": name})
    if label == "POST /v1/tokens":
        return st.builds(
            lambda role, app: {**body, "role": role, "app": app},
            st.sampled_from(["viewer", "developer", "admin"]),
            st.sampled_from([None, DEMO]),
        )
    if label == "PATCH /v1/apps/{app}/config-vars":
        return (
            st.lists(CONFIG_KEYS, min_size=len(body), max_size=len(body), unique=True).map(
                lambda keys: dict(zip(keys, body.values(), strict=True))
            )
            if body
            else None
        )
    if label == "PATCH /v1/apps/{app}/formation":
        updates = body.get("updates")
        if not isinstance(updates, list) or not updates:
            return None
        return st.just(
            {
                **body,
                "updates": [{**u, "type": "web"} if isinstance(u, dict) else u for u in updates],
            }
        )
    if label == "PUT /v1/apps/{app}/layers/{layer}":
        return st.sampled_from([["web"], ["web", "worker"], ["*"]]).map(
            lambda types: {**body, "types": types}
        )
    return None


@schema.hook
def flatmap_body(ctx: Any, body: Any) -> Any:
    # Half the objects get valid names/keys/roles so their other values reach the store.
    made = _valid_parts(ctx.operation.label, body) if isinstance(body, dict) else None
    return st.just(body) if made is None else st.one_of(st.just(body), made)


@schema.hook
def map_query(_ctx: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    # The agent's long poll may wait up to 60 s; a tenth of a second tests the same code.
    if query and isinstance(query.get("wait"), int | float) and query["wait"] > 0.1:
        return {**query, "wait": 0.1}
    return query


@dataclass
class Served:
    seeded: Seeded
    app: Any


@pytest.fixture
def served(seeded: Seeded) -> Iterator[Served]:
    try:
        yield Served(seeded, create_app(seeded.platform))
    finally:
        # The ASGI transport started the app's lifespan (background tasks); stop it with the
        # test, before its store closes.
        shutdown_lifespans()


def error_shape(_ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx/5xx is JSON `{"id": str, "message": str}` with a non-empty message."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(
            f"{case.operation.label}: {response.status_code} body is not JSON: {response.text!r}"
        ) from None
    assert isinstance(body, dict) and set(body) == {"id", "message"}, (
        f"{case.operation.label}: {response.status_code} body is not {{id, message}}: {body!r}"
    )
    assert isinstance(body["id"], str) and body["id"], body
    assert isinstance(body["message"], str) and body["message"], body


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: Any, served: Served) -> None:
    served.seeded.ensure_demo()
    case.call_and_validate(
        app=served.app,
        headers=served.seeded.headers,
        checks=[not_a_server_error, error_shape],
    )
