"""API tokens at the Platform, on both stores: list, create (expiry, unique names), revoke (the
last admin, agents' tokens, app scope), the principal cache, drain tokens, and the migration
that made live names unique."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, insert, select, update

from gun.core import Platform
from gun.crypto import hash_token, new_token
from gun.errors import (
    Conflict,
    Forbidden,
    GunError,
    InvalidParams,
    NotFound,
    Unauthorized,
    UsageError,
)
from gun.model import Principal, parse_expiry
from gun.store import Store
from gun.store.migrate import alembic_config
from gun.store.schema import tokens
from gun.store.time import now
from tests.statements import recorded

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def expire(store: Store, name: str, at: datetime) -> None:
    """Move a live token's expiry (time passing, without waiting for it)."""
    with store.write() as tx:
        tx.conn.execute(
            update(tokens)
            .where(tokens.c.name == name, tokens.c.revoked.is_(False))
            .values(expires_at=at)
        )


def actions(store: Store) -> list[tuple[str | None, str, str, dict[str, object]]]:
    with store.read() as tx:
        return [(e.app, e.actor, e.action, e.detail) for e in reversed(tx.events.of(None, 100))]


# expiry: a pure parser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW + timedelta(days=30)),
        ("12h", NOW + timedelta(hours=12)),
        ("90m", NOW + timedelta(minutes=90)),
        ("45s", NOW + timedelta(seconds=45)),
        ("2031-01-31", datetime(2031, 1, 31, tzinfo=UTC)),
        ("2031-01-31T08:30:00Z", datetime(2031, 1, 31, 8, 30, tzinfo=UTC)),
        ("2031-01-31T08:30:00+02:00", datetime(2031, 1, 31, 6, 30, tzinfo=UTC)),
        ("2031-01-31 08:30", datetime(2031, 1, 31, 8, 30, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_expiry_is_a_duration_or_an_iso_date(text: str, expected: datetime) -> None:
    assert parse_expiry(text, NOW) == expected


PAST = "is in the past: give a later date or a duration like 30d"
MALFORMED = "is not a duration like 30d, 12h or 90m, nor an ISO date like 2031-01-31"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", f"expires='30' {MALFORMED}"),
        ("30 d", f"expires='30 d' {MALFORMED}"),
        ("30D", f"expires='30D' {MALFORMED}"),
        ("1w", f"expires='1w' {MALFORMED}"),
        ("-5d", f"expires='-5d' {MALFORMED}"),
        ("tomorrow", f"expires='tomorrow' {MALFORMED}"),
        ("", f"expires='' {MALFORMED}"),
        ("2031-02-30", f"expires='2031-02-30' {MALFORMED}"),
        ("٣٠d", f"expires='٣٠d' {MALFORMED}"),
        ("0d", "expires='0d' is no time at all: give one like 30d, 12h or 90m"),
        ("2030-05-31", f"expires='2030-05-31' {PAST}"),
        ("2030-06-01T12:00:00Z", f"expires='2030-06-01T12:00:00Z' {PAST}"),
        ("36501d", "expires='36501d' is more than 100 years away"),
        ("999999999d", "expires='999999999d' is more than 100 years away"),
        ("9999-12-31", "expires='9999-12-31' is more than 100 years away"),
    ],
)  # fmt: skip
def test_a_bad_expiry_is_refused_in_one_sentence(text: str, message: str) -> None:
    with pytest.raises(InvalidParams) as e:
        parse_expiry(text, NOW)
    assert e.value.message == message


@given(st.text(max_size=40))
def test_any_expiry_text_is_a_future_moment_or_one_sentence(text: str) -> None:
    try:
        at = parse_expiry(text, NOW)
    except InvalidParams as e:
        assert e.message.startswith(f"expires={text!r} ") and "\n" not in e.message
    else:
        assert NOW < at <= NOW + timedelta(days=36_500)


@given(st.integers(1, 36_500), st.sampled_from([("d", 86400), ("h", 3600), ("m", 60)]))
def test_a_duration_counts_from_now(n: int, unit: tuple[str, int]) -> None:
    assert parse_expiry(f"{n}{unit[0]}", NOW) == NOW + timedelta(seconds=n * unit[1])


# list, create, revoke ------------------------------------------------------------------------


