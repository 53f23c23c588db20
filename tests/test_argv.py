"""The seed syntax and the flag syntax turn into the same click argv."""

from __future__ import annotations

import pytest

from gun.cli.argv import normalise
from gun.errors import UsageError

OPTIONS = {
    "instances.create": {"count", "instance-type", "availability-zone", "provider", "app"},
    "config.set": {"app"},
    "apps": set(),
    "login": {"api", "token"},
}


def norm(line: str) -> list[str]:
    return normalise(line.split(), OPTIONS.get)


@pytest.mark.parametrize(
    ("seed", "flags"),
    [
        (
            "app:groupme instances.create:app count=3 instance_type=c1.xlarge "
            "availability_zone=us-east-1a",
            "instances.create app --count 3 --instance-type c1.xlarge "
            "--availability-zone us-east-1a -a groupme",
        ),
        (
            "app:groupme config.set RAILS_ENV=production",
            "config.set RAILS_ENV=production -a groupme",
        ),
        ("--json app:g config.set A=1", "config.set A=1 --app g --json"),
    ],
)
def test_both_forms_mean_the_same(seed: str, flags: str) -> None:
    a, b = norm(seed), norm(flags)
    # flags may come as --count=3 or --count 3; compare after joining option values
    assert " ".join(a).replace("=", " ") == " ".join(b).replace("=", " ") or a == b


def test_seed_form_exact() -> None:
    assert norm("app:groupme instances.create:app count=3 instance_type=c1.xlarge") == [
        "instances.create",
        "--app",
        "groupme",
        "app",
        "--count=3",
        "--instance-type=c1.xlarge",
    ]
    assert norm("app:groupme config.set RAILS_ENV=production") == [
        "config.set",
        "--app",
        "groupme",
        "RAILS_ENV=production",
    ]


def test_globals_move_to_the_front() -> None:
    assert norm("apps --json --api http://x --token t") == [
        "--json",
        "--api",
        "http://x",
        "--token",
        "t",
        "apps",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("app:a config.set -a b X=1", "two different apps given: 'a' and 'b'"),
        ("app:a apps", "command 'apps' does not act on an app; drop app:a"),
        ("config.set: X=1", "'config.set:' has an empty argument after ':'"),
        ("app: apps", "the app name is empty: write app:NAME or -a NAME"),
        ("apps --api", "--api needs a value"),
    ],
)
def test_bad_command_lines(line: str, message: str) -> None:
    with pytest.raises(UsageError) as e:
        norm(line)
    assert e.value.message == message
