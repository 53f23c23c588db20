"""login, whoami, tokens.create."""

from __future__ import annotations

import click

from gun.cli import credentials, output
from gun.cli.client import Client
from gun.cli.context import Ctx, app_option, pass_ctx
from gun.errors import UsageError


@click.command("login")
@click.option("--api", "api_url", help="meta's URL, e.g. http://127.0.0.1:5100")
@click.option("--token", "token_value", help="an API token")
@pass_ctx
def login(ctx: Ctx, api_url: str | None, token_value: str | None) -> None:
    """Check a token against meta and save it: gun login --api URL --token TOKEN."""
    api = api_url or ctx.api
    token = token_value or ctx.token
    if not api or not token:
        raise UsageError("login needs both --api URL and --token TOKEN")
    if not api.startswith(("http://", "https://")):
        raise UsageError(f"--api {api!r} is not an http:// or https:// URL")
    client = Client(api, token)
    try:
        who = client.get("/v1/whoami")
    finally:
        client.close()
    saved = credentials.save(credentials.Credentials(api=api, token=token))
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


@click.command("tokens.create")
@click.argument("name")
@click.option("--role", default="developer", show_default=True, help="viewer, developer or admin")
@app_option
@pass_ctx
def tokens_create(ctx: Ctx, name: str, role: str, app: str | None) -> None:
    """Create an API token, optionally for one app: gun tokens.create NAME role=viewer app=A."""
    made = ctx.client().post("/v1/tokens", {"name": name, "role": role, "app": app})
    if ctx.json:
        output.emit_json(made)
        return
    scope = f" for app {made['app']}" if made["app"] else ""
    output.note(
        f"Created token {made['name']} (role {made['role']}{scope}); it is shown only once:"
    )
    output.line(made["token"])
