"""Who may use the drain, judged on the path as sent and the token's exact form (pure): tables
of what a hostile sender tries, and properties over any path and any Authorization value; and
which of meta's answers the drain believes."""

from __future__ import annotations

import base64
import secrets
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.core import Platform
from gun.errors import Forbidden, GunError, Unauthorized, Unavailable
from gun.logs.access import (
    INVALID_INGEST,
    NO_INGEST,
    NO_USER,
    UNKNOWN_USER,
    ingest_token,
    is_ingest_path,
    is_ingest_token,
    read_route,
    user_token,
)
from gun.logs.meta import No, app_in_answer, read_answer
from gun.model import Principal

TOKEN = "gdi_" + "A" * 16 + "b-_9" * 4
ALPHABET = string.ascii_letters + string.digits + "-_"


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


@pytest.mark.parametrize(
    "path",
    [
        b"/logs/..%2F..%2Fapps%2Fbeta%2Fstatus",  # the reproductions
        b"/logs/../../apps/beta/status",
        b"/logs/%2e%2e/%2e%2e/apps/beta/status",
        b"/logs/%2E%2E%2F%2E%2E%2Fv1%2Fapps%2Fbeta",
        b"/logs/",
        b"/logs//" + TOKEN.encode(),
        b"/logs/" + TOKEN.encode() + b"/",
        b"/logs/" + TOKEN.encode() + b"/extra",
        b"/logs/" + TOKEN.encode() + b"/../../apps/beta/status",
        b"/logs/" + TOKEN.encode() + b";x=1",
        b"/logs/" + TOKEN.encode() + b"%00",
        b"/logs/" + TOKEN.encode() + b"%2F",
        b"/logs/" + TOKEN.encode() + b"A",  # 33 characters
        b"/logs/" + TOKEN[:-1].encode(),  # 31
        b"/logs/" + TOKEN[:-1].encode() + b"%41",  # "A", percent-encoded
        b"/logs/%67" + TOKEN[1:].encode(),  # the real token, its "g" percent-encoded
        b"/logs/gdi_" + b"\\" * 32,
        b"/logs/gdi_" + b"." * 32,
        b"/logs/gdi_" + b"%C3%A9" * 8,
        b"/logs/gdi_" + "é".encode() * 16,
        b"/logs/GDI_" + TOKEN[4:].encode(),
        b"/logs/gun_" + TOKEN[4:].encode(),  # a user token's prefix
        b"/logs/" + b"a" * 40_000,
    ],
)
def test_a_path_that_is_not_exactly_logs_slash_token_is_an_invalid_token(path: bytes) -> None:
    assert is_ingest_path(path)
    with pytest.raises(Forbidden) as e:
        ingest_token(path, basic("", TOKEN))  # a good password does not save a bad path
    assert e.value.message == INVALID_INGEST


@pytest.mark.parametrize(
    "path", [b"//logs/" + TOKEN.encode(), b"/logs%2F" + TOKEN.encode(), b"/logsx", b"/Logs", b"/"]
)
def test_what_is_not_under_logs_is_not_the_ingest_door(path: bytes) -> None:
    assert not is_ingest_path(path)


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        (b"", None),
        (b"Bearer " + TOKEN.encode(), None),  # ingest takes Basic only
        (b"Basic ", None),
        (basic("", ""), None),
        (basic("user", ""), None),
        (basic("", TOKEN), TOKEN),
        (basic("heroku", TOKEN), TOKEN),
        (b"basic " + base64.b64encode(f":{TOKEN}".encode()), TOKEN),
        (basic("", "../../apps/beta/status"), "bad"),
        (basic("", TOKEN + "/x"), "bad"),
        (basic("", TOKEN + "\n"), "bad"),
        (basic("", "gdi_" + "a" * 40_000), "bad"),
        (b"Basic !!!not-base64", "bad"),
        (b"Basic " + base64.b64encode(b":\xff\xfe"), "bad"),
        (b"Basic " + b"A" * 2000, "bad"),
    ],
)
def test_at_logs_the_token_is_the_basic_password(authorization: bytes, token: str | None) -> None:
    if token is None:
        with pytest.raises(Unauthorized) as no:
            ingest_token(b"/logs", authorization)
        assert no.value.message == NO_INGEST
    elif token == "bad":
        with pytest.raises(Forbidden) as bad:
            ingest_token(b"/logs", authorization)
        assert bad.value.message == INVALID_INGEST
    else:
        assert ingest_token(b"/logs", authorization) == token


@given(st.binary(max_size=80))
def test_any_path_gives_a_token_of_the_exact_form_or_the_one_refusal(rest: bytes) -> None:
    path = b"/logs/" + rest
    try:
        token = ingest_token(path, b"")
    except Forbidden as e:
        assert e.message == INVALID_INGEST
        assert not is_ingest_token(rest.decode("latin-1"))
    else:
        assert path == b"/logs/" + token.encode()
        assert len(token) == 36 and set(token[4:]) <= set(ALPHABET)


@given(st.binary(max_size=3000))
def test_any_authorization_gives_a_token_or_one_of_two_refusals(authorization: bytes) -> None:
    try:
        token = ingest_token(b"/logs", authorization)
    except GunError as e:
        assert (type(e), e.message) in {(Forbidden, INVALID_INGEST), (Unauthorized, NO_INGEST)}
    else:
        assert is_ingest_token(token)


