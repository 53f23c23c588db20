"""instances, instances.create, instances.delete."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from gun.cli import output
from gun.cli.client import Refused
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import Unavailable

FIELDS = (
    "id",
    "layer",
    "state",
    "provider",
    "instance_type",
    "availability_zone",
    "address",
    "problem",  # why its agent cannot run the current release, or null
    "host",  # provider ssh: the registered host it runs on, or null
    "setup_state",  # running, succeeded, failed, or null (its layer has no setup)
    "setup_output",  # what the layer's setup printed there (the end of it), or null
    "cloud_id",  # provider ec2: its EC2 instance id, or null
    "cloud_state",  # provider ec2: the state EC2 last reported (pending, running, ...), or null
    "last_heartbeat",  # when its agent was last heard (ISO 8601), or null
)


def _heard(row: dict[str, Any]) -> str:
    """How long ago the agent was last heard: `3s ago`, or `never`."""
    if not row.get("last_heartbeat"):
        return "never"
    then = datetime.fromisoformat(row["last_heartbeat"])
    return f"{max(0, round((datetime.now(UTC) - then).total_seconds()))}s ago"


def show(ctx: Ctx, rows: list[dict[str, Any]]) -> None:
    if ctx.json:
        output.emit_json([{k: r[k] for k in FIELDS} for r in rows])
        return
    cloud = any(r["provider"] == "ec2" for r in rows)  # its columns only where it is used
    output.table(
        ["ID", "LAYER", "STATE", "PROVIDER", "TYPE", "ZONE", "ADDRESS"]
        + (["EC2", "HEARD"] if cloud else []),
        [
            [
                r["id"],
                r["layer"],
                r["state"],
                r["provider"],
                r["instance_type"] or "",
                r["availability_zone"] or "",
                r["address"] or "",
            ]
            + (
                [" ".join(filter(None, [r.get("cloud_id"), r.get("cloud_state")])), _heard(r)]
                if cloud
                else []
            )
            for r in rows
        ],
    )
    for r in rows:
        if r["problem"]:
            output.note(f"{r['id']}: {r['problem']}")


@click.command("instances")
@app_option
@pass_ctx
def instances(ctx: Ctx, app: str | None) -> None:
    """Instances of the app."""
    show(ctx, ctx.client().get(f"/v1/apps/{p(need_app(app))}/instances"))


def await_online(ctx: Ctx, app: str, ids: set[str], timeout: float) -> list[dict[str, Any]]:
    """Poll until every instance in `ids` is online, showing their layer's setup output as it
    comes (on stderr); exit 1 when a setup failed, or naming the laggards at `timeout`."""
    deadline = time.monotonic() + timeout
    shown: dict[str, str] = {}
    while True:
        rows = [r for r in ctx.client().get(f"/v1/apps/{p(app)}/instances") if r["id"] in ids]
        for r in rows:
            _show_setup(r["id"], r.get("setup_output") or "", shown)
        failed = [r for r in rows if r["state"] == "setup_failed"]
        if failed:
            raise Refused(
                Unavailable(
                    f"the layer's setup failed on {', '.join(r['id'] for r in failed)}, which"
                    " runs nothing: see its output above (and in gun instances --json); delete"
                    " it, mend the setup with layers.set, and create another"
                )
            )
        offline = [r["id"] for r in rows if r["state"] != "online"]
        if not offline:
            return rows
        ended = [r["id"] for r in rows if r["state"] == "terminated"]
        if ended:
            raise Refused(
                Unavailable(f"{', '.join(ended)} ended before coming online (EC2 terminated it)")
            )
        if time.monotonic() >= deadline:
            raise Refused(
                Unavailable(
                    f"timed out after {timeout:g}s waiting for {', '.join(offline)} to come online"
                )
            )
        time.sleep(0.1)


def _show_setup(instance: str, output: str, shown: dict[str, str]) -> None:
    """The lines of an instance's setup output not shown yet. The output kept is its end, its
    lines joined by newlines: once its start is cut, what was shown is found by its end."""
    before = shown.get(instance, "")
    if output == before:
        return
    if output.startswith(before):
        fresh = output[len(before) :]
    else:
        end = before[-200:]
        at = output.rfind(end) if end else -1
        fresh = output[at + len(end) :] if at >= 0 else output
    for line in fresh.removeprefix("\n").split("\n"):
        click.echo(f"{instance} setup: {line}", err=True)
    shown[instance] = output


@click.command("instances.create")
@click.argument("layer")
@click.option("--count", type=int, default=1, show_default=True)
@click.option("--instance-type", help="recorded and shown (the local provider ignores it)")
@click.option("--availability-zone", help="recorded and shown (the local provider ignores it)")
@click.option("--provider", help="local, ssh or ec2 (default: the layer's, else local)")
@click.option("--host", help="provider ssh: a registered host (gun hosts)")
@click.option(
    "--wait",
    type=click.BOOL,
    default=True,
    show_default=True,
    help="wait until the instances are online",
)
@click.option("--timeout", type=float, help="seconds to wait (default 60; 600 for provider ec2)")
@app_option
@pass_ctx
def instances_create(
    ctx: Ctx,
    layer: str,
    count: int,
    instance_type: str | None,
    availability_zone: str | None,
    provider: str | None,
    host: str | None,
    wait: bool,
    timeout: float | None,
    app: str | None,
) -> None:
    """Add instances to a layer: gun instances.create:LAYER count=N [instance_type=T] ...
    [provider=ssh host=NAME | provider=ec2]."""
    name = need_app(app)
    made = ctx.client().post(
        f"/v1/apps/{p(name)}/instances",
        {
            "layer": layer,
            "count": count,
            "instance_type": instance_type,
            "availability_zone": availability_zone,
            "provider": provider,
            "host": host,
        },
    )
    if wait:
        if timeout is None:
            timeout = 600 if any(m["provider"] == "ec2" for m in made) else 60
        made = await_online(ctx, name, {m["id"] for m in made}, timeout)
    if ctx.json:
        output.emit_json([{k: r[k] for k in FIELDS} for r in made])
    else:
        for r in made:
            output.line(f"{r['id']}  {r['layer']}  {r['state']}")


@click.command("instances.delete")
@click.argument("instance_id")
@app_option
@pass_ctx
def instances_delete(ctx: Ctx, instance_id: str, app: str | None) -> None:
    """Remove an instance; its processes move to the others: gun instances.delete:ID."""
    done = ctx.client().delete(f"/v1/apps/{p(need_app(app))}/instances/{p(instance_id)}")
    said = done.get("teardown_output") if isinstance(done, dict) else None
    if said:
        for line in said.splitlines():
            click.echo(f"{instance_id} teardown: {line}", err=True)
    if ctx.json:
        output.emit_json({"id": instance_id, "deleted": True, "teardown_output": said})
    else:
        output.line(f"Deleted instance {instance_id}")
