"""Starting an agent by hand: clear refusals, and no OpenSSL when meta is plain http."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

AGENT = [sys.executable, "-m", "gun.agent"]


def test_an_agent_without_meta_or_token_says_what_it_needs(tmp_path: Path) -> None:
    p = subprocess.run(
        [*AGENT, "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert p.returncode == 2
    assert p.stderr == (
        f"gun agent: the agent needs --meta, --instance, a token: pass them or write "
        f"{tmp_path}/etc/agent.json\n"
    )


def test_a_broken_agent_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "agent.json").write_text("{not json")
    p = subprocess.run(
        [*AGENT, "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert (p.returncode, p.stderr) == (
        2,
        f"gun agent: {tmp_path}/etc/agent.json is not JSON: recreate the instance\n",
    )


def test_the_agent_keeps_openssl_out_when_meta_is_plain_http(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "agent.json").write_text(
        json.dumps({"meta": "http://127.0.0.1:9", "instance": "i-00000000", "token": "t"})
    )
    # run the real entry point, but stop where the agent would start: after every import
    probe = (
        "import importlib, sys, types\n"
        "stub = types.ModuleType('gun.agent.agent')\n"
        "def main(config):\n"
        "    del sys.modules['gun.agent.agent']\n"
        "    importlib.import_module('gun.agent.agent')\n"
        "    print(sorted(k for k in ('ssl', '_ssl', '_hashlib') if sys.modules.get(k)))\n"
        "stub.main = main\n"
        "sys.modules['gun.agent.agent'] = stub\n"
        "from gun.agent import __main__ as m\n"
        f"m.main(['--root', {str(tmp_path)!r}])\n"
    )
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout) == (0, "[]\n"), p.stderr
