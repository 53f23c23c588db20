"""`status` of one app and of all at once (the dashboard's apps page), on both stores: the same
answer either way, what a scoped token sees, and a number of queries that does not grow with
the number of apps."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gun import formation
from gun.core.apps import Status
from gun.errors import NotFound
from gun.store import Store
from tests.fleets import Fleet


@contextmanager
def selects(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if re.match(r"\s*SELECT\b", statement):
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)


def test_status_of_a_deployed_app_and_of_an_empty_one(store: Store, tmp_path: Path) -> None:
    fleet = Fleet(store, tmp_path, 2)
    gun, admin = fleet.platform, fleet.admin
    fleet.scale("web=3 worker=1")
    gun.apps.create(admin, "blog")
    shop = gun.apps.status(admin, "shop")
    assert (shop.app, shop.release, shop.formation) == ("shop", 2, {"web": 3, "worker": 1})
    assert sum(shop.processes.values()) == 4 and shop.instances == 2
    assert shop.last_deploy is not None and shop.last_deploy.endswith("+00:00")
    blog = gun.apps.status(admin, "blog")
    assert blog == Status("blog", 1, {}, {s: 0 for s in shop.processes}, 0, None)

    fleet.scale("web=1")  # two web processes stopping until their agent says they are down
    assert gun.apps.status(admin, "shop").processes["stopping"] == 2
    assert gun.apps.statuses(admin) == [
        gun.apps.status(admin, "blog"),
        gun.apps.status(admin, "shop"),
    ]


def test_a_scoped_token_sees_only_its_app(store: Store, tmp_path: Path) -> None:
    fleet = Fleet(store, tmp_path, 1)
    gun, admin = fleet.platform, fleet.admin
    gun.apps.create(admin, "blog")
    _, who = gun.tokens.create(admin, "blogger", "viewer", "blog")
    assert [s.app for s in gun.apps.statuses(who)] == ["blog"]
    with pytest.raises(NotFound):
        gun.apps.status(admin, "nope")


def test_the_apps_page_reads_as_many_times_for_3_apps_as_for_30(
    store: Store, tmp_path: Path
) -> None:
    fleet = Fleet(store, tmp_path, 2)
    gun, admin = fleet.platform, fleet.admin
    fleet.scale("web=2 worker=1")
    counts = []
    for total in (3, 30):
        while len(gun.apps.statuses(admin)) < total:
            name = f"app{len(gun.apps.statuses(admin)):02d}"
            gun.apps.create(admin, name)
            gun.formation.scale(admin, name, formation.parse("web=1"))
        with selects(store) as seen:
            assert len(gun.apps.statuses(admin)) == total
        counts.append(len(seen))
    assert counts[0] == counts[1] <= 8, counts
