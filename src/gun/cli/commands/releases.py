"""releases, releases.info, rollback."""

from __future__ import annotations

from typing import Any

import click

from gun.cli import output
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import UsageError
from gun.model import parse_version

FIELDS = ("version", "description", "status", "current", "created_at", "commit")


@click.command("releases")
@click.option("-n", "--num", default=15, show_default=True, help="how many releases")
@app_option
@pass_ctx
def releases(ctx: Ctx, num: int, app: str | None) -> None:
    """Release history, newest first."""
    if not 1 <= num <= 1000:
        raise UsageError(f"num={num} is out of range: use 1 to 1000")
    data = ctx.client().get(f"/v1/apps/{p(need_app(app))}/releases", params={"limit": num})
    if ctx.json:
        output.emit_json([{k: r[k] for k in FIELDS} for r in data])
        return
    output.table(
        ["", "VERSION", "DESCRIPTION", "STATUS", "BY", "CREATED"],
        [
            [
                "*" if r["current"] else "",
                f"v{r['version']}",
                r["description"],
                r["status"],
                r["actor"],
                output.short_time(r["created_at"]),
            ]
            for r in data
        ],
    )


@click.command("releases.info")
@click.argument("version", required=False)
@app_option
@pass_ctx
def releases_info(ctx: Ctx, version: str | None, app: str | None) -> None:
    """One release: gun releases.info:vN (default: the current one)."""
    name = need_app(app)
    if version is None:
        current = [r for r in ctx.client().get(f"/v1/apps/{p(name)}/releases") if r["current"]]
        if not current:
            raise UsageError(
                f"app {name!r} has no current release: name one, e.g. releases.info:v1"
            )
        n = current[0]["version"]
    else:
        n = parse_version(version)
    r: dict[str, Any] = ctx.client().get(f"/v1/apps/{p(name)}/releases/{n}")
    if ctx.json:
        output.emit_json(r)
        return
    types = r.get("process_types") or {}
    output.pairs(
        [
            ("version", f"v{r['version']}"),
            ("description", r["description"]),
            ("status", r["status"]),
            ("current", "yes" if r["current"] else "no"),
            ("by", r["actor"]),
            ("created", output.short_time(r["created_at"])),
            ("commit", r["commit"] or ""),
            ("process types", ", ".join(types) or "(no build yet)"),
            ("config vars", ", ".join(r.get("config") or {}) or "(none)"),
        ]
    )


@click.command("rollback")
@click.argument("version", required=False)
@app_option
@pass_ctx
def rollback(ctx: Ctx, version: str | None, app: str | None) -> None:
    """New release with vN's build and config: gun rollback[:vN] (default: the previous one)."""
    name = need_app(app)
    body = {"version": None if version is None else parse_version(version)}
    r = ctx.client().post(f"/v1/apps/{p(name)}/rollback", body)
    if ctx.json:
        output.emit_json({k: r[k] for k in FIELDS})
        return
    output.note(f"{r['description']} on {name}")
    output.line(f"v{r['version']}")
