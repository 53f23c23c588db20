"""What meta sends a host so that an agent runs there without a package index: wheels made from
meta's own installation, installed into a venv of another interpreter (Debian's python3 stands
for the host's), where `python -m gun.agent` then starts."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from gun import __version__
from gun.providers import bundle

HOST_PYTHON = "/usr/bin/python3"


def test_an_agent_runs_from_the_bundle_in_a_venv_of_the_hosts_python(tmp_path: Path) -> None:
    if not Path(HOST_PYTHON).exists():
        why = f"needs {HOST_PYTHON} (Debian's python3, with python3-venv) as the host's python"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    wheels = bundle.build(tmp_path / "wheels")
    assert [w.name.split("-")[0] for w in wheels] == ["gun", "python_dotenv", "psutil"]
    venv = tmp_path / "venv"
    command = bundle.install_command(HOST_PYTHON, str(venv), [str(w) for w in wheels])
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    python = str(venv / "bin" / "python")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # nothing of meta's environment
    shown = subprocess.run(
        [python, "-m", "gun.agent", "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "--root" in shown.stdout
    imported = subprocess.run(
        [python, "-c", "import gun.agent.agent, psutil, dotenv; import fastapi"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert "No module named 'fastapi'" in imported.stderr, "only what the agent needs is there"
    assert imported.stderr.count("Error") == 1


def test_gun_s_wheel_holds_the_whole_package_and_a_record_of_it(tmp_path: Path) -> None:
    wheel = bundle.gun_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        record = z.read(f"gun-{__version__}.dist-info/RECORD").decode()
    sources = {
        f"gun/{p.relative_to(bundle.PACKAGE).as_posix()}"
        for p in bundle.PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert sources <= names
    assert not [n for n in names if n.endswith((".pyc", ".so"))]
    assert {line.split(",")[0] for line in record.splitlines()} == names
