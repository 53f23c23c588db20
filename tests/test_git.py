"""gun.git, the one way gun runs git, against real repositories: what each caller is told when git
is missing or too slow, and output that is not UTF-8."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gun.build import gitrepo, source
from gun.errors import UsageError
from gun.git import Git, GitError


def git(repo: Path, *args: str) -> str:
    who = ["-c", "user.name=Ann", "-c", "user.email=ann@example.com", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", "-C", str(repo), *who, *args], check=True, capture_output=True)
    return done.stdout.decode().strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "Procfile").write_text("web: true\n")
    git(repo, "add", "Procfile")
    git(repo, "commit", "--quiet", "-m", "First")
    git(repo, "tag", "v1")
    return repo


def test_commit_names_the_commit_of_a_ref_or_none(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    g = Git()
    table = {"HEAD": sha, "main": sha, "v1": sha, sha[:7]: sha, "nope": None, "--all": None}
    assert {ref: g.commit(repo, ref) for ref in table} == table
    assert g.subject(repo, sha) == "First"


def test_a_subject_that_is_not_utf8_is_read_with_replacement(repo: Path) -> None:
    """A commit whose subject is Latin-1 bytes (git commit would convert them: written raw)."""
    tree, parent = git(repo, "rev-parse", "HEAD^{tree}"), git(repo, "rev-parse", "HEAD")
    who = b"Ann <ann@example.com> 1700000000 +0000"
    raw = b"tree %s\nparent %s\nauthor %s\ncommitter %s\n\nCaf\xe9 ouvert\n" % (
        tree.encode(),
        parent.encode(),
        who,
        who,
    )
    made = subprocess.run(
        ["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin"],
        input=raw,
        check=True,
        capture_output=True,
    )
    sha = made.stdout.decode().strip()
    git(repo, "update-ref", "HEAD", sha)
    assert source.resolve(repo, "HEAD") == (sha, "Caf\ufffd ouvert")
    assert gitrepo.subject(repo, sha) == "Caf\ufffd ouvert"


def test_output_says_which_command_failed_and_git_last_line(repo: Path) -> None:
    with pytest.raises(GitError) as e:
        Git().output(repo, "show", "no-such-commit:Procfile")
    assert e.value.message.startswith("git show failed: fatal: ")
    assert gitrepo.read_file(repo, "HEAD", "Procfile") == b"web: true\n"
    assert gitrepo.read_file(repo, "HEAD", "missing") is None


def test_a_host_without_git_gets_the_callers_sentence(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GitError) as e:
        Git(env={"PATH": str(empty)}).run(repo, "status")
    assert e.value.message == "git is not installed on this host"
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(UsageError) as refused:
        source.pack_source(repo, "HEAD", tmp_path / "out.tar.gz")
    assert refused.value.message == "git is not installed: deploy the directory without a REF"


def test_a_git_that_runs_past_the_timeout_is_killed_and_said(tmp_path: Path) -> None:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "git").write_text("#!/bin/sh\nexec sleep 30\n")
    (bin_ / "git").chmod(0o755)
    slow = Git(env={"PATH": f"{bin_}:/usr/bin:/bin"}, timeout=0.3)
    with pytest.raises(GitError) as e:
        slow.run(tmp_path, "fetch")
    assert e.value.message == "git fetch took over 0.3 seconds"
