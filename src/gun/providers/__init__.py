"""Instance providers: where an instance's agent runs (local now; netns, ssh, ec2 later)."""

from gun.providers.base import InstanceProvider, NewInstance

__all__ = ["InstanceProvider", "NewInstance"]
