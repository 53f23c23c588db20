"""Provider ec2 through the Platform, against moto's server as the EC2 API (AWS is unreachable
here): RunInstances with the layer's settings, tags and user-data; EC2's states as meta's watch
records them; TerminateInstances on delete; and each failure one sentence naming EC2's error
code, with nothing half-registered left behind (no instance, no token).

Capacity: moto cannot refuse for lack of capacity, so that one case is a stand-in server that
answers every call with EC2's error response (`<Response><Errors><Error><Code>...`), status
500 like EC2's other server errors. Authentication failures come from moto's own IAM
emulation (INITIAL_NO_AUTH_ACTION_COUNT=0), a missing AMI from moto's AMI validation
(MOTO_ENABLE_AMI_VALIDATION=true).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select

from gun.core import Platform
from gun.errors import InvalidParams, Unavailable
from gun.model import Principal
from gun.providers.ec2 import Ec2Provider
from gun.store import Store
from gun.store.schema import instances, tokens
from tests.conftest import moto_server

META = "http://10.200.9.1:5100"  # what agents are told; nothing connects to it here


@pytest.fixture
def ec2(moto: str, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", moto)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return boto3.client("ec2")


def platform_with_ec2(store: Store) -> Platform:
    return Platform(store, providers={"ec2": Ec2Provider()}, meta_url=META)


def left(store: Store) -> tuple[int, int]:
    """Instances, and agent tokens, in the store."""
    with store.read() as tx:
        n = tx.conn.execute(select(func.count()).select_from(instances)).scalar_one()
        t = tx.conn.execute(
            select(func.count()).select_from(tokens).where(tokens.c.kind == "instance")
        ).scalar_one()
    return n, t


def settings(ec2: Any) -> dict[str, str]:
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    subnet = ec2.describe_subnets(
        Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}]
    )["Subnets"][0]["SubnetId"]
    sg = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["deploy"]}])["KeyPairs"]:
        ec2.create_key_pair(KeyName="deploy")
    return {"ami": ami, "subnet": subnet, "security_groups": sg, "key_name": "deploy"}


def test_run_tag_watch_and_terminate(store: Store, admin: Principal, ec2: Any) -> None:
    platform = platform_with_ec2(store)
    platform.apps.create(admin, "groupme")
    given = settings(ec2)
    platform.layers.set(admin, "groupme", "app", None, provider="ec2", settings=given)
    made = platform.instances.create(
        admin, "groupme", "app", 2, instance_type="c1.xlarge", availability_zone="us-east-1a"
    )
    assert [(i.provider, i.state, i.cloud_state) for i in made] == [
        ("ec2", "requested", "pending")
    ] * 2

    for inst in made:
        found = ec2.describe_instances(InstanceIds=[inst.cloud_id])["Reservations"][0]
        got = found["Instances"][0]
        assert got["ImageId"] == given["ami"]
        assert got["InstanceType"] == "c1.xlarge"
        assert got["Placement"]["AvailabilityZone"] == "us-east-1a"
        assert got["SubnetId"] == given["subnet"]
        assert [g["GroupId"] for g in got["SecurityGroups"]] == [given["security_groups"]]
        assert got["KeyName"] == "deploy"
        tags = {t["Key"]: t["Value"] for t in got["Tags"]}
        assert tags == {
            "Name": f"gun groupme app {inst.id}",
            "gun:app": "groupme",
            "gun:layer": "app",
            "gun:instance": inst.id,
        }
        data = ec2.describe_instance_attribute(InstanceId=inst.cloud_id, Attribute="userData")
        script = base64.b64decode(data["UserData"]["Value"]).decode()
        assert script.startswith("#!/bin/sh\n")
        assert f'"instance": "{inst.id}"' in script and f'"meta": "{META}"' in script

    platform.instances.track_cloud("ec2", platform.providers["ec2"].states)  # type: ignore[attr-defined]
    now = platform.instances.all(admin, "groupme")
    assert [(i.state, i.cloud_state) for i in now] == [("booting", "running")] * 2

    with pytest.raises(InvalidParams) as e:
        platform.instances.shell(admin, "groupme", made[0].id)
    assert e.value.message == (
        f"instance {made[0].id} is on EC2 ({made[0].cloud_id}): gun opens no shell there yet;"
        " ssh to it with the layer's key pair"
    )

    # ended by someone else (a spot reclaim, the console): terminated, and it stays to be seen
    ec2.terminate_instances(InstanceIds=[made[0].cloud_id])
    platform.instances.track_cloud("ec2", platform.providers["ec2"].states)  # type: ignore[attr-defined]
    states = {i.id: (i.state, i.cloud_state) for i in platform.instances.all(admin, "groupme")}
    assert states == {made[0].id: ("terminated", "terminated"), made[1].id: ("booting", "running")}

    for inst in made:
        platform.instances.delete(admin, "groupme", inst.id)
    assert left(store) == (0, 0)
    ended = ec2.describe_instances(InstanceIds=[made[1].cloud_id])["Reservations"][0]
    assert ended["Instances"][0]["State"]["Name"] in ("shutting-down", "terminated")


def refused(store: Store, admin: Principal, ami: str = "ami-03cf127a") -> str:
    platform = platform_with_ec2(store)
    platform.apps.create(admin, "groupme")
    platform.layers.set(admin, "groupme", "app", None, provider="ec2", settings={"ami": ami})
    with pytest.raises((InvalidParams, Unavailable)) as e:
        platform.instances.create(admin, "groupme", "app", 3, availability_zone="us-east-1a")
    assert left(store) == (0, 0), "nothing half-registered"
    return e.value.message


def test_a_bad_ami(
    store: Store, admin: Principal, aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_server(tmp_path / "moto.log", {"MOTO_ENABLE_AMI_VALIDATION": "true"}) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        assert refused(store, admin, ami="ami-0000000000000dead") == (
            "EC2 refused RunInstances: InvalidAMIID.NotFound"
            " (The image id '[ami-0000000000000dead]' does not exist)"
        )


def test_credentials_ec2_does_not_accept(
    store: Store, admin: Principal, aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_server(tmp_path / "moto.log", {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        assert refused(store, admin) == (
            "EC2 refused RunInstances: AuthFailure"
            " (AWS was not able to validate the provided access credentials)"
        )


CAPACITY = """<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code><Message>We currently do not \
have sufficient c1.xlarge capacity in the Availability Zone you requested (us-east-1a).\
</Message></Error></Errors><RequestID>5d1c3a5e-0000-4000-8000-000000000000</RequestID></Response>
"""


@pytest.fixture
def no_capacity() -> Iterator[str]:
    """A stand-in for EC2 that answers every call with InsufficientInstanceCapacity."""

    class Full(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = CAPACITY.encode()
            self.send_response(500)
            self.send_header("Content-Type", "text/xml;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Full)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_no_capacity(
    store: Store, admin: Principal, aws_env: None, no_capacity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", no_capacity)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert refused(store, admin) == (
        "EC2 refused RunInstances: InsufficientInstanceCapacity (We currently do not have"
        " sufficient c1.xlarge capacity in the Availability Zone you requested (us-east-1a))"
    )


def test_ec2_out_of_reach(
    store: Store, admin: Principal, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    said = refused(store, admin)
    assert said.startswith("EC2 cannot be reached for RunInstances: Could not connect to the")
    assert "http://127.0.0.1:9/" in said


def test_unknown_provider_and_a_layer_without_an_ami(store: Store, admin: Principal) -> None:
    platform = platform_with_ec2(store)
    platform.apps.create(admin, "groupme")
    with pytest.raises(InvalidParams) as e:
        platform.instances.create(admin, "groupme", "app", provider="gce")
    assert e.value.message == "provider 'gce' is not available here (available: ec2)"
    platform.layers.set(admin, "groupme", "app", None, provider="ec2")
    with pytest.raises(InvalidParams) as e:
        platform.instances.create(admin, "groupme", "app")
    assert e.value.message.startswith("layer app has no ami for provider ec2: gun layers.set:app")
    with pytest.raises(InvalidParams, match="provider 'gce' is unknown"):
        platform.layers.set(admin, "groupme", "app", None, provider="gce")
    assert left(store) == (0, 0)
