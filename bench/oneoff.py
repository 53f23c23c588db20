"""How fast a one-off process's stdout reaches its client, against a local `cat`.

    .venv/bin/python bench/oneoff.py [--megabytes 50] [--rounds 5] [--tty]

Writes that many random megabytes to a file in a temporary directory, then times, best of
`--rounds`: `cat FILE` read through a pipe by this process (what a shell's `cat` costs its
reader), and `run.1: cat FILE` attached with gun.agent.oneoff (in this process) over a loopback
TCP connection to a client in a process of its own that reads gun's frames, from its connect
to the exit frame; both sha256 the bytes they got. Prints both, and the ratio (the
issue's bar: at most 4). Exits 1 if the bytes differ.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from gun import rendezvous as rv  # noqa: E402
from gun.agent.oneoff import OneOff, attach  # noqa: E402
from gun.agent.procrecord import ProcessSpec  # noqa: E402


def local_cat(path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    digest = hashlib.sha256()
    proc = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    while data := os.read(proc.stdout.fileno(), rv.READ_CHUNK):
        digest.update(data)
    proc.wait()
    return time.perf_counter() - started, digest.hexdigest()


# The client, in a process of its own as gun's CLI would be: frames read with blocking
# calls, stdout hashed; it prints the seconds from its connect to the exit frame, and the hash.
CLIENT = """
import hashlib, socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
started = time.perf_counter()
s.sendall(b"e\\0\\0\\0\\0")
f = s.makefile("rb", buffering=1 << 20)
digest = hashlib.sha256()
while header := f.read(5):
    kind, size = struct.unpack(">cI", header)
    payload = f.read(size)
    if kind == b"o":
        digest.update(payload)
    elif kind == b"x":
        break
print(time.perf_counter() - started, digest.hexdigest())
"""


async def one_off(path: Path, tty: bool) -> tuple[float, str]:
    spec = ProcessSpec("run.1", "run", f"cat {path.name}", {}, path.parent, 1)
    one = OneOff(spec, tty=tty, size=None, term=None, ttl=60, framing=rv.Framing.GUN)

    async def agent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await attach(one, reader, writer, user=None)

    server = await asyncio.start_server(agent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), stdout=subprocess.PIPE
    )
    out, _ = await client.communicate()
    server.close()
    await server.wait_closed()
    took, digest = out.split()
    return float(took), digest.decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tty", action="store_true", help="under a pty (bytes not compared)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data"
        path.write_bytes(os.urandom(args.megabytes * 1_000_000))
        want = hashlib.sha256(path.read_bytes()).hexdigest()
        cats = [local_cat(path) for _ in range(args.rounds)]
        runs = [asyncio.run(one_off(path, args.tty)) for _ in range(args.rounds)]
    cat, run = min(t for t, _ in cats), min(t for t, _ in runs)
    print(f"{args.megabytes} MB: local cat {cat * 1000:.0f} ms, run.1 {run * 1000:.0f} ms, "
          f"{run / cat:.1f}x (bar: 4x)")  # fmt: skip
    # a pty writes each \n as \r\n (ONLCR, as any terminal does): its bytes are not compared
    intact = all(d == want for _, d in [*cats, *([] if args.tty else runs)])
    if not intact:
        print("the bytes differ")
    return 0 if intact else 1


if __name__ == "__main__":
    sys.exit(main())
