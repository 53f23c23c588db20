"""scale (ps.scale) and formation."""

from __future__ import annotations

from typing import Any

import click

from gun import formation as formations
from gun.cli import output
from gun.cli import wait as waiting
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import InvalidParams, UsageError


def _updates(words: tuple[str, ...]) -> list[dict[str, Any]]:
    try:
        changes = formations.parse(list(words))
    except InvalidParams as e:
        raise UsageError(e.message) from None
    updates: list[dict[str, Any]] = []
    for c in changes:
        quantity: int | str = f"{c.quantity:+d}" if c.relative else c.quantity
        updates.append({"type": c.type, "quantity": quantity})
    return updates


def _show(ctx: Ctx, rows: list[dict[str, Any]]) -> None:
    if ctx.json:
        output.emit_json(rows)
        return
    output.table(
        ["TYPE", "QUANTITY", "LAYER"],
        [[r["type"], r["quantity"], r["layer"] or "(no layer runs it)"] for r in rows],
    )


def _totals(rows: list[dict[str, Any]]) -> str:
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["type"]] = totals.get(r["type"], 0) + r["quantity"]
    return " ".join(f"{t}={n}" for t, n in totals.items())


def _scale(ctx: Ctx, words: tuple[str, ...], app: str | None, wait: bool, timeout: float) -> None:
    updates = _updates(words)
    name = need_app(app)
    scaled = ctx.client().patch(f"/v1/apps/{p(name)}/formation", {"updates": updates})
    rows = scaled["formation"]
    for warning in scaled["warnings"]:  # scaled all the same: say what cannot run yet
        output.note(f"gun: warning: {warning['message']}")
    if wait and ctx.client().get(f"/v1/apps/{p(name)}/instances"):
        stuck = {w["type"] for w in scaled["warnings"]}  # not waited for: nothing can run them
        waiting.converge(ctx.client(), name, timeout, unplaceable=stuck)
    if ctx.json:
        output.emit_json(rows)
    else:
        output.line(f"Scaled {name} to {_totals(rows)}")


def _wait_options(f: Any) -> Any:
    f = click.option("--timeout", type=float, default=120, show_default=True)(f)
    return click.option(
        "--wait",
        type=click.BOOL,
        default=True,
        show_default=True,
        help="wait until the processes run (when the app has instances)",
    )(f)


@click.command("scale")
@click.argument("formation", nargs=-1, required=True)
@_wait_options
@app_option
@pass_ctx
def scale(
    ctx: Ctx, formation: tuple[str, ...], wait: bool, timeout: float, app: str | None
) -> None:
    """Set formation totals: gun scale web=2 worker=4 (also web+1, web-1)."""
    _scale(ctx, formation, app, wait, timeout)


@click.command("ps.scale")
@click.argument("formation", nargs=-1, required=True)
@_wait_options
@app_option
@pass_ctx
def ps_scale(
    ctx: Ctx, formation: tuple[str, ...], wait: bool, timeout: float, app: str | None
) -> None:
    """Same as scale."""
    _scale(ctx, formation, app, wait, timeout)


@click.command("formation")
@app_option
@pass_ctx
def formation(ctx: Ctx, app: str | None) -> None:
    """Formation totals and each layer's share."""
    _show(ctx, ctx.client().get(f"/v1/apps/{p(need_app(app))}/formation"))
