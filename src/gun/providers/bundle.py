"""What an agent on another host runs: wheels made from meta's own installation, so that the
host needs no package index, only python3 (3.11+) with venv.

- gun's wheel holds the whole `gun` package as installed (an editable install too), with no
  dependencies declared: the agent needs only the standard library and AGENT_NEEDS.
- Each of AGENT_NEEDS is re-packed from its installed files. psutil's is built for CPython's
  stable ABI (cp36-abi3), so it runs on any CPython 3 of the same kind of machine (the wheel
  keeps its platform tag: pip on the host refuses it, in one line, on another architecture).

`build(into)` writes the wheels into `into` and returns their paths; `install_command(venv,
wheels)` is the shell command a host runs to put them in a venv of its python3; `archive()`
is them in one tar (what an ec2 instance downloads from meta, GET /v1/agent/bundle).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata as md
import io
import re
import shlex
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import gun

AGENT_NEEDS = ("python-dotenv", "psutil")  # what `python -m gun.agent` imports beyond stdlib
PACKAGE = Path(gun.__file__).resolve().parent
_SKIP = re.compile(r"(^|/)__pycache__(/|$)|\.pyc$|^\.\./")  # bytecode; scripts outside
_SKIP_GUN = re.compile(r"\.so$")  # gun is pure Python: a built extension there is not its


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _write(
    path: Path, files: Iterable[tuple[str, bytes]], dist_info: str, meta: dict[str, bytes]
) -> None:
    """A wheel at `path`: `files`, then `meta` in `dist_info`, then RECORD."""
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [*files, *((f"{dist_info}/{k}", v) for k, v in meta.items())]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, data, zipfile.ZIP_DEFLATED)
            records.append(_record_line(name, data))
        records.append(f"{dist_info}/RECORD,,")
        z.writestr(
            zipfile.ZipInfo(f"{dist_info}/RECORD", (1980, 1, 1, 0, 0, 0)), "\n".join(records) + "\n"
        )


def _wheel_text(tags: Iterable[str], purelib: bool) -> bytes:
    lines = ["Wheel-Version: 1.0", "Generator: gun", f"Root-Is-Purelib: {str(purelib).lower()}"]
    return ("\n".join([*lines, *(f"Tag: {t}" for t in tags)]) + "\n").encode()


def gun_wheel(into: Path) -> Path:
    version = gun.__version__
    files = sorted(
        (f"gun/{p.relative_to(PACKAGE).as_posix()}", p.read_bytes())
        for p in PACKAGE.rglob("*")
        if p.is_file()
        and not _SKIP.search(p.relative_to(PACKAGE).as_posix())
        and not _SKIP_GUN.search(p.name)
    )
    metadata = f"Metadata-Version: 2.1\nName: gun\nVersion: {version}\nRequires-Python: >=3.11\n"
    path = into / f"gun-{version}-py3-none-any.whl"
    meta = {"METADATA": metadata.encode(), "WHEEL": _wheel_text(["py3-none-any"], True)}
    _write(path, files, f"gun-{version}.dist-info", meta)
    return path


def installed_wheel(name: str, into: Path) -> Path:
    """The installed distribution `name` packed again as a wheel of its own tags."""
    dist = md.distribution(name)
    info = f"{_normal(dist.metadata['Name'])}-{dist.version}.dist-info"
    wheel = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    purelib = "Root-Is-Purelib: true" in wheel
    files = []
    for f in dist.files or []:
        posix = PurePosixPath(str(f)).as_posix()
        if _SKIP.search(posix) or posix.startswith(info + "/"):
            continue
        files.append((posix, Path(str(dist.locate_file(f))).read_bytes()))
    meta = {
        "METADATA": (dist.read_text("METADATA") or "").encode(),
        "WHEEL": _wheel_text(tags, purelib),
    }
    path = into / f"{_normal(dist.metadata['Name'])}-{dist.version}-{tags[0]}.whl"
    _write(path, sorted(files), info, meta)
    return path


def build(into: Path) -> list[Path]:
    into.mkdir(parents=True, exist_ok=True)
    return [gun_wheel(into), *(installed_wheel(n, into) for n in AGENT_NEEDS)]


def install_command(python: str, venv: str, wheels: Iterable[str]) -> str:
    """Make `venv` with `python` (kept if it is there) and install `wheels` into it, offline."""
    q = shlex.quote
    return (
        f"{q(python)} -m venv {q(venv)} && {q(venv)}/bin/python -m pip install --quiet"
        " --disable-pip-version-check --no-index --no-deps --force-reinstall "
        + " ".join(q(w) for w in wheels)
    )


def key_of(blobs: dict[str, bytes]) -> str:
    """gun's version and a digest of the wheels: a new version of meta gets a new venv."""
    digest = hashlib.sha256(b"".join(blobs[n] for n in sorted(blobs))).hexdigest()[:12]
    return f"{gun.__version__}-{digest}"


def blobs() -> dict[str, bytes]:
    """The wheels by file name, built afresh."""
    with tempfile.TemporaryDirectory(prefix="gun-bundle-") as scratch:
        return {w.name: w.read_bytes() for w in build(Path(scratch))}


@dataclass(frozen=True)
class Archive:
    """The wheels in one tar (what an ec2 instance downloads from meta), its sha256 and key."""

    data: bytes = field(repr=False)
    sha256: str
    key: str
    names: tuple[str, ...]


@functools.cache
def archive() -> Archive:
    """The wheels of this meta's installation as one tar, built once per meta process (the
    user-data of every instance names its sha256)."""
    wheels = blobs()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name in sorted(wheels):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(wheels[name]), 0o644
            tar.addfile(info, io.BytesIO(wheels[name]))
    data = out.getvalue()
    return Archive(data, hashlib.sha256(data).hexdigest(), key_of(wheels), tuple(sorted(wheels)))
