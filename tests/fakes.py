"""Fakes of gun's interfaces for tests that cannot reach the real thing from here."""

from __future__ import annotations

from gun.providers import NewInstance


class RecordingProvider:
    """An instance provider that starts nothing: it keeps each new agent's id and credentials."""

    name = "fake"

    def __init__(self) -> None:
        self.made: list[NewInstance] = []

    def create(self, new: NewInstance) -> str:
        self.made.append(new)
        return f"fake://{new.id}"

    def delete(self, instance_id: str) -> None:
        pass

    def ids(self) -> list[str]:
        return [m.id for m in self.made]

    def shell(self, instance_id: str) -> list[str]:
        return ["true"]

    def ensure_running(self) -> list[str]:
        return []
