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
    output.table(
        ["LAYER", "TYPES"],
        [
            [la["name"], "every type" if la["types"] == ["*"] else ",".join(la["types"])]
            for la in data
        ],
    )


@click.command("layers.set")
@click.argument("layer")
@click.option("--types", required=True, help="comma-separated process types, or * for every type")
@app_option
@pass_ctx
def layers_set(ctx: Ctx, layer: str, types: str, app: str | None) -> None:
    """Set the process types a layer runs: gun layers.set:LAYER types=web,worker."""
    wanted = [t for t in types.split(",") if t]
    if not wanted:
        raise UsageError("types is empty: give process types, e.g. types=web,worker")
    la = ctx.client().put(f"/v1/apps/{p(need_app(app))}/layers/{p(layer)}", {"types": wanted})
    if ctx.json:
        output.emit_json(la)
    else:
        shown = "every type" if la["types"] == ["*"] else ", ".join(la["types"])
        output.line(f"Layer {la['name']} runs {shown}")
