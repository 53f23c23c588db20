"""The long-poll's wait (gun.api.longpoll): one read of the store serves every waiting long-poll,
after this meta's own changes at once and every interval while any waits (other replicas')."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gun.api.longpoll import Generations
from gun.loops import Loops
from tests.test_loops import log, until


class Store:
    """The apps' generations, as another replica or this meta's writes leave them."""

    def __init__(self) -> None:
        self.generations = {1: 5, 2: 7}
        self.reads = 0
        self.then: Callable[[], None] | None = None  # once, after the next read

    def read(self) -> dict[int, int]:
        self.reads += 1
        got = dict(self.generations)
        then, self.then = self.then, None
        if then is not None:
            then()
        return got


def run(session: Callable[[Store, Generations], Awaitable[None]], every: float = 0.2) -> Store:
    store = Store()

    async def main() -> None:
        generations = Generations(store.read, every)
        loops = Loops(log)
        loops.start("long-poll watch", generations.watch)
        try:
            await session(store, generations)
        finally:
            await loops.stop()

    asyncio.run(main())
    return store


def test_a_change_of_this_meta_wakes_every_waiting_poll_of_its_app_with_one_read() -> None:
    async def session(store: Store, generations: Generations) -> None:
        generations.changed()  # meta's first read, as a start or a write brings
        await until(lambda: generations.known == {1: 5, 2: 7}, "the first read")
        polls = [asyncio.create_task(generations.wait_past(1, 5, 30)) for _ in range(1000)]
        other = asyncio.create_task(generations.wait_past(2, 7, 30))
        await asyncio.sleep(0.05)
        before = store.reads
        store.generations[1] = 6
        loop = asyncio.get_running_loop()
        began = loop.time()
        generations.changed()
        await asyncio.gather(*polls)
        assert loop.time() - began < 0.1
        assert store.reads - before == 1
        assert not other.done()  # its app did not change
        other.cancel()

    run(session, every=10)


def test_another_replicas_change_is_read_within_the_interval_while_a_poll_waits() -> None:
    async def session(store: Store, generations: Generations) -> None:
        loop = asyncio.get_running_loop()
        poll = asyncio.create_task(generations.wait_past(1, 5, 30))
        await asyncio.sleep(0.05)
        store.generations[1] = 6  # no `changed`: another replica committed it
        began = loop.time()
        await poll
        assert loop.time() - began < 0.2 + 0.1

    run(session)


def test_nothing_is_read_while_no_poll_waits_and_nothing_changes() -> None:
    async def session(store: Store, generations: Generations) -> None:
        await asyncio.sleep(0.5)
        assert store.reads == 0
        poll = asyncio.create_task(generations.wait_past(1, 5, 30))
        await until(lambda: store.reads >= 2, "reads while a poll waits")
        poll.cancel()
        await asyncio.sleep(0.3)
        reads = store.reads
        await asyncio.sleep(0.5)
        assert store.reads == reads

    run(session, every=0.1)


def test_a_poll_answers_at_its_time_when_nothing_changes() -> None:
    async def session(store: Store, generations: Generations) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await generations.wait_past(1, 5, 0.3)
        assert 0.3 <= loop.time() - began < 0.5
        began = loop.time()
        await generations.wait_past(1, 5, 0)
        assert loop.time() - began < 0.05

    run(session)


def test_a_change_made_during_a_read_brings_another_read() -> None:
    async def session(store: Store, generations: Generations) -> None:
        def commit() -> None:  # in the read's thread, once it has seen 5
            store.generations[1] = 6
            loop.call_soon_threadsafe(generations.changed)

        loop = asyncio.get_running_loop()
        store.then = commit
        poll = asyncio.create_task(generations.wait_past(1, 5, 30))
        generations.changed()
        await asyncio.wait_for(poll, 1)  # well before the interval
        assert store.reads >= 2

    run(session, every=10)