def test_tokens_are_listed_without_their_values(
    platform: Platform, admin: Principal, store: Store
) -> None:
    platform.apps.create(admin, "shop")
    ci, _ = platform.tokens.create(admin, "ci", "developer", "shop", "30d")
    platform.tokens.create(admin, "eyes", "viewer", None)
    listed = platform.tokens.live(admin)
    assert [(t.name, t.role, t.app, t.kind, t.created_by) for t in listed] == [
        ("admin", "admin", None, "user", "gun server meta"),
        ("ci", "developer", "shop", "user", "admin"),
        ("eyes", "viewer", None, "user", "admin"),
    ]
    assert listed[0].expires_at is None
    ends = listed[1].expires_at
    assert ends is not None and abs(ends - (now() + timedelta(days=30))) < timedelta(seconds=5)
    assert ci not in repr(listed) and hash_token(ci) not in repr(listed)
    assert platform.tokens.authenticate(ci).expires_at == ends


def test_a_live_token_name_is_taken_once(platform: Platform, admin: Principal) -> None:
    platform.tokens.create(admin, "ci", "developer", None)
    with pytest.raises(Conflict) as e:
        platform.tokens.create(admin, "ci", "viewer", None)
    assert e.value.message == (
        "a live token is already named 'ci': revoke it first (`gun tokens.revoke:ci`) "
        "or pick another name"
    )
    platform.tokens.revoke(admin, "ci")
    again, _ = platform.tokens.create(admin, "ci", "viewer", None)  # a revoked one frees it
    assert platform.tokens.authenticate(again).role == "viewer"


def test_an_expired_token_is_refused_saying_when_and_frees_its_name(
    platform: Platform, admin: Principal, store: Store
) -> None:
    token, _ = platform.tokens.create(admin, "temp", "developer", None, "1h")
    assert platform.tokens.authenticate(token).name == "temp"
    expire(store, "temp", datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC))
    fresh = Platform(store)  # another meta: nothing cached
    with pytest.raises(Unauthorized) as e:
        fresh.tokens.authenticate(token)
    assert e.value.message == (
        "the API token 'temp' expired at 2021-01-02 03:04:05 UTC: ask an admin for a new one"
    )
    # still listed (so one sees why it fails) until revoked or its name is taken again
    assert "temp" in [t.name for t in fresh.tokens.live(admin)]
    successor, _ = fresh.tokens.create(admin, "temp", "developer", None)
    assert fresh.tokens.authenticate(successor).name == "temp"
    revoked = [a for a in actions(store) if a[2] == "token.revoke"]
    assert revoked == [
        (None, "admin", "token.revoke", {"name": "temp", "role": "developer", "kind": "user",
                                         "why": "expired"}),
    ]  # fmt: skip


def test_a_cached_token_is_refused_the_moment_it_expires(
    platform: Platform, admin: Principal
) -> None:
    token, _ = platform.tokens.create(admin, "brief", "viewer", None, "2s")
    platform.tokens.authenticate(token)  # cached now
    time.sleep(2.1)
    with pytest.raises(Unauthorized, match="the API token 'brief' expired at "):
        platform.tokens.authenticate(token)


@pytest.mark.parametrize(
    ("name", "role", "app", "expires", "error", "message"),
    [
        ("", "viewer", None, None, InvalidParams, "token name '' is invalid"),
        ("a/b", "viewer", None, None, InvalidParams, "token name 'a/b' is invalid"),
        ("..", "viewer", None, None, InvalidParams, "token name '..' is invalid"),
        (" ci", "viewer", None, None, InvalidParams, "token name ' ci' is invalid"),
        ("x" * 101, "viewer", None, None, InvalidParams, "is invalid: use 1 to 100 letters"),
        ("ci", "root", None, None, InvalidParams,
         "role 'root' is invalid: use one of viewer, developer, admin, drain"),
        ("ci", "viewer", "nope", None, NotFound, "app 'nope' does not exist"),
        ("ci", "viewer", None, "soon", InvalidParams, f"expires='soon' {MALFORMED}"),
        ("ci", "viewer", None, "2001-01-01", InvalidParams, "expires='2001-01-01' is in the past"),
        ("relay", "drain", "shop", None, InvalidParams,
         "a drain token serves every app: create it without app"),
        ("drain", "drain", None, None, InvalidParams,
         "token name 'drain' is kept for the token meta makes from GUN_DRAIN_TOKEN: "
         "pick another name"),
    ],
)  # fmt: skip
def test_a_bad_token_is_refused_and_nothing_is_made(
    platform: Platform,
    admin: Principal,
    name: str,
    role: str,
    app: str | None,
    expires: str | None,
    error: type[GunError],
    message: str,
) -> None:
    platform.apps.create(admin, "shop")
    with pytest.raises(error) as e:
        platform.tokens.create(admin, name, role, app, expires)
    assert message in e.value.message
    assert [t.name for t in platform.tokens.live(admin)] == ["admin"]