@given(st.text(ALPHABET, min_size=32, max_size=32))
def test_every_token_of_the_form_is_taken_from_the_path_and_the_password(rest: str) -> None:
    token = "gdi_" + rest
    assert ingest_token(b"/logs/" + token.encode(), b"") == token
    assert ingest_token(b"/logs", basic("", token)) == token


@given(st.binary(min_size=24, max_size=24))
def test_tokens_made_as_meta_makes_them_have_the_form(random: bytes) -> None:
    token = "gdi_" + base64.urlsafe_b64encode(random).decode().rstrip("=")
    assert is_ingest_token(token)
    assert not is_ingest_token(token + "\n") and not is_ingest_token(token[:-1])


def test_the_ingest_tokens_meta_hands_out_have_the_form(
    platform: Platform, admin: Principal
) -> None:
    platform.shipping.drain_url = "http://127.0.0.1:5101"
    for n in range(20):
        platform.apps.create(admin, f"app-{n}")
        url = platform.drains.ingest_url(admin, f"app-{n}")
        assert is_ingest_token(url.rsplit("/", 1)[1]), url
    assert is_ingest_token("gdi_" + secrets.token_urlsafe(24))


@pytest.mark.parametrize(
    ("path", "route"),
    [
        (b"/v1/apps/shop/logs", ("shop", "logs")),
        (b"/v1/apps/shop/logs/tail", ("shop", "logs/tail")),
        (b"/v1/apps/shop/metrics", ("shop", "metrics")),
        (b"/v1/apps/%73hop/logs", None),
        (b"/v1/apps/shop/../beta/logs", None),
        (b"/v1/apps/shop%2F..%2Fbeta/logs", None),
        (b"/v1/apps/shop/logs/", None),
        (b"/v1/apps/shop/logs;x", None),
        (b"/v1/apps/Shop/logs", None),
        (b"/v1/apps/s/logs", None),
        (b"/v1/apps/" + b"a" * 31 + b"/logs", None),
        (b"//v1/apps/shop/logs", None),
    ],
)
def test_the_reading_routes_are_exact(path: bytes, route: tuple[str, str] | None) -> None:
    assert read_route(path) == route


@pytest.mark.parametrize(
    ("authorization", "outcome"),
    [
        (b"Bearer gun_abc", "gun_abc"),
        (b"bearer  gun_abc ", "gun_abc"),
        (b"", NO_USER),
        (b"Bearer ", NO_USER),
        (basic("", "gun_abc"), NO_USER),
        (b"Bearer " + b"a" * 513, UNKNOWN_USER),
        (b"Bearer gun_a b", UNKNOWN_USER),
        (b"Bearer gun_\x7f", UNKNOWN_USER),
        (b"Bearer gun_\xc3\xa9", UNKNOWN_USER),
    ],
)
def test_a_user_token_is_a_bearer_token_of_visible_ascii(
    authorization: bytes, outcome: str
) -> None:
    if outcome.startswith("gun_"):
        assert user_token(authorization) == outcome
    else:
        with pytest.raises(Unauthorized) as e:
            user_token(authorization)
        assert e.value.message == outcome


NOT_FOUND = b'{"id": "not_found", "message": "no app has this ingest token"}'


@pytest.mark.parametrize(
    ("status", "body", "app"),
    [
        (200, b'{"app": "beta"}', "beta"),
        (404, NOT_FOUND, None),
        (200, b'{"app": "beta", "release": 3}', "wrongly"),  # /v1/apps/beta/status, say
        (200, b'{"app": "../beta"}', "wrongly"),
        (200, b'{"app": "Beta"}', "wrongly"),
        (200, b'{"app": 7}', "wrongly"),
        (200, b'{"name": "beta"}', "wrongly"),
        (200, b'["beta"]', "wrongly"),
        (200, b"beta", "wrongly"),
        (200, b"", "wrongly"),
        (404, b"Not Found", "wrongly"),  # not meta's 404
        (401, b'{"id": "unauthorized", "message": "x"}', "wrongly"),
        (403, b'{"id": "forbidden", "message": "x"}', "wrongly"),
        (500, b"Internal Server Error", "wrongly"),
        (302, b"", "wrongly"),
    ],
)
def test_the_drain_believes_only_metas_two_answers_about_an_ingest_token(
    status: int, body: bytes, app: str | None
) -> None:
    if app == "wrongly":
        with pytest.raises(Unavailable) as e:
            app_in_answer(status, body)
        assert e.value.message.startswith(f"meta answered wrongly (HTTP {status})")
    else:
        assert app_in_answer(status, body) == app


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"url": "http://127.0.0.1:5101"}', None),
        (401, b"", No(401, UNKNOWN_USER)),
        (403, b"", No(403, "this token may not read the logs of app 'shop'")),
        (404, b"", No(404, "this token may not read the logs of app 'shop'")),
        (200, b'{"app": "shop"}', "wrongly"),
        (200, b"ok", "wrongly"),
        (500, b"", "wrongly"),
    ],
)
def test_the_drain_believes_only_metas_answers_about_reading(
    status: int, body: bytes, outcome: No | None | str
) -> None:
    if outcome == "wrongly":
        with pytest.raises(Unavailable):
            read_answer(status, body, "shop")
    else:
        assert read_answer(status, body, "shop") == outcome
