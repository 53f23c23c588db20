"""statsd outlet: buckets as statsd lines over UDP, for a statsd server that feeds Graphite.

Keys are `PREFIX.APP.NAME[.SOURCE]` (named as in `paths.py`, so statsd keeps them unchanged).
A bucket is already aggregated, so its additive statistics go as counters (statsd adds up
everything it receives in one flush interval, from every drain, and resets them) and the others
as gauges (statsd keeps the last value and repeats it every flush until it changes). Never
timers: statsd would compute its own statistics over the few values we send.

    bucket            statistic  line                        lands in Graphite (statsd 0.9.0,
                                                             legacyNamespace false) at
    count#signup      sum        gun.demo.signup:3|c         stats.counters.gun.demo.signup.count
                                                             (and .rate, per second)
    sample#mem        last       gun.demo.mem:21.5|g         stats.gauges.gun.demo.mem
    unique#user       unique     gun.demo.user:4|g           stats.gauges.gun.demo.user
    measure#db.query  count      gun.demo.db.query:2|c       stats.counters.gun.demo.db.query.count
                      sum        gun.demo.db.query.sum:24|c  ...db.query.sum.count
                      min, max, mean, median, p95, p99
                                 gun.demo.db.query.min:12|g  stats.gauges.gun.demo.db.query.min

So the mean over any period is sum/count of the two counters, also across drains; min, max and
the percentiles are those of the last bucket received (two drains sending the same series in
one flush: the last one wins). A negative gauge is sent as `k:0|g` then `k:-5|g` in the same
datagram, since a signed gauge value is a delta in statsd. Non-finite values are not sent.
statsd stamps values with its flush time, not the bucket's time. A bucket handed out again
because late measurements changed it sends what its counters grew by, and its gauges anew.

Lines are packed into datagrams of at most `max_datagram` bytes (a longer line goes alone),
separated by `\\n`, and sent on a non-blocking UDP socket: a send that fails (refused, buffer
full, too long, unresolvable host) is counted in `errors` and the datagram dropped.
The host is resolved once, at the first emit that has something to send (give an address
to never wait on DNS).
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Iterable, Iterator, Sequence

from gun.logs.model import Bucket
from gun.logs.outlets.paths import series_path, stat_values

log = logging.getLogger(__name__)

# Statistics statsd should add up (counters); all others are gauges.
_COUNTED = ("count", "sum")


def number(value: float) -> str:
    """12.0 -> `12`, 0.25 -> `0.25`: as short as the value allows."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def lines(prefix: str, bucket: Bucket) -> Iterator[str]:
    """The statsd lines of one bucket; a negative gauge yields its two lines as one string.
    A bucket handed out again (late measurements: `previous`) sends its counters' growth."""
    key = series_path(prefix, bucket.key)
    before = dict(stat_values(bucket.previous)) if bucket.previous is not None else {}
    for stat, value in stat_values(bucket):
        if stat in _COUNTED:
            value -= before.get(stat, 0.0)
        if not math.isfinite(value):
            continue
        name = f"{key}.{stat}" if bucket.key.type == "measure" and stat != "count" else key
        if stat in _COUNTED:
            yield f"{name}:{number(value)}|c"
        elif value < 0:
            yield f"{name}:0|g\n{name}:{number(value)}|g"
        else:
            yield f"{name}:{number(value)}|g"


def datagrams(texts: Iterable[str], limit: int) -> Iterator[bytes]:
    """Join lines with `\\n` into payloads of at most `limit` bytes (a longer line goes alone)."""
    batch = b""
    for text in texts:
        line = text.encode()
        if batch and len(batch) + 1 + len(line) > limit:
            yield batch
            batch = b""
        batch = batch + b"\n" + line if batch else line
    if batch:
        yield batch


class StatsdOutlet:
    """Sends buckets to a statsd server over UDP (mapping in the module docstring)."""

    def __init__(self, host: str, port: int, prefix: str = "gun", max_datagram: int = 1400) -> None:
        self.host = host
        self.port = port
        self.prefix = prefix
        self.max_datagram = max_datagram
        self.errors = 0
        self.sent = 0  # datagrams
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        """A non-blocking UDP socket connected to the server (so refusals are reported)."""
        if self._sock is None:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_DGRAM
            )[0]
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                sock.connect(address)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def emit(self, buckets: Sequence[Bucket]) -> None:
        texts = (line for bucket in buckets for line in lines(self.prefix, bucket))
        payloads = list(datagrams(texts, self.max_datagram))
        if not payloads:
            return
        failed: list[OSError] = []
        try:
            sock = self._socket()
        except OSError as e:  # unresolvable host: drop this emit's datagrams, retry next time
            failed = [e] * len(payloads)
        else:
            for payload in payloads:
                try:
                    sock.send(payload)
                    self.sent += 1
                except OSError as e:
                    failed.append(e)
        if failed:
            self.errors += len(failed)
            log.warning(
                "statsd outlet: %d of %d datagrams to %s:%s dropped: %s",
                len(failed),
                len(payloads),
                self.host,
                self.port,
                failed[-1],
            )

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