def test_revoking_refuses_the_last_admin_and_agent_tokens(
    platform: Platform, admin: Principal, store: Store
) -> None:
    with pytest.raises(Conflict) as e:
        platform.tokens.revoke(admin, "admin")
    assert e.value.message == (
        "token 'admin' is the last live admin token: create another admin token first, "
        "or nobody could manage this meta"
    )
    # an admin of one app, or one that expired, is no stand-in
    platform.apps.create(admin, "shop")
    platform.tokens.create(admin, "shop-admin", "admin", "shop")
    platform.tokens.create(admin, "old-admin", "admin", None, "1h")
    expire(store, "old-admin", now() - timedelta(seconds=1))
    with pytest.raises(Conflict):
        platform.tokens.revoke(admin, "admin")
    platform.tokens.revoke(admin, "old-admin")  # an expired admin token may go

    second, _ = platform.tokens.create(admin, "second", "admin", None)
    platform.tokens.revoke(admin, "admin")  # another one remains
    other = platform.tokens.authenticate(second)
    assert "admin" not in [t.name for t in platform.tokens.live(other)]
    with pytest.raises(Conflict, match="token 'second' is the last live admin token"):
        platform.tokens.revoke(other, "second")

    with store.write() as tx:
        app = tx.apps.existing("shop")
        token_id = tx.tokens.insert(
            name="agent i-0a1b2c3d",
            digest=hash_token(new_token()),
            role="viewer",
            app_id=app.id,
            created_by="meta",
            kind="instance",
        )
        tx.instances.insert(
            id="i-0a1b2c3d",
            app_id=app.id,
            layer="default",
            provider="local",
            instance_type=None,
            availability_zone=None,
            token_id=token_id,
        )
    with pytest.raises(InvalidParams) as e:
        platform.tokens.revoke(other, "agent i-0a1b2c3d")
    assert e.value.message == (
        "token 'agent i-0a1b2c3d' is the agent token of instance i-0a1b2c3d: "
        "`gun app:shop instances.delete:i-0a1b2c3d` revokes it"
    )
    with pytest.raises(NotFound) as e:
        platform.tokens.revoke(other, "admin")  # revoked already
    assert e.value.message == "no live token is named 'admin': `gun tokens` lists them"


def test_every_create_and_revoke_is_an_audit_event(
    platform: Platform, admin: Principal, store: Store
) -> None:
    platform.apps.create(admin, "shop")
    platform.tokens.create(admin, "ci", "developer", "shop", "2031-01-31")
    platform.tokens.create(admin, "eyes", "viewer", None)
    platform.tokens.revoke(admin, "ci")
    platform.tokens.revoke(admin, "eyes")
    tail = [a for a in actions(store) if a[2].startswith("token.")][1:]  # after the bootstrap
    assert tail == [
        ("shop", "admin", "token.create",
         {"name": "ci", "role": "developer", "expires_at": "2031-01-31T00:00:00+00:00"}),
        (None, "admin", "token.create", {"name": "eyes", "role": "viewer"}),
        ("shop", "admin", "token.revoke", {"name": "ci", "role": "developer", "kind": "user"}),
        (None, "admin", "token.revoke", {"name": "eyes", "role": "viewer", "kind": "user"}),
    ]  # fmt: skip


