"""Runs git: the one place gun starts it (the CLI's deploy and git.compare, meta's mirrors, the
agent's checkouts), each caller saying once how (`Git`): its environment, its timeout, and
the error to raise when git is not installed.

Output is read as UTF-8 with bad bytes replaced (a commit subject in another encoding must not
crash a deploy); a command that runs past the timeout is killed and raises GitError.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gun.errors import GunError, InvalidParams

TIMEOUT = 600.0


class GitError(InvalidParams):
    """A git command failed; the message names it and git's last line."""


@dataclass(frozen=True)
class Git:
    """How one caller runs git. `missing` is the error class and sentence for a host without
    git; `env` None passes this process's environment on; `timeout` None waits for ever."""

    missing: tuple[type[GunError], str] = (GitError, "git is not installed on this host")
    timeout: float | None = TIMEOUT
    env: Mapping[str, str] | None = None

    def run(self, cwd: Path | str | None, *args: str) -> subprocess.CompletedProcess[str]:
        """`git [-C CWD] ARGS`, output captured; the caller reads returncode and stderr."""
        done = self._run(cwd, args)
        return subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )

    def run_bytes(self, cwd: Path | str | None, *args: str) -> subprocess.CompletedProcess[bytes]:
        """`run`, its output left as bytes (a file's contents)."""
        return self._run(cwd, args)

    def output(self, cwd: Path | str | None, *args: str) -> str:
        """git's stdout; GitError `git ARG0 failed: LAST LINE` when it exits non-zero."""
        done = self.run(cwd, *args)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise GitError(f"git {args[0]} failed: {last}")
        return done.stdout

    def commit(self, cwd: Path | str, ref: str) -> str | None:
        """The full sha of the commit REF names in the repository, None if it names none."""
        revision = f"{ref}^{{commit}}"
        done = self.run(cwd, "rev-parse", "--verify", "--quiet", "--end-of-options", revision)
        return done.stdout.strip() if done.returncode == 0 else None

    def subject(self, cwd: Path | str, commit: str) -> str:
        """The subject line of a commit."""
        return self.output(cwd, "log", "-1", "--format=%s", commit).strip()

    def _run(
        self, cwd: Path | str | None, args: tuple[str, ...]
    ) -> subprocess.CompletedProcess[bytes]:
        argv = ["git", *(["-C", str(cwd)] if cwd is not None else []), *args]
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                timeout=self.timeout,
                check=False,
                env=None if self.env is None else dict(self.env),
            )
        except FileNotFoundError:
            error, sentence = self.missing
            raise error(sentence) from None
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} took over {self.timeout:g} seconds") from None
