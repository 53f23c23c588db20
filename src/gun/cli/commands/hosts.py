"""hosts, hosts.add, hosts.remove: machines the team already has, reached over ssh."""

from __future__ import annotations

from pathlib import Path

import click

from gun.cli import output
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, pass_ctx
from gun.errors import UsageError
from gun.model import DEFAULT_HOST_ROOT

FIELDS = ("name", "address", "user", "port", "root", "instances")


@click.command("hosts")
@pass_ctx
def hosts(ctx: Ctx) -> None:
    """Machines registered with gun hosts.add, reached over ssh."""
    rows = ctx.client().get("/v1/hosts")
    if ctx.json:
        output.emit_json([{k: r[k] for k in FIELDS} for r in rows])
        return
    output.table(
        ["NAME", "ADDRESS", "USER", "PORT", "ROOT", "PYTHON", "KEY", "INSTANCES"],
        [
            [r["name"], r["address"], r["user"], r["port"], r["root"], r["python"], r["key"],
             r["instances"]]
            for r in rows
        ],
    )  # fmt: skip


def read_key(path: str) -> str:
    """The private key in the file at `path`, for meta to keep (encrypted)."""
    try:
        text = Path(path).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "it is not text"
        raise UsageError(f"key {path} cannot be read: {why}") from None
    if not text.lstrip().startswith("-----BEGIN ") or "PRIVATE KEY-----" not in text:
        raise UsageError(f"key {path} is not a private key (no -----BEGIN ... PRIVATE KEY-----)")
    return text


@click.command("hosts.add")
@click.argument("name")
@click.argument("target", metavar="USER@ADDRESS")
@click.option("--port", type=int, default=22, show_default=True, help="its sshd's port")
@click.option("--key", help="a private key file meta reaches it with (else ssh's own keys)")
@click.option("--root", default=DEFAULT_HOST_ROOT, show_default=True, help="where agents live")
@pass_ctx
def hosts_add(ctx: Ctx, name: str, target: str, port: int, key: str | None, root: str) -> None:
    """Register a machine you have: gun hosts.add NAME USER@ADDRESS [port=22] [key=PATH]
    [root=DIR]. meta connects at once over ssh and checks the key is accepted and python3 is
    3.11 or newer; it pins the host's key."""
    body = {"name": name, "target": target, "port": port, "root": root}
    if key is not None:
        body["key"] = read_key(key)
    made = ctx.client().post("/v1/hosts", body)
    if ctx.json:
        output.emit_json({k: made[k] for k in FIELDS})
        return
    output.line(
        f"Added host {made['name']} ({made['user']}@{made['address']}:{made['port']},"
        f" Python {made['python']}); agents will live in {made['root']}"
    )


@click.command("hosts.remove")
@click.argument("name")
@pass_ctx
def hosts_remove(ctx: Ctx, name: str) -> None:
    """Forget a host (refused while instances run there): gun hosts.remove:NAME."""
    ctx.client().delete(f"/v1/hosts/{p(name)}")
    if ctx.json:
        output.emit_json({"name": name, "removed": True})
    else:
        output.line(f"Removed host {name}")