def test_only_admins_manage_tokens_and_an_app_admin_only_its_apps(
    platform: Platform, admin: Principal
) -> None:
    platform.apps.create(admin, "shop")
    platform.apps.create(admin, "blog")
    dev = platform.tokens.authenticate(platform.tokens.create(admin, "dev", "developer", None)[0])
    boss = platform.tokens.authenticate(platform.tokens.create(admin, "boss", "admin", "shop")[0])
    platform.tokens.create(admin, "blog-ci", "developer", "blog")
    for call in (
        lambda: platform.tokens.live(dev),
        lambda: platform.tokens.revoke(dev, "blog-ci"),
        lambda: platform.tokens.create(dev, "x", "viewer", None),
    ):
        with pytest.raises(
            Forbidden, match="token 'dev' has role developer; this needs role admin"
        ):
            call()
    platform.tokens.create(boss, "shop-ci", "developer", "shop")
    assert [t.name for t in platform.tokens.live(boss)] == ["boss", "shop-ci"]
    platform.tokens.revoke(boss, "shop-ci")
    with pytest.raises(Forbidden) as e:
        platform.tokens.revoke(boss, "blog-ci")
    assert e.value.message == "token 'boss' is scoped to app 'shop' and cannot reach app 'blog'"
    with pytest.raises(Forbidden, match="cannot reach resources outside its app"):
        platform.tokens.revoke(boss, "dev")
    with pytest.raises(Forbidden, match="cannot reach resources outside its app"):
        platform.tokens.create(boss, "relay", "drain", None)


def test_revoking_two_admins_at_once_leaves_one(platform: Platform, admin: Principal) -> None:
    """Each revocation counts the live admins under a lock: they cannot both see the other."""
    platform.tokens.create(admin, "second", "admin", None)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def revoke(name: str) -> None:
        barrier.wait()
        try:
            platform.tokens.revoke(admin, name)
            outcomes.append("revoked")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=revoke, args=(n,)) for n in ("admin", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["refused", "revoked"]
    assert len([t for t in platform.tokens.live(admin) if t.role == "admin"]) == 1


# the principal cache -------------------------------------------------------------------------


def test_a_revoked_token_is_refused_at_once_here_and_within_half_a_second_elsewhere(
    platform: Platform, admin: Principal, store: Store
) -> None:
    token, _ = platform.tokens.create(admin, "ci", "developer", None)
    replica = Platform(store)  # another meta on the same database
    assert (
        platform.tokens.authenticate(token).name == replica.tokens.authenticate(token).name == "ci"
    )
    platform.tokens.revoke(admin, "ci")
    revoked = time.monotonic()
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        platform.tokens.authenticate(token)  # this process dropped it from its cache
    while True:
        try:
            replica.tokens.authenticate(token)
        except Unauthorized:
            break
        assert time.monotonic() - revoked < 0.5, "the replica still takes a revoked token"
        time.sleep(0.01)


def test_a_token_costs_one_query_per_half_second(
    platform: Platform, admin: Principal, store: Store
) -> None:
    token, _ = platform.tokens.create(admin, "busy", "viewer", None)
    queries: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_: object) -> None:
        if "FROM tokens" in statement:
            queries.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        began = time.monotonic()
        calls = 0
        while time.monotonic() - began < 1.2:
            platform.tokens.authenticate(token)
            calls += 1
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert calls > 100
    assert 2 <= len(queries) <= 4  # at 0 s, 0.5 s and 1.0 s


def test_a_fleet_of_tokens_costs_one_read_of_the_live_tokens_per_half_second(
    platform: Platform, admin: Principal, store: Store
) -> None:
    """1,000 agents each calling every few seconds were a token query per call; now who each
    token is is read once, and which are live once per half second for all of them."""
    tokens = [platform.tokens.create(admin, f"t{n}", "viewer", None)[0] for n in range(40)]
    queries = recorded(store, r"SELECT\b.*\bFROM tokens\b")
    began = time.monotonic()
    while time.monotonic() - began < 1.2:
        for t in tokens:
            assert platform.tokens.authenticate(t).name.startswith("t")
    who = [q for q in queries if "JOIN" in q]
    assert len(who) == 40  # each token's principal, once
    assert 2 <= len(queries) - len(who) <= 4  # the live tokens at 0 s, 0.5 s and 1.0 s


# drain tokens --------------------------------------------------------------------------------


