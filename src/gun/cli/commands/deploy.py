"""deploy: pack a directory into a slug, upload it, release it, wait until it runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from gun.build.slug import pack
from gun.cli import output
from gun.cli import wait as waiting
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import UsageError


@click.command("deploy")
@click.argument("ref", required=False)
@click.option("--dir", "directory", default=".", show_default=True, help="the app's directory")
@click.option("--wait", type=click.BOOL, default=True, show_default=True)
@click.option("--timeout", type=float, default=300, show_default=True)
@app_option
@pass_ctx
def deploy(
    ctx: Ctx, ref: str | None, directory: str, wait: bool, timeout: float, app: str | None
) -> None:
    """Deploy a directory as it is: gun deploy dir=PATH (git refs and builds come later)."""
    name = need_app(app)
    src = Path(directory)
    if ref is not None:
        raise UsageError(f"deploying a git ref ({ref!r}) is not supported yet: use dir=PATH")
    if not src.is_dir():
        raise UsageError(f"dir={directory} is not a directory")
    with tempfile.TemporaryDirectory(prefix="gun-deploy-") as tmp:
        slug = pack(src, Path(tmp) / "slug.tar.gz")
        output.note(f"Packed {src} into a {slug.size} byte slug ({slug.sha256[:12]})")
        with open(slug.path, "rb") as body:
            uploaded = ctx.client().request(
                "POST",
                f"/v1/apps/{p(name)}/slugs",
                content=body,
                headers={"Content-Type": "application/gzip", "X-Gun-Sha256": slug.sha256},
            )
    types = ", ".join(uploaded["process_types"])
    release = ctx.client().post(f"/v1/apps/{p(name)}/releases", {"slug": uploaded["id"]})
    output.note(
        f"Released v{release['version']} ({release['description']}); process types: {types}"
    )
    if wait:
        waiting.converge(ctx.client(), name, timeout)
    if ctx.json:
        output.emit_json(release)
    else:
        output.line(f"v{release['version']}")
