"""The agent's lease (gun.agent.lease): a table of histories, then a model of meta and the
network in which no history lets a fenced process run where meta may have placed it elsewhere.

Times are seconds on the agent's clock; the lease is meta's GUN_INSTANCE_TIMEOUT=6: the agent
may run its processes for keep = 6 - 2 (grace) - 1 (margin) = 3 s after it sent the last
heartbeat meta acknowledged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gun.agent.fence import heartbeat
from gun.agent.lease import Lease
from gun.core.slices import lease_terms
from gun.protocol import Lease as Terms

TERMS = Terms(timeout=6.0, grace=2.0, margin=1.0)


def renewed(sent: float, acked: float, lease: Lease | None = None) -> Lease:
    return (lease or Lease()).renew(TERMS, sent, acked)


def test_a_new_agent_is_fenced_until_meta_is_heard_and_a_slice_asked_for_since_arrives() -> None:
    lease = Lease()
    assert (lease.held(TERMS, 0.0), lease.may_run(TERMS, 0.0)) == (False, False)
    lease = renewed(10.0, 10.1)
    assert lease == Lease(renewed=10.0, since=10.1, fenced=True)
    assert lease.held(TERMS, 10.1) and not lease.may_run(TERMS, 10.1)
    # a slice asked for before the acknowledgement arrived may be from before a move
    assert lease.sliced(TERMS, asked=10.05, now=10.2).fenced
    fresh = lease.sliced(TERMS, asked=10.1, now=10.2)
    assert fresh.may_run(TERMS, 10.2)


@pytest.mark.parametrize(
    ("now", "runs"),
    [(10.0, True), (12.999, True), (13.0, False), (20.0, False)],
)
def test_it_runs_until_keep_after_the_last_acknowledged_heartbeat_was_sent(
    now: float, runs: bool
) -> None:
    lease = renewed(10.0, 10.5).sliced(TERMS, asked=10.5, now=10.6)
    assert lease.may_run(TERMS, now) is runs
    assert lease.lapses_at(TERMS) == 13.0


def test_heartbeats_without_a_gap_keep_it_running_without_a_new_slice() -> None:
    lease = renewed(0.0, 0.1).sliced(TERMS, 0.1, 0.2)
    for t in range(2, 40, 2):  # one every 2 s, each answered in 0.5 s
        lease = lease.renew(TERMS, float(t), t + 0.5)
        assert lease.may_run(TERMS, t + 0.5)
    assert lease.since == 0.1


def test_after_a_gap_it_is_fenced_even_once_heard_again() -> None:
    lease = renewed(0.0, 0.1).sliced(TERMS, 0.1, 0.2)
    lease = lease.check(TERMS, 3.0)  # partitioned: the lease lapses at 3.0
    assert lease.fenced and not lease.may_run(TERMS, 3.0)
    lease = lease.renew(TERMS, 9.0, 9.2)  # healed
    assert lease.held(TERMS, 9.2) and not lease.may_run(TERMS, 9.2)
    assert lease.since == 9.2
    # a gap seen only at the renewal (no check ran in it) fences just the same
    quiet = renewed(0.0, 0.1).sliced(TERMS, 0.1, 0.2).renew(TERMS, 9.0, 9.2)
    assert quiet.fenced and quiet.since == 9.2
    assert quiet.sliced(TERMS, 9.2, 9.3).may_run(TERMS, 9.3)


def test_a_late_answer_renews_nothing() -> None:
    lease = renewed(10.0, 10.1).sliced(TERMS, 10.1, 10.2)
    assert lease.renew(TERMS, 9.0, 10.3) == lease  # an older heartbeat answered late
    slow = lease.renew(TERMS, 12.0, 15.5)  # answered after the lease it would give ran out
    assert slow.renewed == 12.0 and not slow.held(TERMS, 15.5) and slow.fenced


def test_a_slice_that_arrives_after_the_lease_lapsed_lets_nothing_run() -> None:
    lease = renewed(10.0, 10.1)
    assert lease.sliced(TERMS, asked=10.2, now=13.5).fenced


# -- a model: meta, a network that delays and drops, and the agent ---------------------------


@dataclass(frozen=True)
class Heartbeat:
    sent: float
    to_meta: float | None  # seconds on the way to meta; None: lost
    back: float | None  # seconds the acknowledgement takes back; None: lost


@dataclass(frozen=True)
class Ask:
    asked: float
    to_meta: float | None
    back: float | None


def lost_at(heard: list[float], timeout: float) -> float:
    """When meta first may mark the instance lost (and place its process elsewhere): `timeout`
    after a heartbeat, with none heard in between (it heard the registration at 0)."""
    last = 0.0
    for t in sorted(heard):
        if t >= last + timeout:
            break
        last = max(last, t)
    return last + timeout


# mostly quick, sometimes slow, sometimes lost
DELAY = st.one_of(st.floats(0.0, 0.3), st.floats(0.0, 0.3), st.floats(0.0, 8.0), st.none())


@st.composite
def histories(draw: st.DrawFn) -> tuple[Terms, list[Heartbeat], list[Ask]]:
    """Heartbeats every few tenths to a few seconds, slices asked for soon after some of them,
    and a partition that loses everything sent within it."""
    terms = lease_terms("ssh", draw(st.sampled_from([1.0, 6.0, 30.0])))
    assert terms is not None
    scale = terms.timeout / 6
    start = draw(st.floats(0.0, 20.0)) * scale
    cut = (start, start + draw(st.floats(0.0, 15.0)) * scale)

    def sent(t: float) -> tuple[float | None, float | None]:
        if cut[0] <= t < cut[1]:
            return None, None
        there, back = draw(DELAY), draw(DELAY)
        return (there * scale if there is not None else None), (
            back * scale if back is not None else None
        )

    beats, asks, t = [], [], 0.0
    for gap in draw(st.lists(st.floats(0.1, 3.0), min_size=1, max_size=40)):
        t += gap * scale
        beats.append(Heartbeat(t, *sent(t)))
        if draw(st.booleans()):
            at = t + draw(st.floats(0.0, 2.0)) * scale
            asks.append(Ask(at, *sent(at)))
    return terms, beats, asks


@settings(max_examples=1500, deadline=None)
@given(histories())
def test_no_history_runs_a_process_where_meta_may_have_placed_it_elsewhere(
    history: tuple[Terms, list[Heartbeat], list[Ask]],
) -> None:
    terms, beats, asks = history
    heard = [b.sent + b.to_meta for b in beats if b.to_meta is not None]
    lost = lost_at(heard, terms.timeout)
    # what reaches the agent, in order: acknowledgements and slices (a slice shows the process
    # while meta served it before it marked the instance lost)
    arrivals: list[tuple[float, str, float, bool]] = []
    for b in beats:
        if b.to_meta is not None and b.back is not None:
            arrivals.append((b.sent + b.to_meta + b.back, "ack", b.sent, True))
    for a in asks:
        if a.to_meta is not None and a.back is not None:
            served = a.asked + a.to_meta
            arrivals.append((served + a.back, "slice", a.asked, served < lost))
    arrivals.sort()
    lease, shows, ran = Lease(), True, False  # the cached slice is from before the partition
    last_asked = -math.inf  # the agent asks for one slice at a time: an older answer is dropped
    for now, kind, at, slice_shows in arrivals:
        for u in (now, lost, math.nextafter(lost, math.inf)):
            if u > now:
                continue
            running = shows and lease.may_run(terms, u)
            if running:  # the lease is meta's last heartbeat too: it cannot be lost before
                assert lease.renewed is not None
                stopped = lease.renewed + terms.keep + terms.grace + terms.margin
                assert stopped <= lost + 1e-9  # (rounding)
            assert not (running and u >= lost), "runs where meta may have placed it elsewhere"
        if kind == "ack":
            lease = lease.renew(terms, at, now)
        elif at > last_asked:
            lease, shows, last_asked = lease.sliced(terms, at, now), slice_shows, at
        running = shows and lease.may_run(terms, now)
        ran = ran or running
        assert not (running and now >= lost), "runs where meta may have placed it elsewhere"
    event(f"ran: {ran}, lost within the history: {lost < arrivals[-1][0] if arrivals else False}")


@pytest.mark.parametrize(
    ("timeout", "news", "expected"),
    [
        (30.0, True, (2.0, 10.0)),  # keep 17 s: something new goes every 2 s
        (30.0, False, (17 / 3, 10.0)),  # nothing new: three heartbeats per lease are enough
        (6.0, True, (1.0, 3.0)),  # keep 3 s: a third of it, even with something new
        (6.0, False, (1.0, 3.0)),
    ],
)
def test_heartbeats_come_three_per_lease_when_nothing_is_new(
    timeout: float, news: bool, expected: tuple[float, float]
) -> None:
    terms = lease_terms("ssh", timeout)
    assert terms is not None
    every, limit = heartbeat(terms, 2.0, news, draw=lambda: 0.0)
    assert (every, limit) == pytest.approx(expected)
    # idle ones are drawn from the last quarter before, so that agents do not beat together
    soonest, _ = heartbeat(terms, 2.0, news, draw=lambda: 1.0)
    assert soonest == pytest.approx(expected[0] if news else expected[0] * 0.75)
    # an instance on meta's own machine (provider local) has no lease: every 2 s, as it was
    assert heartbeat(lease_terms("local", timeout), 2.0, news) == (2.0, None)
