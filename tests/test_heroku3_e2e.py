"""heroku3 (PyPI, pinned in pyproject.toml) against a `gun up` of the test's own, unchanged: a
Python script's view of the same session as tests/test_heroku_cli_e2e.py, each step checked
through gun's own `/v1` API. heroku3 sends Basic auth, `Content-Type: application/json`,
`Range: version ..; ;`, and uses an app's UUID where the CLI uses its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.heroku import admin_token, heroku3_client, v1
from tests.up import Up, hello_on_gun

APP = "hello3"


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with hello_on_gun(tmp_path_factory.mktemp("heroku3"), APP) as platform:
        yield platform


@pytest.fixture(scope="module")
def h(up: Up) -> Any:
    return heroku3_client(up.url, admin_token(up))


def web_processes(up: Up) -> list[dict[str, Any]]:
    return [p for p in up.processes(APP) if p["type"] == "web"]


def test_account_and_a_wrong_key(h: Any, up: Up) -> None:
    import requests

    assert h.account().email == "admin@gun"
    assert h.ratelimit_remaining() == 4500
    wrong = heroku3_client(up.url, "gun_no_such_token")
    assert wrong.is_authenticated is False
    with pytest.raises(requests.HTTPError) as e:
        wrong.account()
    assert e.value.response.status_code == 401
    assert e.value.response.json()["id"] == "unauthorized"


def test_create_list_and_delete_an_app(h: Any, up: Up) -> None:
    made = h.create_app(name="made-by-heroku3")  # sends "stack": "cedar", which gun ignores
    assert made.name == "made-by-heroku3"
    assert "made-by-heroku3" in [a["name"] for a in v1(up, "/apps")]
    again = h.create_app(name="made-by-heroku3")  # "Name is already taken": heroku3 fetches it
    assert again.id == made.id
    assert sorted(a.name for a in h.apps()) == sorted([APP, "made-by-heroku3"])
    assert h.app(made.id).name == "made-by-heroku3"  # by UUID
    assert h.app("made-by-heroku3").delete() is True  # by UUID too
    assert "made-by-heroku3" not in [a["name"] for a in v1(up, "/apps")]
    assert [a.name for a in h.apps()] == [APP]


def test_config_set_and_delete(h: Any, up: Up) -> None:
    config = h.app(APP).config()
    config["GREETING"] = "hello there"
    config.update({"COLOR": "blue", "SIZE": "10"})
    assert config.to_dict() == {"GREETING": "hello there", "COLOR": "blue", "SIZE": "10"}
    del config["COLOR"]
    config.update({"SIZE": None})
    assert h.app(APP).config().to_dict() == {"GREETING": "hello there"}
    assert v1(up, f"/apps/{APP}/config-vars") == {"GREETING": "hello there"}


def test_formation_and_scale(h: Any, up: Up) -> None:
    app = h.app(APP)
    formation = {f.type: f for f in app.process_formation()}
    assert {t: (f.quantity, f.command) for t, f in formation.items()} == {
        "web": (1, "python3 web.py"),
        "worker": (0, "python3 worker.py"),
    }
    scaled = formation["web"].scale(2)
    assert (scaled.type, scaled.quantity) == ("web", 2)
    up.until(
        lambda: [p["state"] for p in web_processes(up)] == ["up", "up"], 60, "two web processes"
    )
    app.batch_scale_formation_processes({"web": 1, "worker": 0})
    assert app.scale_formation_process("web", 1).quantity == 1
    up.until(lambda: len(web_processes(up)) == 1, 60, "one web process")


def test_releases_and_rollback(h: Any, up: Up) -> None:
    app = h.app(APP)
    app.config()["STAGE"] = "one"
    app.config()["STAGE"] = "two"
    releases = app.releases()
    versions = [r.version for r in releases]
    assert versions == sorted(versions) and versions[0] == 1  # ascending: heroku3 takes [-1]
    assert [r.version for r in app.releases(sort="desc")] == versions[::-1]
    current, one = versions[-1], versions[-2]
    back = app.rollback(releases[-2].id)  # by UUID
    assert (back.version, back.description) == (current + 1, f"Rollback to v{one}")
    assert v1(up, f"/apps/{APP}/releases/v{current + 1}")["config"]["STAGE"] == "one"
    again = app.rollback(f"v{current}")  # or by version
    assert (again.version, again.description) == (current + 2, f"Rollback to v{current}")
    assert v1(up, f"/apps/{APP}/config-vars")["STAGE"] == "two"


def test_restart_kills_every_dyno(h: Any, up: Up) -> None:
    before = {p["name"]: p["pid"] for p in web_processes(up)}
    app = h.app(APP)
    assert [d.name for d in app.dynos() if d.type == "web"] == sorted(before)
    app.restart()
    up.until(
        lambda: (
            (now := web_processes(up))
            and all(p["state"] == "up" and p["pid"] != before.get(p["name"]) for p in now)
        ),
        60,
        "web processes with new pids",
    )


def test_get_log(h: Any) -> None:
    assert "[web.1]: " in h.app(APP).get_log(lines=50, timeout=10)


def test_domains_and_drains(h: Any) -> None:
    app = h.app(APP)
    assert f"{APP}.localhost" in [d.hostname for d in app.domains()]
    app.create_logdrain("https://logs.example.com/in")
    assert "https://logs.example.com/in" in [d.url for d in app.logdrains()]


def test_run_command(h: Any, up: Up, monkeypatch: pytest.MonkeyPatch) -> None:
    import heroku3.rendezvous  # type: ignore[import-untyped]

    ca = str(up.home / "tls" / "ca.pem")  # heroku3 trusts only its bundled CA file
    original = heroku3.rendezvous.Rendezvous.__init__

    def trusting_gun(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.cert = ca

    monkeypatch.setattr(heroku3.rendezvous.Rendezvous, "__init__", trusting_gun)
    output, dyno = h.app(APP).run_command("echo hi from $DYNO", printout=False)
    assert output.strip().startswith("hi from run.")
    assert dyno.name.startswith("run.")
