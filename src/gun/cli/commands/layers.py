"""layers and layers.set."""

from __future__ import annotations

import click

from gun.cli import output
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import UsageError


@click.command("layers")
@app_option
@pass_ctx
def layers(ctx: Ctx, app: str | None) -> None:
    """Which process types each layer runs."""
    data = ctx.client().get(f"/v1/apps/{p(need_app(app))}/layers")
    if ctx.json:
        output.emit_json(data)
        return
    commands = any(la["setup"] or la["teardown"] for la in data)  # else as before them
    output.table(
        ["LAYER", "TYPES", "SETUP", "TEARDOWN"][: 4 if commands else 2],
        [
            [
                la["name"],
                "every type" if la["types"] == ["*"] else ",".join(la["types"]),
                _short(la["setup"]),
                _short(la["teardown"]),
            ][: 4 if commands else 2]
            for la in data
        ],
    )


def _short(command: str | None, width: int = 40) -> str:
    if command is None:
        return ""
    flat = " ".join(command.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


@click.command("layers.set")
@click.argument("layer")
@click.option("--types", help="comma-separated process types, or * for every type")
@click.option("--setup", help="a shell command run once as root on each new instance")
@click.option("--teardown", help="a shell command run once as root on an instance deleted")
@app_option
@pass_ctx
def layers_set(
    ctx: Ctx,
    layer: str,
    types: str | None,
    setup: str | None,
    teardown: str | None,
    app: str | None,
) -> None:
    """Set the process types a layer runs, and the commands run once as root on each instance
    that joins it and leaves it: gun layers.set:LAYER types=web,worker [setup=CMD]
    [teardown=CMD] (an empty CMD removes one; setup and teardown need a platform admin)."""
    body: dict[str, object] = {}
    if types is not None:
        wanted = [t for t in types.split(",") if t]
        if not wanted:
            raise UsageError("types is empty: give process types, e.g. types=web,worker")
        body["types"] = wanted
    for name, command in (("setup", setup), ("teardown", teardown)):
        if command is not None:
            body[name] = command
    if not body:
        raise UsageError("give types=, setup= or teardown=, e.g. layers.set:app types=web")
    la = ctx.client().put(f"/v1/apps/{p(need_app(app))}/layers/{p(layer)}", body)
    if ctx.json:
        output.emit_json(la)
        return
    shown = "every type" if la["types"] == ["*"] else ", ".join(la["types"])
    output.line(f"Layer {la['name']} runs {shown}")
    for name in ("setup", "teardown"):
        if name in body:
            said = f"runs {la[name]!r}" if la[name] else "runs nothing"
            output.line(f"  its {name} {said} once on each instance")
