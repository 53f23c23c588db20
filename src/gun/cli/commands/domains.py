"""domains, domains.add, domains.remove, certs, certs.add, certs.remove: the hostnames the
router sends to an app and the TLS certificates it serves for them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gun.cli import output
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import InvalidParams, UsageError


def short(fingerprint: str) -> str:
    return fingerprint[:16]


def day(iso: str) -> str:
    return iso[:10]


@click.command("domains")
@app_option
@pass_ctx
def domains(ctx: Ctx, app: str | None) -> None:
    """The hostnames the router sends to the app: APP.<router domain> and those added."""
    data = ctx.client().get(f"/v1/apps/{p(need_app(app))}/domains")
    if ctx.json:
        output.emit_json(data)
        return
    output.table(
        ["HOSTNAME", "KIND", "CERT"],
        [[d["hostname"], d["kind"], day(d["cert"]["expires_at"]) if d["cert"] else "-"]
         for d in data],
    )  # fmt: skip


@click.command("domains.add")
@click.argument("hostname")
@app_option
@pass_ctx
def domains_add(ctx: Ctx, hostname: str, app: str | None) -> None:
    """Send HOSTNAME to the app too: gun domains.add:www.example.com (or *.example.com)."""
    name = need_app(app)
    d = ctx.client().post(f"/v1/apps/{p(name)}/domains", {"hostname": hostname})
    if ctx.json:
        output.emit_json(d)
    else:
        output.line(f"Added domain {d['hostname']} to {name}")


def said_taken(taken: list[dict[str, Any]]) -> None:
    for t in taken:
        gone = " (removed: it served nothing else)" if t["removed"] else ""
        hosts = ", ".join(t["hostnames"])
        output.note(f"Certificate {short(t['fingerprint'])} no longer serves {hosts}{gone}")


@click.command("domains.remove")
@click.argument("hostname")
@app_option
@pass_ctx
def domains_remove(ctx: Ctx, hostname: str, app: str | None) -> None:
    """Stop sending HOSTNAME to the app: gun domains.remove:www.example.com."""
    name = need_app(app)
    done = ctx.client().delete(f"/v1/apps/{p(name)}/domains/{p(hostname)}")
    if ctx.json:
        output.emit_json(done)
        return
    output.line(f"Removed domain {done['hostname']} from {name}")
    said_taken(done["certs"])


@click.command("certs")
@app_option
@pass_ctx
def certs(ctx: Ctx, app: str | None) -> None:
    """The TLS certificates the router serves for the app's hostnames (by SNI)."""
    data = ctx.client().get(f"/v1/apps/{p(need_app(app))}/certs")
    if ctx.json:
        output.emit_json(data)
        return
    output.table(
        ["HOSTNAMES", "EXPIRES", "SUBJECT", "ISSUER", "FINGERPRINT"],
        [[",".join(c["hostnames"]), day(c["expires_at"]), c["subject"], c["issuer"],
          short(c["fingerprint"])] for c in data],
    )  # fmt: skip


def read_pem(path: str) -> str:
    try:
        return Path(path).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "it is not text"
        raise UsageError(f"{path} cannot be read: {why}") from None


@click.command("certs.add")
@click.argument("cert", metavar="CERT.pem")
@click.argument("key", metavar="KEY.pem")
@app_option
@pass_ctx
def certs_add(ctx: Ctx, cert: str, key: str, app: str | None) -> None:
    """Serve a certificate (PEM: the leaf, then intermediates) with its unencrypted key for the
    app's hostnames it covers: gun certs.add cert.pem key.pem. It replaces the certificate of
    each of those hostnames."""
    name = need_app(app)
    chain_pem, key_pem = read_pem(cert), read_pem(key)
    try:  # the same checks meta makes, here to name the files
        from gun.tlscerts import parse  # cryptography: only for this command

        parse(chain_pem, key_pem, datetime.now(UTC), cert_what=cert, key_what=key)
    except InvalidParams as e:
        raise UsageError(e.message) from None
    c = ctx.client().post(f"/v1/apps/{p(name)}/certs", {"certificate": chain_pem, "key": key_pem})
    if ctx.json:
        output.emit_json(c)
        return
    output.line(
        f"Added certificate {short(c['fingerprint'])} to {name} for {', '.join(c['hostnames'])}"
        f" (expires {day(c['expires_at'])})"
    )
    said_taken(c["replaced"])


@click.command("certs.remove")
@click.argument("hostname")
@app_option
@pass_ctx
def certs_remove(ctx: Ctx, hostname: str, app: str | None) -> None:
    """Stop serving the certificate that covers HOSTNAME (for all its hostnames):
    gun certs.remove:www.example.com."""
    name = need_app(app)
    c = ctx.client().delete(f"/v1/apps/{p(name)}/certs/{p(hostname)}")
    if ctx.json:
        output.emit_json(c)
        return
    output.line(
        f"Removed certificate {short(c['fingerprint'])} ({', '.join(c['hostnames'])}) from {name}"
    )
