"""The stock `heroku` CLI (npm, pinned in tests/heroku.py) against a `gun up` of the test's own,
unchanged: what a user types and what they read, and that the app really changed (gun's own
`/v1` API says so). An app deployed from examples/hello by gun's CLI (the heroku CLI has no
`builds:create`) is the one scaled, restarted and rolled back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.heroku import HerokuCLI, admin_token, v1
from tests.up import Up, hello_on_gun

APP = "hello"


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with hello_on_gun(tmp_path_factory.mktemp("heroku-cli"), APP) as platform:
        yield platform


@pytest.fixture(scope="module")
def heroku(up: Up) -> HerokuCLI:
    ca = up.home / "tls" / "ca.pem"  # the rendezvous listener's, for `heroku run`
    return HerokuCLI(up.url, admin_token(up), ca=ca if ca.exists() else None)


def web_processes(up: Up) -> list[dict[str, Any]]:
    return [p for p in up.processes(APP) if p["type"] == "web"]


def test_whoami_names_the_token_and_a_wrong_token_is_refused(heroku: HerokuCLI) -> None:
    r = heroku("auth:whoami")
    assert (r.code, r.out) == (0, "admin@gun\n")
    wrong = heroku("auth:whoami", HEROKU_API_KEY="gun_no_such_token")
    assert wrong.code == 2
    assert "Error: the API token is unknown or revoked" in wrong.err
    assert "Error ID: unauthorized" in wrong.err


def test_create_list_and_destroy_an_app(heroku: HerokuCLI, up: Up) -> None:
    r = heroku("apps:create", "made-by-heroku")
    assert r.code == 0, r.err
    assert r.out.startswith("http://made-by-heroku.localhost/ | ")
    assert "Creating made-by-heroku... done" in r.err
    assert "made-by-heroku" in [a["name"] for a in v1(up, "/apps")]

    again = heroku("apps:create", "made-by-heroku")
    assert again.code == 2
    assert "Name is already taken" in again.err

    listed = heroku.ok("apps")
    assert listed.startswith("=== admin@gun Apps\n\n")
    assert f"\n{APP} (local)\n" in listed and "\nmade-by-heroku (local)\n" in listed

    gone = heroku("apps:destroy", "made-by-heroku", "--confirm", "made-by-heroku")
    assert gone.code == 0, gone.err
    assert "Destroying made-by-heroku (including all add-ons)... done" in gone.err
    assert "made-by-heroku" not in [a["name"] for a in v1(up, "/apps")]
    assert "made-by-heroku" not in heroku.ok("apps")


def test_apps_info(heroku: HerokuCLI) -> None:
    out = heroku.ok("apps:info", "-a", APP)
    assert out.startswith(f"=== {APP}\n")
    assert re.search(r"^Region: +local$", out, re.M)
    assert re.search(r"^Stack: +gun$", out, re.M)
    assert re.search(rf"^Web URL: +http://{APP}\.localhost/$", out, re.M)


def test_info_of_an_app_that_does_not_exist_exits_2_with_gun_s_message(heroku: HerokuCLI) -> None:
    r = heroku("apps:info", "-a", "nosuchapp")
    assert r.code == 2
    assert "Error: app 'nosuchapp' does not exist" in r.err
    assert "Error ID: not_found" in r.err


def test_config_set_unset_and_list(heroku: HerokuCLI, up: Up) -> None:
    r = heroku("config:set", "GREETING=hello there", "COLOR=blue", "-a", APP)
    assert r.code == 0, r.err
    assert r.out == "COLOR:    blue\nGREETING: hello there\n"
    assert re.search(rf"Setting GREETING, COLOR and restarting {APP}\.\.\. done, v\d+", r.err)
    assert v1(up, f"/apps/{APP}/config-vars") == {"GREETING": "hello there", "COLOR": "blue"}

    r = heroku("config:unset", "COLOR", "-a", APP)
    assert r.code == 0, r.err
    assert re.search(rf"Unsetting COLOR and restarting {APP}\.\.\. done, v\d+", r.err)
    assert heroku.ok("config", "-a", APP) == f"=== {APP} Config Vars\n\nGREETING: hello there\n"
    assert v1(up, f"/apps/{APP}/config-vars") == {"GREETING": "hello there"}


def test_scale_web_to_two_runs_two_web_processes(heroku: HerokuCLI, up: Up) -> None:
    r = heroku("ps:scale", "web=2", "-a", APP)
    assert r.code == 0, r.err
    assert "Scaling dynos... done, now running web at 2:standard-1X" in r.err
    up.until(
        lambda: [p["state"] for p in web_processes(up)] == ["up", "up"], 60, "two web processes"
    )
    r = heroku("ps:scale", "web=1", "-a", APP)
    assert "now running web at 1:standard-1X" in r.err
    up.until(lambda: len(web_processes(up)) == 1, 60, "one web process")


def test_ps_lists_the_running_processes(heroku: HerokuCLI) -> None:
    out = heroku.ok("ps", "-a", APP)
    assert re.search(r"^=== web \(standard-1X\): python3 web\.py \(1\)$", out, re.M)
    assert re.search(r"^web\.1: up ", out, re.M)


def test_restart_restarts_the_processes(heroku: HerokuCLI, up: Up) -> None:
    before = {p["name"]: p["pid"] for p in web_processes(up)}
    r = heroku("ps:restart", "-a", APP)
    assert r.code == 0, r.err
    assert f"Restarting all dynos on {APP}... done" in r.err
    up.until(
        lambda: (
            (now := web_processes(up))
            and all(p["state"] == "up" and p["pid"] != before.get(p["name"]) for p in now)
        ),
        60,
        "web processes with new pids",
    )


def test_releases_and_rollback(heroku: HerokuCLI, up: Up) -> None:
    heroku.ok("config:set", "STAGE=one", "-a", APP)
    heroku.ok("config:set", "STAGE=two", "-a", APP)
    current = v1(up, f"/apps/{APP}/releases?limit=1")[0]["version"]
    one = current - 1

    listed = heroku.ok("releases", "-a", APP)
    assert listed.startswith(f"=== {APP} Releases - Current: v{current}\n")
    rows = [line.split() for line in listed.splitlines() if re.match(r"\s+v\d+ ", line)]
    assert [row[0] for row in rows] == [f"v{v}" for v in range(current, 0, -1)]
    assert rows[0][1:5] == ["Set", "STAGE", "config", "vars"]
    assert rows[-1][1:3] == ["Initial", "release"]

    r = heroku("releases:rollback", "-a", APP)  # to the one before the current
    assert r.code == 0, r.err
    assert f"Rolling back {APP} to v{one}... done, v{current + 1}" in r.err
    made = v1(up, f"/apps/{APP}/releases/v{current + 1}")
    assert made["description"] == f"Rollback to v{one}"
    assert made["config"] == v1(up, f"/apps/{APP}/releases/v{one}")["config"]
    assert v1(up, f"/apps/{APP}/config-vars")["STAGE"] == "one"

    r = heroku("releases:rollback", f"v{current}", "-a", APP)
    assert f"Rolling back {APP} to v{current}... done, v{current + 2}" in r.err
    assert v1(up, f"/apps/{APP}/config-vars")["STAGE"] == "two"
    info = heroku.ok("releases:info", "v2", "-a", APP)
    assert info.startswith("=== Release v2\n")


def test_logs_shows_the_app_s_lines(heroku: HerokuCLI) -> None:
    out = heroku.ok("logs", "-n", "50", "-a", APP)
    assert re.search(r"app\[web\.1\]: ", out)


def test_logs_tail_shows_the_backlog_and_stays_open(heroku: HerokuCLI) -> None:
    out = heroku.until("logs", "--tail", "-a", APP, seen="[web.1]: ", timeout=30)
    assert re.search(r"(app|heroku)\[web\.1\]: ", out)


def test_domains_lists_the_default_hostname(heroku: HerokuCLI) -> None:
    out = heroku.ok("domains", "-a", APP)
    assert f"{APP}.localhost" in out


def test_drains_add(heroku: HerokuCLI, up: Up) -> None:
    r = heroku("drains:add", "https://logs.example.com/in", "-a", APP)
    assert r.code == 0, r.err
    assert "Successfully added drain https://logs.example.com/in" in r.out
    assert "https://logs.example.com/in" in heroku.ok("drains", "-a", APP)


def test_run_gives_back_the_exit_code(heroku: HerokuCLI) -> None:
    r = heroku("run", "-x", "exit 3", "-a", APP)
    assert r.code == 3, r.err
    echoed = heroku("run", "-x", "echo hi from $DYNO", "-a", APP)
    assert echoed.code == 0, echoed.err
    assert re.search(r"hi from run\.\d+", echoed.out)
