"""A bounded load loop for the router's tests: `connections` keep-alive clients on a thread of
their own send GETs at `rate` requests a second in all, for at most `seconds`, and count every
answer's status and every failure (a socket error, a timeout) as the client sees them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx


class Load:
    def __init__(
        self, url: str, host: str, rate: float, connections: int = 4, seconds: float = 120
    ) -> None:
        self.url, self.host, self.rate = url, host, rate
        self.connections, self.seconds = connections, seconds
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the load loop did not stop"

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def failed(self) -> int:
        """Answers that were not 2xx, and requests without an answer."""
        bad = sum(n for status, n in self.statuses.items() if not 200 <= status < 300)
        return bad + sum(self.errors.values())

    async def _client(self) -> None:
        every = self.connections / self.rate
        deadline = time.monotonic() + self.seconds
        async with httpx.AsyncClient(timeout=40) as client:
            due = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    r = await client.get(self.url, headers={"Host": self.host})
                    self.statuses[r.status_code] += 1
                    self.latencies.append(time.monotonic() - sent)
                except httpx.HTTPError as e:
                    self.errors[type(e).__name__] += 1
                due += every
                await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def _run(self) -> None:
        await asyncio.gather(*(self._client() for _ in range(self.connections)))

    def summary(self) -> str:
        return f"{self.sent} requests: statuses {dict(self.statuses)}, errors {dict(self.errors)}"


def main() -> None:
    """`python -m tests.load URL HOST RATE SECONDS`: a load loop in another process (a fleet's
    control namespace), until SIGTERM or SECONDS; its summary as JSON on stdout."""
    import json
    import signal
    import sys

    url, host, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    load = Load(url, host, rate, connections=4, seconds=seconds)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with load:
        done.wait(seconds)
    print(json.dumps({"statuses": load.statuses, "errors": load.errors, "failed": load.failed}))


if __name__ == "__main__":
    main()
