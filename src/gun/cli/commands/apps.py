"""apps, apps.create, apps.destroy, status."""

from __future__ import annotations

from urllib.parse import quote

import click

from gun.cli import output
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import UsageError


def p(name: str) -> str:
    return quote(name, safe="")


@click.command("apps")
@pass_ctx
def apps(ctx: Ctx) -> None:
    """List apps."""
    data = ctx.client().get("/v1/apps")
    if ctx.json:
        output.emit_json(
            [
                {"name": a["name"], "release": a["release"], "created_at": a["created_at"]}
                for a in data
            ]
        )
        return
    output.table(
        ["NAME", "RELEASE", "CREATED"],
        [
            [
                a["name"],
                f"v{a['release']}" if a["release"] else "",
                output.short_time(a["created_at"]),
            ]
            for a in data
        ],
    )


@click.command("apps.create")
@click.argument("name", required=False)
@click.option("--repo", help="git URL of the app's repository (for strategy=git deploys)")
@app_option
@pass_ctx
def apps_create(ctx: Ctx, name: str | None, repo: str | None, app: str | None) -> None:
    """Create an app: gun apps.create NAME [repo=GIT_URL]."""
    name = need_app(name or app)
    data = ctx.client().post("/v1/apps", {"name": name, "repo": repo})
    made = ctx.client().get(f"/v1/apps/{p(name)}/instances")
    if made:
        from gun.cli.commands.fleet import await_online

        await_online(ctx, name, {i["id"] for i in made}, 60)
    if ctx.json:
        output.emit_json(data)
    else:
        output.line(f"Created app {data['name']} (v{data['release']})")


@click.command("apps.destroy")
@click.argument("name", required=False)
@click.option("--confirm", help="the app's name again, to confirm")
@app_option
@pass_ctx
def apps_destroy(ctx: Ctx, name: str | None, confirm: str | None, app: str | None) -> None:
    """Delete an app and stop its processes: gun apps.destroy NAME confirm=NAME."""
    name = need_app(name or app)
    if confirm != name:
        raise UsageError(f"destroying app {name!r} cannot be undone: add confirm={name} to go on")
    # meta stops the app's instances and their processes before answering
    ctx.client().request("DELETE", f"/v1/apps/{p(name)}", timeout=120)
    if ctx.json:
        output.emit_json({"name": name, "destroyed": True})
    else:
        output.line(f"Destroyed app {name}")


@click.command("status")
@app_option
@pass_ctx
def status(ctx: Ctx, app: str | None) -> None:
    """Release, formation, processes by state, instances, last deploy."""
    data = ctx.client().get(f"/v1/apps/{p(need_app(app))}/status")
    if ctx.json:
        output.emit_json(data)
        return
    formation = " ".join(f"{t}={n}" for t, n in data["formation"].items()) or "(none)"
    processes = " ".join(f"{s}={n}" for s, n in data["processes"].items())
    output.pairs(
        [
            ("app", data["app"]),
            ("release", f"v{data['release']}" if data["release"] else "(none)"),
            ("formation", formation),
            ("processes", processes),
            ("instances", data["instances"]),
            ("last deploy", output.short_time(data["last_deploy"]) or "(never)"),
        ]
    )
