"""ssh.host: an interactive shell on an instance of the app, in its release directory."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import UsageError

# in the release directory when there is one (a deploy made it), else the instance's own
_SHELL = 'cd {dir}/current 2>/dev/null || cd {dir}; exec "${{SHELL:-/bin/sh}}" -l'


def argv(where: dict[str, Any], known_hosts: Path, key: str | None) -> list[str]:
    """The command that opens the shell `where` describes (GET /v1/apps/APP/shell)."""
    command = _SHELL.format(dir=shlex.quote(where["dir"]))
    ssh = where["ssh"]
    if ssh is None:  # an instance on this machine (provider local)
        return ["sh", "-c", command]
    out = ["ssh", "-t", "-p", str(ssh["port"]), "-o", "StrictHostKeyChecking=yes"]
    out += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    if key is not None:
        out += ["-o", "IdentitiesOnly=yes", "-i", key]
    return [*out, "--", f"{ssh['user']}@{ssh['address']}", command]


@click.command("ssh.host")
@click.argument("target", required=False)
@click.option("--key", help="a private key file for the host (else your ssh keys and agent)")
@app_option
@pass_ctx
def ssh_host(ctx: Ctx, target: str | None, key: str | None, app: str | None) -> None:
    """A shell on the instance running a process, or on an instance, in its release
    directory: gun ssh.host[:web.1 or :INSTANCE]. Exits with the shell's exit code."""
    name = need_app(app)
    query = f"?target={p(target)}" if target else ""
    where = ctx.client().get(f"/v1/apps/{p(name)}/shell{query}")
    if where["ssh"] is None and not Path(where["dir"]).is_dir():
        raise UsageError(
            f"instance {where['instance']} is on meta's machine ({where['dir']}), not this one"
        )
    if where["ssh"] is not None and shutil.which("ssh") is None:
        raise UsageError("ssh.host needs OpenSSH's ssh command (Debian: openssh-client)")
    with tempfile.TemporaryDirectory(prefix="gun-ssh-host-") as private:
        known = Path(private) / "known_hosts"
        if where["ssh"] is not None:
            known.write_text(where["ssh"]["known_host"] + "\n")
        sys.stdout.flush()
        code = subprocess.call(argv(where, known, key), env=dict(os.environ))
    raise click.exceptions.Exit(code)  # the shell's exit code is gun's
