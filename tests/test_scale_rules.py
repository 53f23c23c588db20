"""Scale's rules: the processes cap per app, no relative change below 0, and a warning (not a
refusal) for a type that no instance can run yet."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gun import formation
from gun.core import Platform
from gun.core.formation import scale_warning
from gun.errors import InvalidParams
from gun.model import Instance, Layer, Principal
from gun.store import Store

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def instance(iid: str, layer: str, state: str = "online") -> Instance:
    return Instance(iid, "shop", layer, "local", state, None, None, None, None, EPOCH)


APP_JOBS = [Layer("app", ("web",)), Layer("jobs", ("worker", "sl"))]


@pytest.mark.parametrize(
    ("ptype", "quantity", "layers", "instances", "expected"),
    [
        ("web", 2, APP_JOBS, [instance("i-1", "app")], None),
        ("web", 2, APP_JOBS, [instance("i-1", "app", "pending")], None),  # its agent is coming
        ("sl", 0, APP_JOBS, [instance("i-1", "app")], None),  # nothing to run
        ("clock", 1, APP_JOBS, [instance("i-1", "app")], None),  # no layer: scale refuses it
        (
            "sl",
            3,
            APP_JOBS,
            [instance("i-1", "app")],
            "no instance runs sl: layer jobs has no instances, so sl=3 waits until "
            "`gun instances.create:jobs` adds one",
        ),
        (
            "sl",
            3,
            APP_JOBS + [Layer("more", ("sl",))],
            [],
            "no instance runs sl: layers jobs, more have no instances, so sl=3 waits until "
            "`gun instances.create:jobs` adds one",
        ),
        (
            "worker",
            1,
            APP_JOBS,
            [instance("i-2", "jobs", "lost"), instance("i-1", "app")],
            "no instance runs worker now: layer jobs has only lost instances (i-2), so worker=1 "
            "waits until one is back",
        ),
    ],
)
def test_when_scale_warns(
    ptype: str,
    quantity: int,
    layers: list[Layer],
    instances: list[Instance],
    expected: str | None,
) -> None:
    assert scale_warning(ptype, quantity, layers, instances) == expected


def scale(platform: Platform, who: Principal, words: str) -> dict[str, int]:
    return platform.formation.scale(who, "shop", formation.parse(words)).totals


def test_the_processes_cap_counts_every_type_and_lets_an_app_over_it_scale_down(
    store: Store,
) -> None:
    platform = Platform(store, max_processes=10)
    admin = platform.tokens.authenticate(platform.tokens.bootstrap_admin(None) or "")
    platform.apps.create(admin, "shop")
    assert scale(platform, admin, "web=6 worker=4") == {"web": 6, "worker": 4}
    with pytest.raises(InvalidParams) as e:
        scale(platform, admin, "web+1")
    assert e.value.message == (
        "web=7 worker=4 would run 11 processes of app 'shop', over the limit of 10 per app "
        "(GUN_MAX_PROCESSES on meta)"
    )
    assert scale(platform, admin, "web-1 worker+1") == {"web": 5, "worker": 5}  # 10 still

    lower = Platform(store, max_processes=4)  # the limit went down: scaling down still works
    with pytest.raises(InvalidParams, match="over the limit of 4 per app"):
        scale(lower, admin, "web+1")
    assert scale(lower, admin, "web=1") == {"web": 1, "worker": 5}
    assert scale(lower, admin, "worker-2") == {"web": 1, "worker": 3}


def test_scale_answers_warnings_for_types_nothing_can_run(store: Store) -> None:
    platform = Platform(store)
    admin = platform.tokens.authenticate(platform.tokens.bootstrap_admin(None) or "")
    platform.apps.create(admin, "shop")
    scaled = platform.formation.scale(admin, "shop", formation.parse("web=2"))
    assert scaled.totals == {"web": 2}
    assert scaled.warnings == {
        "web": "no instance runs web: layer default has no instances, so web=2 waits until "
        "`gun instances.create:default` adds one"
    }
    assert platform.formation.scale(admin, "shop", formation.parse("web=0")).warnings == {}
