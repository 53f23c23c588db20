"""login, whoami, tokens, tokens.create, tokens.revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from gun.cli import credentials, output
from gun.cli.client import Client
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, pass_ctx
from gun.errors import InvalidParams, UsageError
from gun.model import check_token_name, parse_expiry, when
from gun.settings import pem_certificates, read_pem

TOKEN_FIELDS = ("name", "role", "app", "kind", "created_by", "created_at", "expires_at")


@click.command("login")
@click.option("--api", "api_url", help="meta's URL, e.g. http://127.0.0.1:5100")
@click.option("--token", "token_value", help="an API token")
@click.option(
    "--ca",
    "ca_path",
    type=click.Path(dir_okay=False),
    help="the CA meta's certificate is signed by (ca.pem of `gun server certs`), pinned",
)
@pass_ctx
def login(ctx: Ctx, api_url: str | None, token_value: str | None, ca_path: str | None) -> None:
    """Check a token against meta and save it: gun login --api URL --token TOKEN [--ca PATH]."""
    api = api_url or ctx.api
    token = token_value or ctx.token
    if not api or not token:
        raise UsageError("login needs both --api URL and --token TOKEN")
    if not api.startswith(("http://", "https://")):
        raise UsageError(f"--api {api!r} is not an http:// or https:// URL")
    if ca_path is not None and not api.startswith("https://"):
        raise UsageError("--ca is for an https:// meta")
    ca = read_pem(ca_path, f"--ca {ca_path}") if ca_path else pem_certificates("GUN_API_CA")
    client = Client(api, token, ca=ca)
    try:
        who = client.get("/v1/whoami")
    finally:
        client.close()
    saved = credentials.save(credentials.Credentials(api=api, token=token, ca=ca))
    if ctx.json:
        output.emit_json(who)
    else:
        output.line(f"Logged in to {api} as {who['name']} (role {who['role']})")
        output.note(f"credentials saved in {saved}")


@click.command("whoami")
@pass_ctx
def whoami(ctx: Ctx) -> None:
    """The token in use: its name, role and app scope."""
    who = ctx.client().get("/v1/whoami")
    if ctx.json:
        output.emit_json(who)
        return
    scope = f", app {who['app']}" if who["app"] else ""
    output.line(f"{who['name']} (role {who['role']}{scope}) at {ctx.client().api}")


def _expires(iso: str | None, at: datetime) -> str:
    if iso is None:
        return "never"
    moment = datetime.fromisoformat(iso)
    return f"{'expired' if moment <= at else ''} {when(moment)}".strip()


@click.command("tokens")
@pass_ctx
def tokens(ctx: Ctx) -> None:
    """Live tokens (never their values): gun tokens."""
    data: list[dict[str, Any]] = ctx.client().get("/v1/tokens")
    if ctx.json:
        output.emit_json([{k: t[k] for k in TOKEN_FIELDS} for t in data])
        return
    at = datetime.now(UTC)
    output.table(
        ["NAME", "ROLE", "APP", "KIND", "CREATED BY", "CREATED", "EXPIRES"],
        [
            [
                t["name"],
                t["role"],
                t["app"] or "",
                t["kind"],
                t["created_by"] or "",
                output.short_time(t["created_at"]),
                _expires(t["expires_at"], at),
            ]
            for t in data
        ],
    )


@click.command("tokens.create")
@click.argument("name")
@click.option(
    "--role", default="developer", show_default=True, help="viewer, developer, admin or drain"
)
@click.option("--expires", help="a duration (30d, 12h, 90m) or an ISO date (2031-01-31)")
@app_option
@pass_ctx
def tokens_create(ctx: Ctx, name: str, role: str, expires: str | None, app: str | None) -> None:
    """Create an API token, optionally for one app and until a time:
    gun tokens.create NAME role=viewer app=A expires=30d. role=drain makes a token that may
    only look up ingest tokens (for a drain of your own)."""
    try:
        check_token_name(name)
        if expires is not None:
            parse_expiry(expires, datetime.now(UTC))
    except InvalidParams as e:
        raise UsageError(e.message) from None
    made = ctx.client().post(
        "/v1/tokens", {"name": name, "role": role, "app": app, "expires": expires}
    )
    if ctx.json:
        output.emit_json(made)
        return
    scope = f" for app {made['app']}" if made["app"] else ""
    until = (
        f", expires {when(datetime.fromisoformat(made['expires_at']))}"
        if made["expires_at"]
        else ""
    )
    output.note(
        f"Created token {made['name']} (role {made['role']}{scope}{until}); it is shown only once:"
    )
    output.line(made["token"])


@click.command("tokens.revoke")
@click.argument("name")
@pass_ctx
def tokens_revoke(ctx: Ctx, name: str) -> None:
    """Revoke a token by name: gun tokens.revoke:NAME. It is refused everywhere within a
    second."""
    gone = ctx.client().delete(f"/v1/tokens/{p(name)}")
    if ctx.json:
        output.emit_json({k: gone[k] for k in TOKEN_FIELDS})
        return
    output.line(f"Revoked token {gone['name']}")
