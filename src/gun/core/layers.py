"""Layers: named groups of an app's instances and the process types they run (`default`, made
with the app, runs every type)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from gun.core.access import authorize
from gun.core.placing import write_placement
from gun.errors import Forbidden, InvalidParams
from gun.layersettings import check_provider, parse
from gun.model import ALL_TYPES, Layer, Principal, check_layer_name, check_process_type
from gun.protocol import COMMAND_MAX
from gun.store import Store

DEFAULT_LAYER = Layer("default", None)


class Layers:
    def __init__(self, store: Store) -> None:
        self.store = store

    def all(self, who: Principal, name: str) -> list[Layer]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.layers.of(tx.apps.existing(name).id)

    def set(
        self,
        who: Principal,
        name: str,
        layer: str,
        types: Sequence[str] | None,
        *,
        setup: str | None = None,
        teardown: str | None = None,
        provider: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> Layer:
        """Make or change a layer: the types it runs (`*`: every type; None: as they were, and
        every type for a new layer), its setup and teardown commands (None: as they were;
        empty: none), and the provider of its instances with that provider's settings
        (layersettings.py; each given setting replaces that one). Processes move. Setup and
        teardown run as root on the instances' hosts, whatever app else runs there: only an
        admin of the whole platform sets them."""
        authorize(who, "developer", name)
        check_layer_name(layer)
        root = setup is not None or teardown is not None
        if root and (who.role != "admin" or who.app is not None):
            raise Forbidden(
                f"token {who.name!r} may not set setup or teardown: they run as root on the"
                " hosts, so they need an admin token that is not scoped to an app"
            )
        if types is not None and not types:
            raise InvalidParams("types is empty: give process types, e.g. types=web,worker")
        if provider is not None:
            check_provider(provider)
        wanted: tuple[str, ...] | None = None
        if types is not None and ALL_TYPES not in types:
            wanted = tuple(dict.fromkeys(check_process_type(t) for t in types))
        setup, teardown = _command("setup", setup), _command("teardown", teardown)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            old = tx.layers.get(app.id, layer) or Layer(layer, None)
            new = replace(
                old,
                types=old.types if types is None else wanted,
                setup=old.setup if setup is None else setup or None,
                teardown=old.teardown if teardown is None else teardown or None,
                provider=old.provider if provider is None else provider,
            )
            new = replace(new, settings=parse(new.provider, settings or {}, new.settings))
            if new.provider != "ec2" and new.settings.to_json():
                raise InvalidParams(
                    f"layer {layer} has ec2 settings ({new.settings.shown()}): unset them"
                    " (ami= ...) to give it another provider"
                )
            tx.layers.put(app.id, new)
            write_placement(tx, app)
            said: dict[str, object] = {"layer": layer, "types": list(new.types or ["*"])}
            for what, command in (("setup", setup), ("teardown", teardown)):
                if command is not None:
                    said[what] = command
            if provider is not None:
                said["provider"] = provider
            if settings:
                said["settings"] = dict(settings)
            tx.events.record(app, who.name, "layer.set", said)
        return new


def _command(what: str, command: str | None) -> str | None:
    """A setup or teardown command as given (empty: none); InvalidParams naming it otherwise."""
    if command is None or command == "":
        return command
    if not command.strip():
        raise InvalidParams(f"{what} is only blanks: give a shell command, or {what}= for none")
    if len(command) > COMMAND_MAX:
        raise InvalidParams(f"{what} is {len(command)} characters long: at most {COMMAND_MAX}")
    bad = next((c for c in command if not (c.isprintable() or c in "\n\t")), None)
    if bad is not None:
        raise InvalidParams(f"{what} holds the control character {bad!r}: give a shell command")
    return command
