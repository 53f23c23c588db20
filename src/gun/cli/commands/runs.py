"""run, run:detached, console: one-off processes in the app's current release."""

from __future__ import annotations

import os
import shlex
import sys

import click

from gun.cli import attach, output
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import UsageError
from gun.model import TERM


def start(ctx: Ctx, app: str, body: dict[str, object]) -> int:
    """Start a run and, when attached, join it here: its exit code."""
    client = ctx.client()
    tty_mode = body.get("attach", True) and attach.terminal()
    if tty_mode:
        cols, lines = attach.size()
        body = {**body, "tty": True, "size": [cols, lines], "term": _term()}
    made = client.post(f"/v1/apps/{p(app)}/runs", body)
    if not made["attach_url"]:
        if ctx.json:
            output.emit_json(made)
        else:
            output.line(f"Running `{made['command']}` detached as {made['name']}: see it with")
            output.line(f"  gun app:{app} logs -t ps={made['name']}")
        return 0
    sys.stdout.flush()
    secure = made.get("attach_tls", client.api.startswith("https:"))  # (a meta before it)
    tls = attach.context(bool(secure), made.get("attach_ca"), client.ca)
    return attach.attach(made["attach_url"], tls, tty_mode=bool(tty_mode))


def _term() -> str | None:
    term = os.environ.get("TERM")
    return term if term and TERM.match(term) else None


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--layer", help="run it on an instance of this layer")
@click.option("--detached", is_flag=True, help="output to the app's logs, not here (run:detached)")
@app_option
@pass_ctx
def run(
    ctx: Ctx, command: tuple[str, ...], layer: str | None, detached: bool, app: str | None
) -> None:
    """A one-off process run.N in the app's current release, with its config vars:
    gun app:APP run [layer=L] -- COMMAND ARGS... Its input is this one, its output comes
    here, and its exit code is gun's. run:detached sends its output to the app's logs."""
    name = need_app(app)
    if not command:
        raise UsageError("no command given: write it after --, e.g. gun app:APP run -- bash")
    body = {"command": _shell_words(command), "attach": not detached, "layer": layer}
    raise click.exceptions.Exit(start(ctx, name, body))


@click.command("console")
@app_option
@pass_ctx
def console(ctx: Ctx, app: str | None) -> None:
    """`run` of the app's console: the Procfile's console: type, else the buildpack's REPL
    (python, Django's shell, node), else bash. Exits with its exit code."""
    raise click.exceptions.Exit(start(ctx, need_app(app), {"console": True}))


def _shell_words(words: tuple[str, ...]) -> str:
    """The command as one line for bash -c: a single word is taken as written (it may be a
    whole shell line: run -- 'echo $HOME | wc'), several are quoted word by word."""
    return words[0] if len(words) == 1 else shlex.join(words)


@click.command("console.db")
@click.option(
    "--follower", type=click.BOOL, default=False, help="a follower's database (follower=true)"
)
@app_option
@pass_ctx
def console_db(ctx: Ctx, follower: bool, app: str | None) -> None:
    """psql on the app's DATABASE_URL (follower=true: its first follower's), run as a one-off
    process so that it works wherever the CLI does. Exits with psql's exit code."""
    body: dict[str, object] = {"database": "follower" if follower else "primary"}
    raise click.exceptions.Exit(start(ctx, need_app(app), body))
