"""The store: every app's desired state and the instances' reported state, in SQLite or PostgreSQL.

`Store` opens a database and hands out transactions (`Tx`); only `gun.core` uses it.
"""

from gun.store.sql import Store, Tx

__all__ = ["Store", "Tx"]
