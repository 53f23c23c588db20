"""Printing: aligned tables and key/value lines for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def emit_json_line(data: Any) -> None:
    """One JSON document on one line, flushed (for output that follows live)."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")


def pairs(items: Sequence[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in items), default=0)
    for k, v in items:
        sys.stdout.write(f"{(k + ':').ljust(width + 1)} {'' if v is None else v}\n")


def line(text: str) -> None:
    sys.stdout.write(text + "\n")


def note(text: str) -> None:
    """Human commentary: stderr, so stdout stays what scripts read."""
    sys.stderr.write(text + "\n")


def short_time(iso: str | None) -> str:
    return "" if not iso else iso[:19].replace("T", " ")
