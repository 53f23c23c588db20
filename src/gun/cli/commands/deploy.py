"""deploy: pack the source, upload it, stream the build, wait until the new release runs."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from gun.build.source import pack_source
from gun.cli import output
from gun.cli import wait as waiting
from gun.cli.client import Client, Refused, Unreachable
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import GunError

RECONNECTS = 5  # times the build output stream is picked up again after losing meta


@click.command("deploy")
@click.argument("ref", required=False)
@click.option("--dir", "directory", default=".", show_default=True, help="the app's directory")
@click.option("--strategy", type=click.Choice(["slug", "git"]), default="slug", show_default=True)
@click.option("--wait", type=click.BOOL, default=True, show_default=True)
@click.option("--timeout", type=float, default=600, show_default=True)
@app_option
@pass_ctx
def deploy(
    ctx: Ctx,
    ref: str | None,
    directory: str,
    strategy: str,
    wait: bool,
    timeout: float,
    app: str | None,
) -> None:
    """Deploy: pack `git archive REF` of dir (or dir as it is), build, release, roll out."""
    name = need_app(app)
    began = time.monotonic()
    client = ctx.client()
    if strategy == "git":
        build = client.request(
            "POST", f"/v1/apps/{p(name)}/builds", params={"strategy": "git", "ref": ref or "HEAD"}
        )
        output.note(f"Deploying {ref or 'HEAD'} of the app's repository (strategy git)")
    else:
        build = _upload(client, name, Path(directory), ref)
    follow(client, name, build["id"])
    build = client.get(f"/v1/apps/{p(name)}/builds/{build['id']}")
    if build["status"] != "succeeded":
        raise Refused(GunError(f"deploy of {name} failed: {build['error']}"))
    version = build["release"]
    data = waiting.converge(client, name, timeout) if wait else None
    current = data["release"] if data else client.get(f"/v1/apps/{p(name)}/status")["release"]
    release = client.get(f"/v1/apps/{p(name)}/releases/{version}")
    as_ = "" if current == version else f" as v{current}"
    if as_:
        _runs_mine(client, name, release, current)
    if data is not None:
        mine = [q for q in data["processes"] if q["release"] == current]
        hosts = {q["instance"] for q in mine}
        output.note(
            f"v{version} is up{as_}: {len(mine)} processes on {len(hosts)} instances "
            f"({time.monotonic() - began:.1f}s)"
        )
    if ctx.json:
        output.emit_json(release)
    else:
        output.line(f"v{version}")


def _runs_mine(client: Client, name: str, release: dict[str, Any], current: int) -> None:
    """The deploy succeeds only if what runs is its code: its release, or a later one with
    the same build (config changed meanwhile). Anything else (a rollback, another deploy) is
    a failure naming the release that runs instead."""
    now = client.get(f"/v1/apps/{p(name)}/releases/{current}")
    same = (now["slug"], now["commit"]) == (release["slug"], release["commit"])
    if current > release["version"] and same:
        output.note(f"v{current} runs the code of v{release['version']}: {now['description']}")
        return
    raise Refused(
        GunError(
            f"deploy of {name} failed: v{release['version']} is not what runs: v{current} "
            f"({now['description']}) is the current release"
        )
    )


def _upload(client: Client, name: str, directory: Path, ref: str | None) -> Any:
    """Pack the source and POST it as a new build."""
    with tempfile.TemporaryDirectory(prefix="gun-deploy-") as tmp:
        source = pack_source(directory, ref, Path(tmp) / "source.tar.gz")
        output.note(f"Packed {source.described}: {source.size / 1e6:.1f}MB")
        if source.dirty:
            output.note("Uncommitted changes in the work tree are not deployed (only the commit)")
        params = {"commit": source.commit, "commit_description": source.subject}
        with open(source.path, "rb") as body:
            return client.request(
                "POST",
                f"/v1/apps/{p(name)}/builds",
                content=body,
                params={k: v[:500] for k, v in params.items() if v},
                headers={"Content-Type": "application/gzip"},
            )


def follow(client: Client, name: str, build_id: int) -> None:
    """Copy the build's output to stderr as it grows, until the build ends."""
    offset, lost = 0, 0
    url = f"/v1/apps/{p(name)}/builds/{build_id}/output"
    while True:
        try:
            with client.stream("GET", url, params={"offset": offset}) as r:
                for text in r.iter_text():
                    sys.stderr.write(text)
                    sys.stderr.flush()
                    offset += len(text)
            return
        except Unreachable:
            lost += 1
            if lost > RECONNECTS:
                raise
            time.sleep(min(2.0**lost / 4, 5.0))
