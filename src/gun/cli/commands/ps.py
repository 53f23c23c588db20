"""ps, ps.restart, ps.stop."""

from __future__ import annotations

from typing import Any

import click

from gun.cli import output
from gun.cli import wait as waiting
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import UsageError
from gun.placement import split_name

FIELDS = ("name", "type", "state", "instance", "port", "release", "restarts", "since")


@click.command("ps")
@app_option
@pass_ctx
def ps(ctx: Ctx, app: str | None) -> None:
    """Processes: state, instance, port, release, restarts."""
    data = ctx.client().get(f"/v1/apps/{p(need_app(app))}/processes")
    runs = [run_row(r) for r in data.get("runs", [])]
    if ctx.json:
        output.emit_json([{k: r[k] for k in FIELDS} for r in [*data["processes"], *runs]])
        return
    output.table(
        ["NAME", "STATE", "INSTANCE", "PORT", "RELEASE", "RESTARTS", "EXIT", "SINCE"],
        [
            [
                r["name"],
                r["state"],
                r["instance"] or "",
                r["port"] or "",
                f"v{r['release']}" if r["release"] else "",
                r["restarts"],
                "" if r["exit_code"] is None else r["exit_code"],
                output.short_time(r["since"]),
            ]
            for r in [*data["processes"], *runs]
        ],
    )
    for r in data.get("runs", []):
        output.line(f"{r['name']}: `{r['command']}` started by {r['owner']}")
    for ptype, why in data["unplaceable"].items():
        output.note(f"{ptype}: {why}")


def run_row(r: dict[str, Any]) -> dict[str, Any]:
    """A one-off process as a row of `ps`."""
    return {
        "name": r["name"],
        "type": "run",
        "state": r["state"],
        "instance": r["instance"],
        "port": None,
        "release": r["release"],
        "restarts": 0,
        "exit_code": None,
        "since": r["created_at"],
    }


def _restart_one(ctx: Ctx, app: str, name: str, timeout: float) -> None:
    before = ctx.client().get(f"/v1/apps/{p(app)}/processes")
    since = {r["name"]: r["since"] for r in before["processes"]}
    ctx.client().post(f"/v1/apps/{p(app)}/processes/restart", {"target": name})

    def restarted(data: dict[str, Any]) -> list[str]:
        mine = {
            "processes": [r for r in data["processes"] if r["name"] == name],
            "release": data["release"],
        }
        return waiting.pending(mine, since)

    waiting.converge(ctx.client(), app, timeout, done=restarted)


def _settled(data: dict[str, Any]) -> list[str]:
    """What is still on its way up or down: pending() but for crashed processes."""
    moving = [r for r in data["processes"] if r["state"] != "crashed"]
    return waiting.pending({**data, "processes": moving})


@click.command("ps.restart")
@click.argument("target", required=False)
@click.option("--wait", type=click.BOOL, default=True, show_default=True)
@click.option("--timeout", type=float, default=120, show_default=True, help="per process")
@app_option
@pass_ctx
def ps_restart(ctx: Ctx, target: str | None, wait: bool, timeout: float, app: str | None) -> None:
    """Rolling restart, one process at a time: gun ps.restart[:TYPE or :NAME]."""
    name = need_app(app)
    # a rolling restart starts from a settled app, so no process is skipped as "stopping";
    # a crashed process is settled (it waits on its backoff), and restarting it is allowed
    if wait:
        data = waiting.converge(ctx.client(), name, timeout, done=_settled)
    else:
        data = ctx.client().get(f"/v1/apps/{p(name)}/processes")
    chosen = [
        r["name"]
        for r in data["processes"]
        if r["state"] != "stopping" and (target is None or target in (r["name"], r["type"]))
    ]
    if not chosen or not wait:
        done = ctx.client().post(f"/v1/apps/{p(name)}/processes/restart", {"target": target})
        chosen = done["restarting"]
    else:
        for proc in chosen:
            _restart_one(ctx, name, proc, timeout)
            output.note(f"restarted {proc}")
    if ctx.json:
        output.emit_json({"restarted": chosen})
    else:
        output.line(f"Restarted {', '.join(chosen)}")


@click.command("ps.stop")
@click.argument("name")
@app_option
@pass_ctx
def ps_stop(ctx: Ctx, name: str, app: str | None) -> None:
    """Stop one process; the formation starts it again: gun ps.stop:web.1. A one-off process
    (ps.stop:run.3) is stopped for good."""
    if name.startswith("run."):
        done = ctx.client().delete(f"/v1/apps/{p(need_app(app))}/runs/{p(name)}")
        if ctx.json:
            output.emit_json({"stopped": [done["name"]]})
        else:
            output.line(f"Stopped {done['name']}")
        return
    if split_name(name) is None:
        # the API restarts a whole type at once; a type here would stop every one of them
        raise UsageError(
            f"ps.stop takes one process name such as web.1, not {name!r} "
            "(`gun ps.restart:TYPE` restarts a type one process at a time)"
        )
    done = ctx.client().post(f"/v1/apps/{p(need_app(app))}/processes/restart", {"target": name})
    if ctx.json:
        output.emit_json({"stopped": done["restarting"]})
    else:
        output.line(f"Stopped {', '.join(done['restarting'])}; the formation starts it again")
