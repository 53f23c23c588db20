"""Instance providers: where an instance's agent runs (local; ssh, on registered hosts; ec2,
on instances EC2 makes)."""

from gun.providers.base import InstanceProvider, Made, NewInstance

__all__ = ["InstanceProvider", "Made", "NewInstance"]
