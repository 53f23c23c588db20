"""config, config.get, config.set, config.unset."""

from __future__ import annotations

import shlex

import click

from gun.cli import output
from gun.cli.client import Refused
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import Forbidden, NotFound, UsageError
from gun.model import check_config_key

HIDDEN = "hidden from role viewer: a developer or admin token shows"


@click.command("config")
@app_option
@pass_ctx
def config(ctx: Ctx, app: str | None) -> None:
    """Show config vars (a viewer token: their names only)."""
    data = ctx.client().get(f"/v1/apps/{p(need_app(app))}/config-vars")
    if ctx.json:
        output.emit_json(data)  # a viewer's values are null
        return
    hidden = any(v is None for v in data.values())
    for k, v in data.items():
        output.line(k if v is None else f"{k}={shlex.quote(v) if v else v}")
    if hidden:
        output.note(f"config var values are {HIDDEN} them")


@click.command("config.get")
@click.argument("key")
@app_option
@pass_ctx
def config_get(ctx: Ctx, key: str, app: str | None) -> None:
    """Print one config var's value: gun config.get:KEY."""
    name = need_app(app)
    data = ctx.client().get(f"/v1/apps/{p(name)}/config-vars")
    if key not in data:
        raise Refused(NotFound(f"config var {check_config_key(key)} is not set on app {name!r}"))
    if data[key] is None:
        raise Refused(
            Forbidden(f"config var {key} is set on app {name!r}, but its value is {HIDDEN} it")
        )
    if ctx.json:
        output.emit_json({key: data[key]})
    else:
        output.line(data[key])


def _patch(ctx: Ctx, app: str, changes: dict[str, str | None]) -> None:
    data = ctx.client().patch(f"/v1/apps/{p(app)}/config-vars", changes)
    release = data["release"]
    if ctx.json:
        output.emit_json(release)
        return
    output.note(f"{release['description']} on {app}")
    output.line(f"v{release['version']}")


@click.command("config.set")
@click.argument("pairs", nargs=-1, required=True)
@app_option
@pass_ctx
def config_set(ctx: Ctx, pairs: tuple[str, ...], app: str | None) -> None:
    """Set config vars and make a release: gun config.set KEY=value [KEY=value ...]."""
    changes: dict[str, str | None] = {}
    for word in pairs:
        key, eq, value = word.partition("=")
        if not eq:
            raise UsageError(f"config.set takes KEY=value words; {word!r} has no '='")
        changes[check_config_key(key)] = value
    _patch(ctx, need_app(app), changes)


@click.command("config.unset")
@click.argument("keys", nargs=-1, required=True)
@app_option
@pass_ctx
def config_unset(ctx: Ctx, keys: tuple[str, ...], app: str | None) -> None:
    """Unset config vars and make a release: gun config.unset KEY [KEY ...]."""
    _patch(ctx, need_app(app), {check_config_key(k): None for k in keys})
