"""The SQL statements a test sees run against a store."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event

from gun.store import Store


def recorded(store: Store, pattern: str) -> list[str]:
    """Every statement run against `store` from now on that `pattern` matches at its start
    (a list that grows)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if re.match(r"\s*" + pattern, statement, re.S):
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    return seen