def test_a_drain_token_does_nothing_but_look_up_ingest_tokens(
    store: Store, admin: Principal
) -> None:
    gun = Platform(store, drain_url="http://127.0.0.1:5101")
    gun.apps.create(admin, "shop")
    value, made = gun.tokens.create(admin, "relay", "drain", None)
    assert (made.role, made.kind, made.app) == ("drain", "drain", None)
    drain = gun.tokens.authenticate(value)
    ingest = gun.drains.ingest_url(admin, "shop").rsplit("/", 1)[1]
    assert gun.drains.app_of_ingest_token(drain, ingest) == "shop"
    refused = (
        "token 'relay' is a drain token: it may only look up ingest tokens "
        "(GET /v1/drain/ingest-tokens/TOKEN)"
    )
    for call in (
        lambda: gun.apps.all(drain),
        lambda: gun.config.get(drain, "shop"),
        lambda: gun.tokens.create(drain, "x", "admin", None),
        lambda: gun.tokens.live(drain),
        lambda: gun.drains.ingest_url(drain, "shop"),
        lambda: gun.drains.log_session(drain, "shop"),
        lambda: gun.apps.create(drain, "evil"),
    ):
        with pytest.raises(Forbidden) as e:
            call()
        assert e.value.message == refused
    assert [t.kind for t in gun.tokens.live(admin) if t.name == "relay"] == ["drain"]


def test_meta_keeps_the_drain_token_gun_drain_token_gives(
    platform: Platform, admin: Principal, store: Store
) -> None:
    first = "gun_drain_" + "a" * 40
    assert platform.tokens.ensure_drain_token(first) == "made the drain token GUN_DRAIN_TOKEN gives"
    assert platform.tokens.ensure_drain_token(first) is None  # every later start
    assert platform.tokens.authenticate(first).kind == "drain"
    replaced = "gun_drain_" + "b" * 40
    assert platform.tokens.ensure_drain_token(replaced) == (
        "replaced the drain token with the one GUN_DRAIN_TOKEN gives"
    )
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        platform.tokens.authenticate(first)
    assert [(t.name, t.role) for t in platform.tokens.live(admin)] == [
        ("admin", "admin"),
        ("drain", "drain"),
    ]
    with pytest.raises(UsageError) as e:
        platform.tokens.ensure_drain_token(first)
    assert e.value.message == (
        "GUN_DRAIN_TOKEN is the value of token 'drain', which was revoked: give it a new "
        "value (under gun up: delete DIR/drain.token)"
    )
    admin_value, _ = platform.tokens.create(admin, "root2", "admin", None)
    with pytest.raises(UsageError) as e:
        platform.tokens.ensure_drain_token(admin_value)
    assert e.value.message == (
        "GUN_DRAIN_TOKEN is the value of token 'root2': give the drain a value of its own"
    )
    assert platform.tokens.authenticate(replaced).name == "drain"


def test_replicas_starting_together_keep_one_drain_token(store: Store, admin: Principal) -> None:
    value = "gun_drain_" + "c" * 40
    said: list[str | None] = []
    barrier = threading.Barrier(2)

    def start() -> None:
        replica = Platform(store)
        barrier.wait()
        said.append(replica.tokens.ensure_drain_token(value))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(said, key=str) == [None, "made the drain token GUN_DRAIN_TOKEN gives"]
    live = [t.name for t in Platform(store).tokens.live(admin)]
    assert live == ["admin", "drain"]


# the migration -------------------------------------------------------------------------------


def test_the_migration_renames_live_tokens_that_shared_a_name(store: Store) -> None:
    command.downgrade(alembic_config(store.engine), "0002")
    with store.engine.begin() as conn:
        for n, (name, revoked) in enumerate(
            [("ci", False), ("ci", False), ("ci", True), ("ci", False), ("solo", False)]
        ):
            conn.execute(
                insert(tokens).values(
                    name=name,
                    hash=f"{n:064d}",
                    role="developer",
                    kind="user",
                    revoked=revoked,
                    created_at=now(),
                )
            )
    command.upgrade(alembic_config(store.engine), "head")
    with store.engine.connect() as conn:
        q = select(tokens.c.id, tokens.c.name, tokens.c.revoked).order_by(tokens.c.id)
        rows = conn.execute(q).all()
    ids = [r.id for r in rows]
    assert [(r.name, r.revoked) for r in rows] == [
        ("ci", False),
        (f"ci#{ids[1]}", False),
        ("ci", True),
        (f"ci#{ids[3]}", False),
        ("solo", False),
    ]
    with store.write() as tx, pytest.raises(Conflict):
        tx.tokens.insert(name="solo", digest="f" * 64, role="viewer", app_id=None, created_by="t")
