"""Scale's rules: the processes cap per app, no relative change below 0, and a warning (not a
refusal) for a type that no instance can run yet."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gun import formation
from gun.build.slug import pack
from gun.build.slugstore import LocalSlugStore
from gun.core import Platform
from gun.core.formation import scale_warning
from gun.errors import InvalidParams
from gun.model import Instance, Layer, Principal
from gun.store import Store
from tests.fakes import RecordingProvider

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


def test_a_scale_writes_its_placement_in_a_few_statements(store: Store, tmp_path: Path) -> None:
    """Scaling web 0 -> 200 -> 100 over 40 online instances: a statement or two on the
    processes each way, not one or two per process (bench/fleet.py scales 1,000 at once)."""
    fake = RecordingProvider()
    platform = Platform(
        store,
        slugs=LocalSlugStore(tmp_path / "slugs"),
        providers={"fake": fake},
        meta_url="http://meta",
        max_processes=1000,
    )
    admin = platform.tokens.authenticate(platform.tokens.bootstrap_admin(None) or "")
    platform.apps.create(admin, "shop")
    src = tmp_path / "src"
    src.mkdir()
    (src / "Procfile").write_text("web: python -m http.server $PORT\n")
    slug = pack(src, tmp_path / "slug.tar.gz")
    slug_id, _ = platform.slugs.add(admin, "shop", slug.path, slug.sha256, slug.size)
    platform.deploys.release(admin, "shop", slug_id)
    for _ in range(2):
        platform.instances.create(admin, "shop", "default", 20, provider="fake")
    for m in fake.made:
        platform.agents.register(platform.tokens.authenticate(m.token), m.id, None)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if re.match(r"\s*(INSERT INTO|UPDATE) processes\b", statement):
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        scale(platform, admin, "web=200")
        up = len(statements)
        scale(platform, admin, "web=100")
        down = len(statements) - up
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert (up, down) == (1, 1), statements  # all new: inserted; then undesired
    with store.read() as tx:
        procs = tx.processes.of(tx.apps.existing("shop").id)
    desired = [p for p in procs if p.desired]
    assert len(desired) == 100 and len(procs) == 200
    per_instance = Counter(p.instance for p in desired)
    assert set(per_instance.values()) == {100 // 40, 100 // 40 + 1}

    # a stopped process's row that went after placement read it (its agent's report removed
    # it) is placed anew all the same
    gone = next(p for p in procs if not p.desired)
    with store.write() as tx:
        app_id = tx.apps.existing("shop").id
        tx.processes.delete(app_id, gone.name)
        tx.processes.place(app_id, [(gone.name, "web", fake.made[0].id)], known={gone.name})
    with store.read() as tx:
        again = {p.name: p for p in tx.processes.of(app_id)}
    assert again[gone.name].desired and again[gone.name].instance == fake.made[0].id
