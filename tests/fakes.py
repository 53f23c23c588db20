"""Fakes of gun's interfaces for tests that cannot reach the real thing from here."""

from __future__ import annotations

from gun.providers import Made, NewInstance
from gun.providers.ssh import Facts, Ssh


class RecordingProvider:
    """An instance provider that starts nothing: it keeps each new agent's id and credentials."""

    name = "fake"

    def __init__(self) -> None:
        self.made: list[NewInstance] = []

    def create(self, new: NewInstance) -> Made:
        self.made.append(new)
        return Made(f"fake://{new.id}")

    def delete(self, instance_id: str, host: str | None = None) -> str | None:
        return None

    def ids(self) -> list[str]:
        return [m.id for m in self.made]

    def shell(self, instance_id: str) -> list[str]:
        return ["true"]

    def ensure_running(self) -> list[str]:
        return []


def host_facts(ssh: Ssh) -> Facts:
    """A host checker (gun.core.hosts.Checker) that connects nowhere: in-process tests (the
    schema fuzzer among them) may add hosts at any address without ssh leaving the machine."""
    return Facts((3, 11, 7), f"{ssh.target.address} ssh-ed25519 AAAAfake")
