"""`gun`: the entry point. Rewrites the seed syntax, runs the command, maps errors once."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence

import click

from gun import __version__, errors
from gun.cli.argv import normalise
from gun.cli.client import Refused, Unreachable
from gun.cli.commands import (
    access,
    apps,
    config,
    deploy,
    domains,
    fleet,
    formation,
    git,
    hosts,
    layers,
    logs,
    ps,
    releases,
    runs,
    server,
    sshhost,
    up,
)
from gun.cli.context import Ctx

COMMANDS = [
    apps.apps,
    apps.apps_create,
    apps.apps_destroy,
    apps.status,
    config.config,
    config.config_get,
    config.config_set,
    config.config_unset,
    formation.scale,
    formation.ps_scale,
    formation.formation,
    releases.releases,
    releases.releases_info,
    releases.rollback,
    layers.layers,
    layers.layers_set,
    fleet.instances,
    fleet.instances_create,
    fleet.instances_delete,
    hosts.hosts,
    hosts.hosts_add,
    hosts.hosts_remove,
    sshhost.ssh_host,
    ps.ps,
    ps.ps_restart,
    ps.ps_stop,
    deploy.deploy,
    git.compare,
    logs.drains,
    logs.drains_add,
    logs.drains_remove,
    logs.drains_ingest,
    domains.domains,
    domains.domains_add,
    domains.domains_remove,
    domains.certs,
    domains.certs_add,
    domains.certs_remove,
    logs.logs,
    logs.metrics,
    runs.run,
    runs.console,
    runs.console_db,
    access.login,
    access.whoami,
    access.tokens,
    access.tokens_create,
    access.tokens_revoke,
    server.server,
    up.up,
]


class Gun(click.Group):
    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.5)
            hint = f": did you mean {close[0]!r}?" if close else ": `gun --help` lists them"
            raise click.UsageError(f"unknown command {name!r}{hint}", ctx)
        return super().resolve_command(ctx, args)

    def options_of(self, name: str) -> set[str] | None:
        cmd = self.commands.get(name)
        if cmd is None:
            return None
        return {
            opt[2:]
            for param in cmd.params
            if isinstance(param, click.Option)
            for opt in param.opts
            if opt.startswith("--")
        }


@click.group(cls=Gun, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--api", help="meta's URL (GUN_API_URL)")
@click.option("--token", help="API token (GUN_API_TOKEN)")
@click.version_option(__version__, prog_name="gun")
@click.pass_context
def cli(ctx: click.Context, as_json: bool, api: str | None, token: str | None) -> None:
    """gun: Heroku's habits on machines you own.

    Both forms work: `gun app:NAME config.set K=V` and `gun config.set K=V -a NAME`.
    """
    state = Ctx(json=as_json, api=api, token=token)
    ctx.obj = state
    ctx.call_on_close(state.close)


for command in COMMANDS:
    cli.add_command(command)


def fail(message: str, code: int) -> int:
    sys.stderr.write(f"gun: {message}\n")
    return code


def run(argv: Sequence[str]) -> int:
    """Run one command line; returns the exit code (0 ok, 1 refused/failed, 2 bad command line)."""
    try:
        args = normalise(argv, cli.options_of)
        code = cli.main(args=args, prog_name="gun", standalone_mode=False)
        if isinstance(code, int) and code:  # click.exceptions.Exit(N): a command's own code
            return code
    except click.exceptions.NoArgsIsHelpError as e:
        sys.stdout.write(e.ctx.get_help() + "\n")
        return 0
    except click.UsageError as e:
        return fail(_sentence(e.format_message()), 2)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.Abort:
        return fail("aborted", 1)
    except Refused as e:
        return fail(e.error.message, 1)
    except Unreachable as e:
        return fail(str(e), 1)
    except (errors.UsageError, errors.InvalidParams) as e:
        return fail(e.message, 2)
    except errors.GunError as e:
        return fail(e.message, 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    return 0


def _sentence(message: str) -> str:
    return message.replace("\n", " ").strip()


def main() -> None:
    sys.exit(run(sys.argv[1:]))
