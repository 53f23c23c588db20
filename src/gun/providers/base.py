"""The InstanceProvider interface: create, delete, list and open a shell on instances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gun.layersettings import LayerSettings


@dataclass(frozen=True)
class NewInstance:
    """What a provider needs to bring an instance up: who it is and how its agent reaches meta."""

    id: str
    app: str
    layer: str
    instance_type: str | None
    availability_zone: str | None
    meta_url: str
    token: str  # the agent's per-instance token; never logged
    host: str | None = None  # provider ssh: the registered host it goes on
    ca: str | None = None  # PEM: the CA the agent pins meta's HTTPS to (None: the system's)
    settings: LayerSettings = LayerSettings()  # its layer's (provider ec2: ami, subnet, ...)

    def agent_json(self) -> dict[str, str]:
        """ROOT/etc/agent.json: all an agent needs to find meta and say who it is."""
        config = {"meta": self.meta_url, "instance": self.id, "token": self.token}
        if self.ca is not None:
            config["ca"] = self.ca
        return config


@dataclass(frozen=True)
class Made:
    """What a provider made: where the instance is, and its id in the cloud (provider ec2)."""

    address: str | None
    cloud_id: str | None = None
    cloud_state: str | None = None


class InstanceProvider(Protocol):
    name: str

    def create(self, new: NewInstance) -> Made:
        """Start the instance and its agent (ec2: ask EC2 for it; it boots the agent itself);
        returns where it is (local: its root directory)."""
        ...

    def delete(self, instance_id: str, host: str | None = None) -> str | None:
        """Run the layer's teardown, stop the agent and everything it runs, and remove the
        instance (from `host`, for provider ssh; ec2: terminate it); the teardown's output
        (None: it had none, or it ran where meta does not hear it: ec2)."""
        ...

    def ids(self) -> list[str]:
        """Ids of the instances this provider has."""
        ...

    def shell(self, instance_id: str) -> list[str]:
        """The argv that opens a shell on the instance."""
        ...

    def ensure_running(self) -> list[str]:
        """Restart agents that died (like upstart's respawn); returns the ids restarted."""
        ...
