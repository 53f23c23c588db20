"""A layer's setup and teardown as a team uses them (OpsWorks' setup and shutdown recipes), on a
real `gun up`: the setup runs once on each new instance before anything of the app, its output
streamed to `instances.create` and kept; a failing setup leaves the instance `setup_failed` with
nothing placed on it; the teardown runs when the instance is deleted, its output shown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.up import HELLO, Up, running

SETUP = 'echo "installing libpq5 for $GUN_APP"; echo ran >>"$GUN_ROOT/setup-ran"; echo done'


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running(tmp_path_factory.mktemp("up"), instances=1) as platform:
        yield platform


def test_setup_runs_once_before_anything_and_teardown_when_deleted(up: Up) -> None:
    assert up.ok("apps.create", "shop") == "Created app shop (v1)\n"
    assert up.ok("app:shop", "deploy", f"dir={HELLO}") == "v2\n"
    said = up.ok("app:shop", "layers.set:db", "types=worker", f"setup={SETUP}", "teardown=echo bye")
    assert said == (
        "Layer db runs worker\n"
        f"  its setup runs {SETUP!r} once on each instance\n"
        "  its teardown runs 'echo bye' once on each instance\n"
    )

    made = up.gun("app:shop", "instances.create:db")
    assert made.code == 0, made.err
    [(iid, layer, state)] = [line.split() for line in made.out.splitlines()]
    assert (layer, state) == ("db", "online")
    assert made.err.splitlines() == [
        f"{iid} setup: installing libpq5 for shop",
        f"{iid} setup: done",
    ]
    [row] = [i for i in up.json("app:shop", "instances") if i["id"] == iid]
    assert (row["setup_state"], row["setup_output"]) == (
        "succeeded",
        "installing libpq5 for shop\ndone",
    )

    up.ok("app:shop", "scale", "worker=1")
    up.until(
        lambda: any(
            p["name"] == "worker.1" and p["instance"] == iid and p["state"] == "up"
            for p in up.processes("shop")
        ),
        30,
        "worker.1 up on the db instance",
    )
    root = up.home / "instances" / iid
    assert (root / "setup-ran").read_text() == "ran\n"  # once
    shipped = up.ok("app:shop", "logs", "num=200")
    assert "heroku[setup]: installing libpq5 for shop" in shipped

    deleted = up.gun("app:shop", "instances.delete:" + iid)
    assert (deleted.code, deleted.out, deleted.err) == (
        0,
        f"Deleted instance {iid}\n",
        f"{iid} teardown: bye\n{iid} teardown: the teardown exited 0\n",
    )
    assert not root.exists()


def test_a_failing_setup_leaves_the_instance_setup_failed_and_running_nothing(up: Up) -> None:
    up.ok("apps.create", "broken")
    up.ok("app:broken", "deploy", f"dir={HELLO}")
    failing = "echo 'E: Unable to locate package libpq6'; exit 100"
    up.ok("app:broken", "layers.set:db", "types=worker", f"setup={failing}")

    made = up.gun("app:broken", "instances.create:db")
    assert made.code == 1
    [iid] = [i["id"] for i in up.json("app:broken", "instances") if i["layer"] == "db"]
    assert made.err == (
        f"{iid} setup: E: Unable to locate package libpq6\n"
        f"gun: the layer's setup failed on {iid}, which runs nothing: see its output above (and"
        " in gun instances --json); delete it, mend the setup with layers.set, and create"
        " another\n"
    )
    [row] = [i for i in up.json("app:broken", "instances") if i["id"] == iid]
    assert (row["state"], row["setup_state"], row["setup_output"]) == (
        "setup_failed",
        "failed",
        "E: Unable to locate package libpq6",
    )
    up.ok("app:broken", "scale", "worker=1")
    assert not [p for p in up.processes("broken") if p["instance"] == iid]
    up.ok("app:broken", "instances.delete:" + iid)


def test_only_a_platform_admin_sets_setup_or_teardown(up: Up) -> None:
    up.ok("apps.create", "guarded")
    token = up.ok("tokens.create", "dev", "role=developer", "app=guarded").split()[-1]
    as_dev = up.gun("--token", token, "app:guarded", "layers.set:db", "setup=id")
    assert (as_dev.code, as_dev.err) == (
        1,
        "gun: token 'dev' may not set setup or teardown: they run as root on the hosts, so they"
        " need an admin token that is not scoped to an app\n",
    )
    assert up.ok("--token", token, "app:guarded", "layers.set:db", "types=web") == (
        "Layer db runs web\n"
    )
    blank = up.gun("app:guarded", "layers.set:db", "setup=   ")
    assert (blank.code, blank.err) == (
        1,
        "gun: setup is only blanks: give a shell command, or setup= for none\n",
    )
    nothing = up.gun("app:guarded", "layers.set:db")
    assert (nothing.code, nothing.err) == (
        2,
        "gun: give types=, setup=, teardown=, provider= or a setting, e.g. layers.set:app"
        " types=web\n",
    )
    up.ok("app:guarded", "layers.set:db", "setup=echo hi")
    assert up.ok("app:guarded", "layers.set:db", "setup=") == (
        "Layer db runs web\n  its setup runs nothing once on each instance\n"
    )
    [db] = [la for la in up.json("app:guarded", "layers") if la["name"] == "db"]
    assert (db["setup"], db["teardown"]) == (None, None)
