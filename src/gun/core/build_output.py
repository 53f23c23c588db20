"""Build output on its way to the store, in batches on a timer: a step that prints and then
works for minutes shows what it printed at once."""

from __future__ import annotations

import logging
import threading

from gun.store import Store

log = logging.getLogger("gun.build")
FLUSH_SECONDS = 0.25  # build output reaches the store at most this long after it is printed


class OutputBuffer:
    """Build output on its way to the store: written in batches, each at most FLUSH_SECONDS
    after its first text arrived, whether or not more follows (a step that prints and then
    works for minutes shows what it printed at once)."""

    def __init__(self, store: Store, build_id: int) -> None:
        self.store, self.build_id = store, build_id
        self._chunks: list[str] = []
        self._lock = threading.Lock()  # guards _chunks and _timer
        self._writing = threading.Lock()  # one write at a time, so batches stay in order
        self._timer: threading.Timer | None = None

    def line(self, text: str) -> None:
        self.text(text + "\n")

    def text(self, text: str) -> None:
        """Raw output (the start of a line, the rest of it with its newline)."""
        with self._lock:
            self._chunks.append(text)
            if self._timer is None:
                self._timer = threading.Timer(FLUSH_SECONDS, self.close)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        with self._writing:
            with self._lock:
                text, self._chunks = "".join(self._chunks), []
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            if text:
                with self.store.write() as tx:
                    tx.builds.append_output(self.build_id, text)

    def close(self) -> None:
        """Flush what is left, logging (not raising) a failure: for the timer, and the end."""
        try:
            self.flush()
        except Exception:  # the store is away: the build's own next write fails loudly
            log.exception("writing the output of build %s failed", self.build_id)
