"""The agent's side of the protocol, without meta: the slices it acts on, the ones it does not
(another protocol's), its cache of the last one, and a refusal it hears from meta."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gun import protocol
from gun.agent import files
from gun.agent.agent import Agent
from gun.agent.config import AgentConfig
from gun.agent.metaclient import Refused

SLICE = protocol.Slice(
    version=1,
    generation=4,
    app="demo",
    instance="i-0a1b2c3d",
    release=2,
    slug=protocol.slug_ref("i-0a1b2c3d", "ab" * 32, 10),
    env={"A": "1"},
    processes=(protocol.DesiredProcess("worker.1", "worker", "sleep 1000", 0),),
    release_phase=None,
    git=None,
    drains=(),
    rollout=protocol.Rollout(drain_seconds=1.0, max_unavailable=1),
    setup=None,
    teardown=None,
)


class FakeMeta:
    """Answers the agent's calls from a script: a value is answered, an exception raised."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, Any]] = []  # method, path, body

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        self.calls.append((method, path, kw.get("body")))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def agent_at(root: Path, meta: FakeMeta, url: str = "http://127.0.0.1:9") -> Agent:
    config = AgentConfig(root=root, meta=url, instance="i-0a1b2c3d", token="t")
    agent = Agent(config)
    agent.meta.call = meta.call  # type: ignore[method-assign]
    return agent


def newer(**changes: Any) -> dict[str, Any]:
    return {**protocol.to_json(SLICE), **changes}


def test_a_slice_of_another_protocol_is_said_once_and_not_acted_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files.save_desired(tmp_path, SLICE)
    meta = FakeMeta(newer(version=2, generation=5, processes="of another shape"))

    async def polls() -> Agent:
        agent = agent_at(tmp_path, meta)
        agent._poll_delay = 0.0
        with caplog.at_level(logging.INFO, logger="gun.agent"):
            for _ in range(3):
                await agent.poll()
        return agent

    agent = asyncio.run(polls())
    assert len(meta.calls) == 3
    assert agent.desired == SLICE  # what it had, from its cache, goes on
    assert not agent.changed.is_set()
    said = "meta sent a slice in protocol 2, which this agent does not speak (it speaks 1)"
    assert [r.getMessage() for r in caplog.records] == [
        f"not acting on the desired state from meta: {said}"
    ]
    assert agent.problem_now() == f"the desired state from meta is not acted on: {said}"
    assert files.load_desired(tmp_path) == SLICE  # the cache is not overwritten either

    # a slice it speaks: acted on, cached, and the problem is gone
    meta.answers = [newer(generation=5)]
    asyncio.run(agent.poll())
    assert agent.desired == protocol.read_slice(newer(generation=5))
    assert agent.changed.is_set()
    assert agent.problem_now() is None
    assert files.load_desired(tmp_path) == agent.desired


def test_the_cache_holds_meta_s_json_and_is_read_as_meta_s_answer_is(tmp_path: Path) -> None:
    files.save_desired(tmp_path, SLICE)
    cached = json.loads((tmp_path / "state" / "desired.json").read_text())
    assert cached == json.loads(json.dumps(protocol.to_json(SLICE)))
    assert files.load_desired(tmp_path) == SLICE
    assert agent_at(tmp_path, FakeMeta(None)).desired == SLICE


@pytest.mark.parametrize(
    ("cached", "why"),
    [
        # what an agent cached before the protocol had versions
        (
            json.dumps({k: v for k, v in protocol.to_json(SLICE).items() if k != "version"}),
            "slice.version: missing",
        ),
        (
            json.dumps(newer(version=2)),
            "meta sent a slice in protocol 2, which this agent does not speak (it speaks 1)",
        ),
        (json.dumps(newer(generation="4")), 'slice.generation: expected a whole number, got "4"'),
        ('{"version": 1, "generat', "it is not JSON"),
        ("\udcff", "it is not JSON"),
    ],
)
def test_a_cache_that_does_not_read_is_said_and_ignored(
    tmp_path: Path, cached: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state" / "desired.json"
    path.parent.mkdir()
    path.write_bytes(cached.encode("utf-8", "surrogateescape"))
    with caplog.at_level(logging.INFO):
        agent = agent_at(tmp_path, FakeMeta(None))
    assert agent.desired is None  # so the first long-poll asks for everything (after=-1)
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring the cached desired state {path} ({why}); asking meta"
    ]


def test_no_cache_is_no_news(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert files.load_desired(tmp_path) is None
    assert caplog.records == []


def test_an_agent_meta_refuses_says_why_and_keeps_trying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(
        {"id": "unsupported_protocol", "message": protocol.refusal(1).replace("1)", "2)")}
    )
    meta = FakeMeta(Refused(400, body))

    async def registering() -> int:
        agent = agent_at(tmp_path, meta)
        with caplog.at_level(logging.INFO, logger="gun.agent"):
            task = asyncio.create_task(agent.register())
            await asyncio.sleep(1.0)  # retries at 0.2, 0.4 s: its usual backoff
            agent.stopping.set()
            await task
        return len(meta.calls)

    assert asyncio.run(registering()) >= 3
    sentence = "agent protocol 1 is not one meta speaks (meta speaks 2)"
    messages = {r.getMessage() for r in caplog.records}
    assert messages == {f"meta refused registration: meta answered 400: {sentence}"}
    assert meta.calls[0] == (
        "POST",
        "/v1/agent/instances/i-0a1b2c3d/register",
        {"version": 1, "address": str(tmp_path), "ip": "127.0.0.1"},  # toward meta: loopback
    )


def test_an_agent_that_cannot_tell_its_ip_registers_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    meta = FakeMeta({})
    url = "http://meta.invalid:9"  # no such name (RFC 6761): no address towards it

    async def registering() -> None:
        agent = agent_at(tmp_path, meta, url)
        with caplog.at_level(logging.INFO, logger="gun.agent"):
            await asyncio.wait_for(agent.register(), 30)

    asyncio.run(registering())
    assert meta.calls == [
        (
            "POST",
            "/v1/agent/instances/i-0a1b2c3d/register",
            {"version": 1, "address": str(tmp_path), "ip": None},
        )
    ]
    [said] = [r.getMessage() for r in caplog.records]
    assert said.startswith(f"cannot tell this host's address towards {url} (")
