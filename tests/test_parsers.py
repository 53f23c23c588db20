"""Procfile and env file parsers: tables of real files, and properties over random input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun import envfile, procfile
from gun.errors import InvalidParams

GOOD_PROCFILE = b"""# processes
web: gunicorn app:app --bind 0.0.0.0:$PORT
worker:python worker.py

release: python manage.py migrate
clock_2: bash -c 'while true; do date; sleep 60; done'
"""


def test_procfile_keeps_order_and_commands() -> None:
    assert procfile.parse(GOOD_PROCFILE) == {
        "web": "gunicorn app:app --bind 0.0.0.0:$PORT",
        "worker": "python worker.py",
        "release": "python manage.py migrate",
        "clock_2": "bash -c 'while true; do date; sleep 60; done'",
    }
    assert procfile.scalable(procfile.parse(GOOD_PROCFILE)) == ["web", "worker", "clock_2"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"web: a\nweb gunicorn\n", "Procfile:2: 'web gunicorn' is not `name: command`"),
        (b"web: a\nweb: b\n", "Procfile:2: process type 'web' is defined twice"),
        (b"\xef\xbb\xbfweb: a\n", "Procfile:1: starts with a UTF-8 byte order mark; remove it"),
        (b"", "Procfile:1: the Procfile defines no process types"),
        (b"# only a comment\n\n", "Procfile:1: the Procfile defines no process types"),
        (b"web:\n", "Procfile:1: process type 'web' has no command"),
        (b"w.b: x\n", "Procfile:1: process type 'w.b' may only use letters, digits, - and _"),
        (b"web: a\n\xff: b\n", "Procfile:2: is not valid UTF-8"),
        (b": cmd\n", "Procfile:1: process type '' may only use letters, digits, - and _"),
    ],
    ids=[
        "no-colon",
        "duplicate",
        "bom",
        "empty",
        "comments-only",
        "no-command",
        "bad-name",
        "not-utf8",
        "no-name",
    ],
)
def test_procfile_errors_name_file_and_line(data: bytes, message: str) -> None:
    with pytest.raises(procfile.ProcfileError) as e:
        procfile.parse(data)
    assert e.value.message == message


@given(st.binary(max_size=200))
def test_procfile_random_bytes_parse_or_raise_gun_error(data: bytes) -> None:
    try:
        types = procfile.parse(data)
    except InvalidParams as e:
        assert e.message.startswith("Procfile:")
    else:
        assert types and all(cmd for cmd in types.values())


GOOD_ENV = """# comment
export A=1
B='literal $HOME # not a comment'
C="line\\nbreak \\"quoted\\""
D=
E=has spaces # trailing comment
"""


def test_env_file_rules() -> None:
    assert envfile.parse(GOOD_ENV) == {
        "A": "1",
        "B": "literal $HOME # not a comment",
        "C": 'line\nbreak "quoted"',
        "D": "",
        "E": "has spaces",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "A=1\n1BAD=2\n",
            ".env:2: key '1BAD' may only use letters, digits and _, not starting with a digit",
        ),
        (
            "A-B=1\n",
            ".env:1: key 'A-B' may only use letters, digits and _, not starting with a digit",
        ),
        ("A=1\nNOEQUALS\n", ".env:2: 'NOEQUALS' has no '='"),
        ("A=1\n  = broken\n", ".env:2: '= broken' is not KEY=value"),
    ],
)
def test_env_file_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(envfile.EnvFileError) as e:
        envfile.parse(text)
    assert e.value.message == message


keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@pytest.mark.parametrize(
    "value", ["\n", "trailing\n", "a'b\"c", "$HOME", "# hash", "back\\slash", " pad ", "\t\r", ""]
)
def test_awkward_values_round_trip(value: str) -> None:
    assert envfile.parse(envfile.format({"K": value})) == {"K": value}


@given(st.dictionaries(keys, values, max_size=8))
def test_env_files_round_trip_exactly(env: dict[str, str]) -> None:
    assert envfile.parse(envfile.format(env)) == env


@given(st.text(max_size=200))
def test_env_random_text_parses_or_raises_gun_error(text: str) -> None:
    try:
        envfile.parse(text)
    except InvalidParams as e:
        assert e.message.startswith(".env:")
