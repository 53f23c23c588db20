"""Instance providers: where an instance's agent runs (local; ssh, on registered hosts; ec2
later)."""

from gun.providers.base import InstanceProvider, NewInstance

__all__ = ["InstanceProvider", "NewInstance"]
