"""`gun git.compare`: its parsers as tables, then the real CLI against a real meta and a real
git repository (never fetched: the GitHub remote is only a URL)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from gun.crypto import Box, load_or_create_key
from gun.gitinfo import Commit, github_compare_url, parse_log
from gun.store import Store
from tests.meta import MetaServer

A, B = "a" * 40, "b" * 40


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("https://github.com/acme/shop", "https://github.com/acme/shop/compare/A...B"),
        ("https://github.com/acme/shop.git", "https://github.com/acme/shop/compare/A...B"),
        ("https://github.com/acme/shop/", "https://github.com/acme/shop/compare/A...B"),
        ("git@github.com:acme/shop.git", "https://github.com/acme/shop/compare/A...B"),
        ("git@github.com:acme/shop", "https://github.com/acme/shop/compare/A...B"),
        ("ssh://git@github.com/acme/shop.git", "https://github.com/acme/shop/compare/A...B"),
        (
            "https://github.com/my-org/my.repo_2.git\n",
            "https://github.com/my-org/my.repo_2/compare/A...B",
        ),
        ("https://gitlab.com/acme/shop.git", None),
        ("git@bitbucket.org:acme/shop.git", None),
        ("https://github.com.evil.example/acme/shop", None),
        ("https://github.com/acme", None),
        ("https://github.com/acme/shop/tree/main", None),
        ("/srv/git/shop.git", None),
        ("", None),
    ],
)
def test_github_compare_url(remote: str, url: str | None) -> None:
    assert github_compare_url(remote, "A", "B") == url


@pytest.mark.parametrize(
    ("text", "commits"),
    [
        ("", []),
        (f"{A}\0Ann\0Fix it\n", [Commit(A, "Ann", "Fix it")]),
        (
            f"{B}\0Bob Builder\0Second\n{A}\0Ann\0First\n",
            [Commit(B, "Bob Builder", "Second"), Commit(A, "Ann", "First")],
        ),
        (f"{A}\0Ann\0\n", [Commit(A, "Ann", "")]),
        (f"{A}\0Ann\0a\u2028b \x1c c\n", [Commit(A, "Ann", "a\u2028b \x1c c")]),
    ],
)
def test_parse_log(text: str, commits: list[Commit]) -> None:
    assert parse_log(text) == commits


@pytest.mark.parametrize("text", [f"{A} Ann Fix\n", f"{A}\0Ann\n", "\0Ann\0Fix\n"])
def test_parse_log_refuses_other_formats(text: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_log(text)


# the CLI ----------------------------------------------------------------------------------


def git(repo: Path, *args: str, author: str = "Ann Author") -> str:
    who = ["-c", f"user.name={author}", "-c", "user.email=dev@example.com"]
    done = subprocess.run(
        ["git", "-C", str(repo), *who, "-c", "commit.gpgsign=false", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, list[str]]:
    """A repository with three commits; returns it and their shas, oldest first."""
    path = tmp_path / "shop"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    shas = []
    for subject, author in [
        ("Initial", "Ann Author"),
        ("Add web", "Ann Author"),
        ("Fix bug", "Bob"),
    ]:
        with open(path / "CHANGES", "a") as f:
            f.write(subject + "\n")
        git(path, "add", "CHANGES")
        git(path, "commit", "-q", "-m", subject, author=author)
        shas.append(git(path, "rev-parse", "HEAD"))
    return path, shas


@pytest.fixture
def app(shared_meta: MetaServer) -> str:
    name = f"gc-{uuid.uuid4().hex[:8]}"
    assert shared_meta.gun("apps.create", name).code == 0
    return name


def deployed(meta: MetaServer, name: str, commit: str) -> None:
    """A release of `commit`, written the way Platform writes one.

    No API route records a commit yet (deploy uploads slugs without one), and the `platform`
    fixture seals config with its own key, not meta's; so this opens the meta's database with
    meta's own key ($GUN_HOME/secret.key) and inserts the release in one write transaction,
    keeping the current config, as `Config.apply` (core/config.py) does.
    """
    store = Store.open(meta.database_url, Box(load_or_create_key(meta.home, None)))
    try:
        with store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            tx.releases.insert(
                app,
                description=f"Deploy {commit[:7]}",
                config=tx.config.of(app.id),
                process_types={"web": "python web.py"},
                slug_id=None,
                commit=commit,
                actor="test",
            )
    finally:
        store.close()


def test_lists_commits_since_the_deployed_one_newest_first(
    shared_meta: MetaServer, app: str, repo: tuple[Path, list[str]]
) -> None:
    path, (first, second, third) = repo
    deployed(shared_meta, app, first)

    r = shared_meta.gun(f"app:{app}", "git.compare", f"dir={path}")
    assert (r.code, r.err) == (0, "")
    assert r.out == f"{third[:7]}  Fix bug  (Bob)\n{second[:7]}  Add web  (Ann Author)\n"

    r = shared_meta.gun("--json", "git.compare", second, "--dir", str(path), "-a", app)
    assert r.code == 0
    assert json.loads(r.out) == {
        "base": first,
        "head": second,
        "commits": [{"sha": second, "author": "Ann Author", "subject": "Add web"}],
        "compare_url": None,
    }


def test_up_to_date(shared_meta: MetaServer, app: str, repo: tuple[Path, list[str]]) -> None:
    path, shas = repo
    deployed(shared_meta, app, shas[-1])
    r = shared_meta.gun(f"app:{app}", "git.compare:HEAD", f"dir={path}")
    assert (r.code, r.out) == (0, f"Up to date with {shas[-1][:7]}\n")


def test_deployed_commit_ahead_of_ref(
    shared_meta: MetaServer, app: str, repo: tuple[Path, list[str]]
) -> None:
    path, (first, _, third) = repo
    deployed(shared_meta, app, third)
    r = shared_meta.gun(f"app:{app}", f"git.compare:{first}", f"dir={path}")
    assert r.code == 0
    assert r.out == f"No new commits: the deployed {third[:7]} is ahead of {first} ({first[:7]})\n"


def test_compare_url_when_origin_is_on_github(
    shared_meta: MetaServer, app: str, repo: tuple[Path, list[str]]
) -> None:
    path, (first, _, third) = repo
    git(path, "remote", "add", "origin", "https://github.com/acme/shop.git")
    deployed(shared_meta, app, first)
    r = shared_meta.gun(f"app:{app}", "git.compare", f"dir={path}")
    assert r.code == 0
    assert (
        r.out.splitlines()[-1] == f"Compare: https://github.com/acme/shop/compare/{first}...{third}"
    )
    r = shared_meta.gun("--json", f"app:{app}", "git.compare", f"dir={path}")
    assert json.loads(r.out)["compare_url"] == (
        f"https://github.com/acme/shop/compare/{first}...{third}"
    )


def test_no_deployed_commit(
    shared_meta: MetaServer, app: str, repo: tuple[Path, list[str]]
) -> None:
    path, _ = repo
    r = shared_meta.gun(f"app:{app}", "git.compare", f"dir={path}")
    assert (r.code, r.out) == (1, "")
    assert r.err == (
        f"gun: app {app!r} has no deployed commit to compare HEAD with: its current release "
        "v1 was not built from a git commit\n"
    )


def test_unknown_ref(shared_meta: MetaServer, app: str, repo: tuple[Path, list[str]]) -> None:
    path, shas = repo
    deployed(shared_meta, app, shas[0])
    r = shared_meta.gun(f"app:{app}", "git.compare:no-such-branch", f"dir={path}")
    assert (r.code, r.out) == (2, "")
    assert r.err == (
        f"gun: 'no-such-branch' is not a commit in {path}: name a branch, tag or commit\n"
    )


def test_not_a_git_repository(shared_meta: MetaServer, app: str, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    # the ceiling keeps git from finding a repository above tmp_path
    ceiling = {"GIT_CEILING_DIRECTORIES": str(tmp_path)}
    r = shared_meta.gun(f"app:{app}", "git.compare", f"dir={plain}", env=ceiling)
    assert (r.code, r.out, r.err) == (2, "", f"gun: dir={plain} is not a git repository\n")


def test_deployed_commit_missing_from_the_repository(
    shared_meta: MetaServer, app: str, repo: tuple[Path, list[str]]
) -> None:
    path, _ = repo
    deployed(shared_meta, app, "f" * 40)
    r = shared_meta.gun(f"app:{app}", "git.compare", f"dir={path}")
    assert (r.code, r.out) == (1, "")
    assert r.err == (
        f"gun: the deployed commit fffffff of app {app!r} is not in {path}: "
        "fetch it (git fetch) and try again\n"
    )
