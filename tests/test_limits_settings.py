"""The disk limits' settings, as a table: environment in, limits or one sentence out."""

from __future__ import annotations

import pytest

from gun.errors import UsageError
from gun.settings import AppLogLimits, SlugLimits

GIB = 1024**3
MIB = 1024**2

CASES: list[tuple[dict[str, str], SlugLimits | AppLogLimits | str]] = [
    ({}, SlugLimits(GIB, 100_000)),
    ({}, AppLogLimits(50 * MIB, 3)),
    ({"GUN_SLUG_MAX_UNPACKED_BYTES": "2048"}, SlugLimits(2048, 100_000)),
    ({"GUN_SLUG_MAX_MEMBERS": "10"}, SlugLimits(GIB, 10)),
    ({"GUN_SLUG_MAX_UNPACKED_BYTES": ""}, SlugLimits(GIB, 100_000)),
    (
        {"GUN_SLUG_MAX_UNPACKED_BYTES": "0"},
        "GUN_SLUG_MAX_UNPACKED_BYTES=0 is out of range: use 1 to 1125899906842624",
    ),
    ({"GUN_SLUG_MAX_UNPACKED_BYTES": "1GiB"}, "GUN_SLUG_MAX_UNPACKED_BYTES='1GiB' is not a number"),
    ({"GUN_SLUG_MAX_MEMBERS": "-1"}, "GUN_SLUG_MAX_MEMBERS=-1 is out of range: use 1 to 10000000"),
    ({"GUN_APP_LOG_MAX_MB": "0.01", "GUN_APP_LOG_KEEP": "0"}, AppLogLimits(10485, 0)),
    ({"GUN_APP_LOG_MAX_MB": "200"}, AppLogLimits(200 * MIB, 3)),
    ({"GUN_APP_LOG_MAX_MB": "0"}, "GUN_APP_LOG_MAX_MB=0 is out of range: use 0.001 to 1000000"),
    ({"GUN_APP_LOG_MAX_MB": "50MB"}, "GUN_APP_LOG_MAX_MB='50MB' is not a number"),
    ({"GUN_APP_LOG_KEEP": "101"}, "GUN_APP_LOG_KEEP=101 is out of range: use 0 to 100"),
]


@pytest.mark.parametrize(("env", "expected"), CASES)
def test_limits_from_the_environment(
    env: dict[str, str], expected: SlugLimits | AppLogLimits | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    kinds: list[type[SlugLimits] | type[AppLogLimits]] = [SlugLimits, AppLogLimits]
    if isinstance(expected, str):
        which = SlugLimits if "SLUG" in next(iter(env)) else AppLogLimits
        with pytest.raises(UsageError) as e:
            which.resolve()
        assert e.value.message == expected
    else:
        (kind,) = [k for k in kinds if isinstance(expected, k)]
        assert kind.resolve() == expected
