"""What the drain's hot modules make of a body, for comparing the compiled build with the
sources. `digest(body)` uses whichever modules this process imported; run as
`python -m tests.compiled_oracle DIR`, it loads the build in DIR first (or exits 2), then
answers each line of stdin (a body, base64) with one line of JSON: digest of that body."""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

NOW = 1_800_000_000.0  # "now" for the aggregator: after every time the tests write


def digest(body: bytes) -> dict[str, Any]:
    from gun.logs import aggregate, filters, frames, parse

    try:
        got = frames.read(body)
    except frames.FrameError as e:
        return {"error": e.message}
    rows = parse.parse_lines(got.lines, "p.")
    agg = aggregate.Aggregator("shop", 10, grace=0)
    agg.add_rows(rows.rows, NOW)
    return {
        "lines": [[line.time, line.appname, line.procid, line.msg] for line in got.lines],
        "bad": got.bad,
        "shown": [filters.format_line(line) for line in got.lines],
        "measured": [
            [[m.name, m.source, m.value, m.unit, m.type, m.text] for m in p.measurements]
            + list(p.invalid)
            for p in map(parse.parse, got.lines)
        ],
        "rows": [list(r) for r in rows.rows],
        "invalid": rows.invalid,
        "buckets": [b.json() for b in agg.partial()],
    }


def main(where: str) -> int:
    from pathlib import Path

    from gun import compiled

    runs = compiled.use(Path(where), mode="on")
    digest(b"")  # imports them
    if not compiled.compiled():
        print(f"not compiled: {runs}", file=sys.stderr)
        return 2
    print(runs, flush=True)
    for raw in sys.stdin:
        print(json.dumps(digest(base64.b64decode(raw))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
