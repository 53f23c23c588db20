"""layers and layers.set."""

from __future__ import annotations

from typing import Any

import click

from gun.cli import output
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import UsageError


def _settings(la: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={','.join(v) if isinstance(v, list) else v}"
        for k, v in (la.get("settings") or {}).items()
    )


@click.command("layers")
@app_option
@pass_ctx
def layers(ctx: Ctx, app: str | None) -> None:
    """Which process types each layer runs, its setup and teardown, and the provider of its
    instances."""
    data = ctx.client().get(f"/v1/apps/{p(need_app(app))}/layers")
    if ctx.json:
        output.emit_json(data)
        return
    # the columns of setup and teardown, and of the provider, only where they are used
    commands = any(la["setup"] or la["teardown"] for la in data)
    named = any(la.get("provider") for la in data)
    output.table(
        ["LAYER", "TYPES"]
        + (["SETUP", "TEARDOWN"] if commands else [])
        + (["PROVIDER", "SETTINGS"] if named else []),
        [
            [la["name"], "every type" if la["types"] == ["*"] else ",".join(la["types"])]
            + ([_short(la["setup"]), _short(la["teardown"])] if commands else [])
            + ([la.get("provider") or "local", _settings(la)] if named else [])
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
@click.option("--provider", help="local, ssh or ec2: where instances.create makes its instances")
@click.option("--ami", help="ec2: the AMI its instances boot")
@click.option("--subnet", help="ec2: the subnet they go in")
@click.option("--security-groups", help="ec2: security group ids, comma-separated")
@click.option("--key-name", help="ec2: the EC2 key pair they get")
@click.option("--root", help="ec2: where the agent lives on them (default /var/lib/gun)")
@app_option
@pass_ctx
def layers_set(
    ctx: Ctx,
    /,
    layer: str,
    types: str | None,
    setup: str | None,
    teardown: str | None,
    provider: str | None,
    app: str | None,
    **given: Any,
) -> None:
    """Set the process types a layer runs, the commands run once as root on each instance
    that joins it and leaves it, and the provider of its instances: gun layers.set:LAYER
    types=web,worker [setup=CMD] [teardown=CMD] [provider=ec2 ami=ID subnet=ID
    security_groups=ID,ID key_name=NAME root=DIR] (an empty value removes one; setup and
    teardown need a platform admin)."""
    settings = {k: v for k, v in given.items() if v is not None}
    body: dict[str, Any] = {}
    if types is not None:
        wanted = [t for t in types.split(",") if t]
        if not wanted:
            raise UsageError("types is empty: give process types, e.g. types=web,worker")
        body["types"] = wanted
    for name, command in (("setup", setup), ("teardown", teardown)):
        if command is not None:
            body[name] = command
    if provider is not None:
        body["provider"] = provider
    if settings:
        body["settings"] = settings
    if not body:
        raise UsageError(
            "give types=, setup=, teardown=, provider= or a setting, e.g. layers.set:app types=web"
        )
    la = ctx.client().put(f"/v1/apps/{p(need_app(app))}/layers/{p(layer)}", body)
    if ctx.json:
        output.emit_json(la)
        return
    shown = "every type" if la["types"] == ["*"] else ", ".join(la["types"])
    line = f"Layer {la['name']} runs {shown}"
    if la.get("provider"):
        line += f"; its instances: provider {la['provider']}"
        if _settings(la):
            line += f" ({_settings(la)})"
    output.line(line)
    for name in ("setup", "teardown"):
        if name in body:
            said = f"runs {la[name]!r}" if la[name] else "runs nothing"
            output.line(f"  its {name} {said} once on each instance")
