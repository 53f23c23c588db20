"""The base of the store's query groups (`tx.apps`, `tx.releases`, ...): each is a small object
over the transaction's one connection, with the key that opens the secrets it reads."""

from __future__ import annotations

from sqlalchemy import Connection

from gun.crypto import Box


class Queries:
    def __init__(self, conn: Connection, box: Box) -> None:
        self.conn = conn
        self.box = box
