"""Layers: named groups of an app's instances and the process types they run (`default`, made
with the app, runs every type)."""

from __future__ import annotations

from collections.abc import Sequence

from gun.core.access import authorize
from gun.core.placing import write_placement
from gun.errors import InvalidParams
from gun.model import ALL_TYPES, Layer, Principal, check_layer_name, check_process_type
from gun.store import Store

DEFAULT_LAYER = Layer("default", None)


class Layers:
    def __init__(self, store: Store) -> None:
        self.store = store

    def all(self, who: Principal, name: str) -> list[Layer]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.layers.of(tx.apps.existing(name).id)

    def set(self, who: Principal, name: str, layer: str, types: Sequence[str]) -> Layer:
        """Make or change a layer: the types it runs (`*`: every type). Processes move."""
        authorize(who, "developer", name)
        check_layer_name(layer)
        if not types:
            raise InvalidParams("types is empty: give process types, e.g. types=web,worker")
        if ALL_TYPES in types:
            new = Layer(layer, None)
        else:
            new = Layer(layer, tuple(dict.fromkeys(check_process_type(t) for t in types)))
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            tx.layers.put(app.id, new)
            write_placement(tx, app)
            tx.events.record(app, who.name, "layer.set", {"layer": layer, "types": list(types)})
        return new
