"""Provider ec2: an instance is an EC2 instance that boots its own agent from its user-data
(userdata.py), through boto3.

`create` calls RunInstances with the layer's settings (layersettings.py: ami, subnet, security
groups, key name) and the instance's type and zone, tags the instance with its app, layer and
gun instance id (`gun:app`, `gun:layer`, `gun:instance`, and `Name`), and returns at once: the
instance is `requested`; meta's EC2 watch (`states`, DescribeInstances) sees it `running` and
its agent registers when it has booted. `delete` calls TerminateInstances on every EC2 instance
tagged with that gun instance id (so an instance whose RunInstances answer was lost goes too).

Credentials and region come from boto3's own chain (AWS_ACCESS_KEY_ID, ~/.aws, an instance
profile; AWS_DEFAULT_REGION), and so does the endpoint (AWS_ENDPOINT_URL_EC2: the tests point
it at moto's server). Every failure is one sentence naming EC2's error code:

    EC2 refused RunInstances: InvalidAMIID.NotFound (The image id '[ami-x]' does not exist)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from gun.errors import GunError, InvalidParams, Unavailable
from gun.layersettings import DEFAULT_ROOT
from gun.providers import bundle, userdata
from gun.providers.base import Made, NewInstance

# EC2's codes for a request that is wrong (the user's to fix), not EC2 or meta unable to act
_THE_REQUEST = ("Invalid", "MissingParameter", "Unsupported", "VPCIdNotSpecified")
GONE = ("shutting-down", "terminated")  # EC2's states of an instance that is ending


def sentence(action: str, e: Exception) -> GunError:
    """One sentence for a failed EC2 call, naming EC2's error code."""
    import botocore.exceptions as bx  # type: ignore[import-untyped]

    if isinstance(e, bx.ClientError):
        error = e.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = (error.get("Message") or "no message").strip().rstrip(".")
        said = f"EC2 refused {action}: {code} ({message})"
        return InvalidParams(said) if code.startswith(_THE_REQUEST) else Unavailable(said)
    if isinstance(e, bx.NoCredentialsError):
        return Unavailable(
            f"EC2 was not asked to {action}: meta has no AWS credentials (boto3's chain found"
            " none: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, or a role)"
        )
    if isinstance(e, bx.NoRegionError):
        return Unavailable(
            f"EC2 was not asked to {action}: meta has no AWS region (set AWS_DEFAULT_REGION)"
        )
    if isinstance(e, bx.EndpointConnectionError):
        return Unavailable(f"EC2 cannot be reached for {action}: {e}")
    if isinstance(e, bx.BotoCoreError):
        return Unavailable(f"EC2 call {action} failed: {e}")
    raise e


def _client() -> Any:
    """boto3's EC2 client, from its own chain; imported when first needed (meta without ec2
    instances never loads boto3)."""
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    config = Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
    )
    return boto3.client("ec2", config=config)


class Ec2Provider:
    name = "ec2"

    def __init__(self, client: Callable[[], Any] | None = None) -> None:
        self._make = client or _client
        self._client: Any = None
        self._lock = threading.Lock()

    def _ec2(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make()
            return self._client

    def _call(self, action: str, **params: Any) -> Any:
        import botocore.exceptions as bx

        try:
            ec2 = self._ec2()
            method = {
                "RunInstances": "run_instances",
                "TerminateInstances": "terminate_instances",
                "DescribeInstances": "describe_instances",
            }[action]
            return getattr(ec2, method)(**params)
        except (bx.ClientError, bx.BotoCoreError) as e:
            raise sentence(action, e) from None

    def create(self, new: NewInstance) -> Made:
        s = new.settings
        if s.ami is None:
            raise InvalidParams(f"layer {new.layer} has no ami for provider ec2")
        tags = {"Name": f"gun {new.app} {new.layer} {new.id}", "gun:app": new.app}
        tags |= {"gun:layer": new.layer, "gun:instance": new.id}
        params: dict[str, Any] = {
            "ImageId": s.ami,
            "MinCount": 1,
            "MaxCount": 1,
            "UserData": userdata.render(new, s.root or DEFAULT_ROOT, bundle.archive()),
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        }
        if new.instance_type:
            params["InstanceType"] = new.instance_type
        if new.availability_zone:
            params["Placement"] = {"AvailabilityZone": new.availability_zone}
        if s.subnet:
            params["SubnetId"] = s.subnet
        if s.security_groups:
            params["SecurityGroupIds"] = list(s.security_groups)
        if s.key_name:
            params["KeyName"] = s.key_name
        answer = self._call("RunInstances", **params)
        made = answer["Instances"][0]
        return Made(
            made.get("PrivateIpAddress"), made["InstanceId"], made.get("State", {}).get("Name")
        )

    def _tagged(self, instance_id: str) -> list[str]:
        answer = self._call(
            "DescribeInstances", Filters=[{"Name": "tag:gun:instance", "Values": [instance_id]}]
        )
        return [
            i["InstanceId"]
            for r in answer.get("Reservations", [])
            for i in r.get("Instances", [])
            if i.get("State", {}).get("Name") != "terminated"
        ]

    def delete(self, instance_id: str, host: str | None = None) -> str | None:
        """Terminate the EC2 instances of this gun instance (its agent, refused by meta by
        now, stops its processes, runs the layer's teardown and removes itself: agentstart.py;
        meta hears no teardown output from there: None)."""
        cloud_ids = self._tagged(instance_id)
        if cloud_ids:
            self._call("TerminateInstances", InstanceIds=cloud_ids)
        return None

    def states(self, cloud_ids: Iterable[str]) -> dict[str, str]:
        """EC2's state of each of `cloud_ids` it knows (one it no longer lists is missing)."""
        wanted = sorted(set(cloud_ids))
        out: dict[str, str] = {}
        for k in range(0, len(wanted), 200):  # DescribeInstances takes 200 filter values
            answer = self._call(
                "DescribeInstances",
                Filters=[{"Name": "instance-id", "Values": wanted[k : k + 200]}],
            )
            for r in answer.get("Reservations", []):
                for i in r.get("Instances", []):
                    out[i["InstanceId"]] = i.get("State", {}).get("Name", "unknown")
        return out

    def ids(self) -> list[str]:
        return []  # EC2 keeps them; each boots its own agent

    def shell(self, instance_id: str) -> list[str]:
        return ["true"]

    def ensure_running(self) -> list[str]:
        return []  # the keep-alive loop on the instance does it
