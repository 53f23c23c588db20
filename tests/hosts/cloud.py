"""A test cloud: moto's server stands in for the EC2 API, and this for EC2's hypervisor.

For each instance moto reports `running` that it has not booted, it makes a fresh test host
(`fleet.host`) and runs that instance's user-data there as root (as cloud-init would: the
user-data comes from DescribeInstanceAttribute, base64); when moto reports an instance
`terminated`, it first calls `inspect(host)` (what the test wants to know of the machine just
before it goes) and then takes the host down (`fleet.remove`). So the way from RunInstances
to an agent reporting is real, but for the hypervisor. The user-data is run over the host's
sshd (`sh -s`), which is how this harness runs anything as root on a host.

moto listens on the control namespace's address (meta, in the control namespace, must reach
it); the cloud's own EC2 calls run there too (a watcher process printing one JSON line per
change), never from the root namespace (REFERENCE.md §8).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tests.hosts.fleet import Fleet, Host

REGION = "us-east-1"
MOTO_PORT = 5000
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}

_WATCH = r"""
import base64, json, sys, time, boto3
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name=sys.argv[2])
seen = {}
while True:
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            iid, state = i["InstanceId"], i["State"]["Name"]
            if seen.get(iid) == state:
                continue
            seen[iid] = state
            event = {"id": iid, "state": state}
            if state == "running":
                got = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
                data = got.get("UserData", {}).get("Value")
                event["user_data"] = base64.b64decode(data).decode() if data else ""
            print(json.dumps(event), flush=True)
    time.sleep(0.3)
"""


def aws_env(endpoint: str) -> dict[str, str]:
    """The environment in which boto3 (meta's included) talks to moto at `endpoint`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GUN_"))}
    return env | AWS_ENV | {"AWS_ENDPOINT_URL_EC2": endpoint}


@contextlib.contextmanager
def moto(fleet: Fleet, directory: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """moto's server on the control address (with `env` added to its environment), in a
    process group of its own; its URL."""
    url = f"http://{fleet.control.address}:{MOTO_PORT}"
    server = str(Path(sys.executable).with_name("moto_server"))
    with open(directory / "moto.log", "wb") as log:
        proc = fleet.control.popen(
            [server, "-H", fleet.control.address, "-p", str(MOTO_PORT)],
            stdout=log, stderr=subprocess.STDOUT, env=aws_env(url) | (env or {}),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        probe = f"import urllib.request; urllib.request.urlopen('{url}/moto-api/', timeout=2)"
        while fleet.control.run([sys.executable, "-c", probe], timeout=10).returncode != 0:
            assert proc.poll() is None, (directory / "moto.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "moto_server did not answer in 30 s"
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        proc.wait(10)


def ec2(fleet: Fleet, endpoint: str, code: str) -> Any:
    """Run `code` (Python, with `ec2` a boto3 client of moto) in the control namespace; what it
    prints, as JSON."""
    script = (
        "import json, boto3\n"
        f"ec2 = boto3.client('ec2', endpoint_url={endpoint!r}, region_name={REGION!r})\n" + code
    )
    done = fleet.control.run([sys.executable, "-c", script], env=aws_env(endpoint), timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Cloud:
    """The hypervisor of moto's instances; a context manager (see the module's docstring).

    `hide`: directories each instance's host sees as an empty tmpfs of its own (the agent's
    root). `booted[ec2 id]`: the user-data's CompletedProcess; `hosts[ec2 id]`: its host;
    `inspected[ec2 id]`: what `inspect` returned just before its host went.
    """

    def __init__(
        self,
        fleet: Fleet,
        endpoint: str,
        *,
        hide: Iterable[Path] = (),
        inspect: Callable[[Host], Any] = lambda host: None,
    ) -> None:
        self.fleet, self.endpoint, self.hide, self.inspect = fleet, endpoint, list(hide), inspect
        self.hosts: dict[str, Host] = {}
        self.booted: dict[str, subprocess.CompletedProcess[str]] = {}
        self.inspected: dict[str, Any] = {}
        self.user_data: dict[str, str] = {}
        self.errors: list[str] = []
        self._lock = threading.Lock()  # the fleet makes and removes one host at a time
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Cloud:
        self.watcher = self.fleet.control.popen(
            [sys.executable, "-c", _WATCH, self.endpoint, REGION],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=aws_env(self.endpoint),
        )  # fmt: skip
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.watcher.pid, 15)
        self.watcher.wait(10)
        for t in self._threads:
            t.join(60)

    def _read(self) -> None:
        assert self.watcher.stdout is not None
        for line in self.watcher.stdout:
            event = json.loads(line)
            if event["state"] == "running" and event["id"] not in self.hosts:
                self._spawn(self._boot, event["id"], event.get("user_data", ""))
            elif event["state"] == "terminated" and event["id"] in self.hosts:
                self._spawn(self._end, event["id"])

    def _spawn(self, target: Callable[..., None], *args: str) -> None:
        t = threading.Thread(target=self._guard, args=(target, *args), daemon=True)
        self._threads.append(t)
        t.start()

    def _guard(self, target: Callable[..., None], *args: str) -> None:
        try:
            target(*args)
        except Exception as e:  # said by the test, which asserts there are none
            self.errors.append(f"{target.__name__}{args[:1]}: {type(e).__name__}: {e}")

    def _boot(self, cloud_id: str, user_data: str) -> None:
        self.user_data[cloud_id] = user_data
        with self._lock:
            host = self.fleet.host(f"ec2-{len(self.hosts)}", hide=self.hide)
            self.hosts[cloud_id] = host
        self.booted[cloud_id] = host.ssh("sh -s", input=user_data, timeout=600)

    def _end(self, cloud_id: str) -> None:
        host = self.hosts[cloud_id]
        self.inspected[cloud_id] = self.inspect(host)
        with self._lock:
            self.fleet.remove(host.name)
