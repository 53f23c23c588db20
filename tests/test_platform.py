"""The Platform over a real store: one contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from gun import formation
from gun.core import Platform
from gun.errors import Conflict, Forbidden, InvalidParams, NotFound, SchemaMismatch, Unauthorized
from gun.model import Principal
from gun.store import Store
from gun.store.migrate import head
from gun.store.schema import config_vars, events, releases, tokens


def scale(platform: Platform, who: Principal, app: str, words: str) -> dict[str, int]:
    return platform.formation.scale(who, app, formation.parse(words)).totals


def test_app_lifecycle_and_releases(platform: Platform, admin: Principal) -> None:
    app = platform.apps.create(admin, "groupme")
    assert (app.name, app.release) == ("groupme", 1)
    assert [a.name for a in platform.apps.all(admin)] == ["groupme"]
    assert [la.name for la in platform.layers.all(admin, "groupme")] == ["default"]

    r2 = platform.config.change(admin, "groupme", {"RAILS_ENV": "production", "A": "1"})
    r3 = platform.config.change(admin, "groupme", {"B": "2"})
    r4 = platform.config.change(admin, "groupme", {"A": None})
    assert [r.version for r in (r2, r3, r4)] == [2, 3, 4]
    assert r2.description == "Set RAILS_ENV, A config vars"
    assert r4.description == "Unset A config vars"
    assert platform.config.get(admin, "groupme") == {"B": "2", "RAILS_ENV": "production"}

    r5 = platform.releases.rollback(admin, "groupme", 3)
    assert (r5.version, r5.description) == (5, "Rollback to v3")
    assert platform.config.get(admin, "groupme") == {"A": "1", "B": "2", "RAILS_ENV": "production"}
    history = platform.releases.all(admin, "groupme")
    assert [(r.version, r.current) for r in history] == [
        (5, True),
        (4, False),
        (3, False),
        (2, False),
        (1, False),
    ]
    assert platform.releases.rollback(admin, "groupme").description == "Rollback to v4"

    platform.apps.destroy(admin, "groupme")
    assert platform.apps.all(admin) == []
    with pytest.raises(NotFound, match="app 'groupme' does not exist"):
        platform.config.get(admin, "groupme")


def test_formation_absolute_relative_and_per_layer(platform: Platform, admin: Principal) -> None:
    platform.apps.create(admin, "shop")
    assert scale(platform, admin, "shop", "web=2 worker=1") == {"web": 2, "worker": 1}
    assert scale(platform, admin, "shop", "web+1 worker-1") == {"web": 3, "worker": 0}
    with pytest.raises(InvalidParams, match="^worker-1 would take worker below 0: it has 0$"):
        scale(platform, admin, "shop", "web+1 worker-1")
    assert platform.formation.get(admin, "shop")[0] == {"web": 3, "worker": 0}  # nothing changed
    platform.layers.set(admin, "shop", "default", ["web"])
    platform.layers.set(admin, "shop", "jobs", ["worker", "clock"])
    assert platform.formation.shares(admin, "shop") == {
        "default": {"web": 3},
        "jobs": {"worker": 0},
    }
    with pytest.raises(
        InvalidParams,
        match=r"no layer runs process type 'mailer' \(layers: "
        r"default, jobs\)",
    ):
        scale(platform, admin, "shop", "mailer=1")
    with pytest.raises(InvalidParams, match="release process type"):
        scale(platform, admin, "shop", "release=1")


def test_types_are_checked_against_the_procfile_once_a_release_has_one(
    platform: Platform, admin: Principal, store: Store
) -> None:
    platform.apps.create(admin, "api")
    scale(platform, admin, "api", "clock=1")  # allowed before the first deploy
    with store.write() as tx:
        app = tx.apps.find("api")
        assert app is not None
        tx.releases.insert(
            app,
            description="Deploy 1a2b3c4",
            config={},
            process_types={"web": "gunicorn app", "worker": "rq worker"},
            slug_id=None,
            commit="1a2b3c4",
            actor="test",
        )
    with pytest.raises(
        InvalidParams,
        match=r"'clock' is not in the Procfile of v2 \(it has: "
        r"web, worker\)",
    ):
        scale(platform, admin, "api", "clock=2")
    assert scale(platform, admin, "api", "web=2")["web"] == 2
    # a config change keeps the build's process types
    assert platform.config.change(admin, "api", {"X": "1"}).process_types == {
        "web": "gunicorn app",
        "worker": "rq worker",
    }


BAD = [
    (
        "bad app name",
        lambda p, w: p.apps.create(w, "Bad_Name"),
        InvalidParams,
        "app name 'Bad_Name'",
    ),
    (
        "app name with newline",
        lambda p, w: p.apps.create(w, "demo2\n"),
        InvalidParams,
        "app name 'demo2\\n'",
    ),
    ("short app name", lambda p, w: p.apps.create(w, "a"), InvalidParams, "app name 'a'"),
    ("duplicate app", lambda p, w: p.apps.create(w, "demo"), Conflict, "app 'demo' already exists"),
    (
        "bad config key",
        lambda p, w: p.config.change(w, "demo", {"1A": "x"}),
        InvalidParams,
        "config key '1A'",
    ),
    (
        "dashed key",
        lambda p, w: p.config.change(w, "demo", {"A-B": "x"}),
        InvalidParams,
        "config key 'A-B'",
    ),
    (
        "config over 32 kB",
        lambda p, w: p.config.change(w, "demo", {"BIG": "x" * 33_000}),
        InvalidParams,
        "over the limit of 32768 bytes",
    ),
    (
        "rollback to nothing",
        lambda p, w: p.releases.rollback(w, "demo", 99),
        NotFound,
        "release v99 of app 'demo' does not exist",
    ),
    (
        "missing app",
        lambda p, w: p.config.change(w, "nope", {"A": "1"}),
        NotFound,
        "app 'nope' does not exist",
    ),
]


@pytest.mark.parametrize(("case", "call", "error", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_changes_nothing(
    platform: Platform, admin: Principal, store: Store, case: str, call, error, message: str
) -> None:
    platform.apps.create(admin, "demo")
    platform.config.change(admin, "demo", {"KEEP": "me"})
    before = snapshot(store)
    with pytest.raises(error) as e:
        call(platform, admin)
    assert message in e.value.message
    assert snapshot(store) == before


def snapshot(store: Store) -> tuple[object, ...]:
    with store.read() as tx:
        return (
            tx.conn.execute(select(releases.c.app_id, releases.c.version)).all(),
            tx.conn.execute(select(config_vars.c.key)).all(),
            tx.conn.execute(select(events.c.id)).all(),
            [(a.name, a.release) for a in tx.apps.all()],
        )


def test_roles_and_app_scoped_tokens(platform: Platform, admin: Principal) -> None:
    platform.apps.create(admin, "one")
    platform.apps.create(admin, "two")
    dev_token, _ = platform.tokens.create(admin, "ci", "developer", "one")
    viewer_token, _ = platform.tokens.create(admin, "dash", "viewer", None)
    dev = platform.tokens.authenticate(dev_token)
    viewer = platform.tokens.authenticate(viewer_token)

    assert platform.config.change(dev, "one", {"A": "1"}).version == 2
    assert [a.name for a in platform.apps.all(dev)] == ["one"]
    with pytest.raises(Forbidden, match="scoped to app 'one' and cannot reach app 'two'"):
        platform.config.get(dev, "two")
    with pytest.raises(Forbidden, match="has role developer; this needs role admin"):
        platform.tokens.create(dev, "more", "admin", "one")
    assert platform.config.get(viewer, "two") == {}
    with pytest.raises(Forbidden, match="has role viewer; this needs role developer"):
        platform.config.change(viewer, "two", {"A": "1"})
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        platform.tokens.authenticate("gun_not_a_token")
    with pytest.raises(Unauthorized, match="no API token"):
        platform.tokens.authenticate(None)


def test_secrets_are_encrypted_at_rest_and_never_in_events(
    platform: Platform, admin: Principal, store: Store
) -> None:
    platform.apps.create(admin, "vault")
    platform.config.change(admin, "vault", {"DATABASE_URL": "postgres://u:hunter2@db/x"})
    token, _ = platform.tokens.create(admin, "robot", "developer", None)
    with store.read() as tx:
        dumped = repr(tx.conn.execute(select(config_vars)).all())
        dumped += repr(tx.conn.execute(select(releases)).all())
        dumped += repr(tx.conn.execute(select(events)).all())
        dumped += repr(tx.conn.execute(select(tokens)).all())
    assert "hunter2" not in dumped
    assert token not in dumped
    kinds = [(e.action, e.detail) for e in platform.apps.events(admin, "vault")]
    assert ("config.set", {"set": ["DATABASE_URL"], "unset": [], "version": 2}) in kinds
    assert all(e.actor == "admin" for e in platform.apps.events(admin, "vault"))


def test_concurrent_config_sets_lose_nothing(platform: Platform, admin: Principal) -> None:
    platform.apps.create(admin, "busy")
    workers, each = 8, 5
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(each):
                platform.config.change(admin, "busy", {f"K{n}_{i}": str(i)})
        except BaseException as e:  # collected and re-raised below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    config = platform.config.get(admin, "busy")
    assert len(config) == workers * each
    versions = [r.version for r in platform.releases.all(admin, "busy")]
    assert sorted(versions) == list(range(1, workers * each + 2))
    assert len(set(versions)) == len(versions)
    latest = platform.releases.get(admin, "busy", workers * each + 1)
    assert latest.config == config


def test_meta_refuses_a_schema_that_does_not_match(store: Store, box) -> None:  # noqa: ANN001
    url = store.engine.url.render_as_string(hide_password=False)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(SchemaMismatch) as e:
        Store.open(url, box)
    assert f"has schema revision 0000 but this gun needs {head()}" in e.value.message
    assert "gun server migrate" in e.value.message


def test_rollback_to_a_release_without_a_build_is_refused_once_there_is_one(
    platform: Platform, admin: Principal, store: Store
) -> None:
    platform.apps.create(admin, "late")
    platform.config.change(admin, "late", {"A": "1"})  # v2: no build yet
    with store.write() as tx:
        app = tx.apps.find("late")
        assert app is not None
        slug_id = tx.slugs.insert(app.id, "a" * 64, 10, {"web": "python web.py"}, None, None)
    platform.deploys.release(admin, "late", slug_id)  # v3
    with pytest.raises(InvalidParams, match="release v2 of app 'late' has no build"):
        platform.releases.rollback(admin, "late", 2)
    assert platform.releases.rollback(admin, "late", 3).description == "Rollback to v3"
