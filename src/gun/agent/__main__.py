"""`python -m gun.agent --root DIR`: an agent without the CLI's imports (what providers start).

When meta is plain http://, TLS is never needed, so OpenSSL is kept out of the process
(asyncio imports ssl, and hashlib OpenSSL's _hashlib, whenever they can): each agent then
takes ~8 MiB less RSS, and checks slugs' sha256 with Python's builtin implementation.
bench/converge.py compares an agent's RSS with supervisord's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gun.agent")
    parser.add_argument("--root", required=True, help="the instance's directory")
    parser.add_argument("--meta", help="meta's URL (else ROOT/etc/agent.json)")
    parser.add_argument("--instance", help="this instance's id (else ROOT/etc/agent.json)")
    args = parser.parse_args(argv)

    from gun.agent.config import AgentConfig
    from gun.errors import GunError

    try:
        config = AgentConfig.load(Path(args.root), meta=args.meta, instance=args.instance)
    except GunError as e:
        sys.stderr.write(f"gun agent: {e.message}\n")
        raise SystemExit(2) from None
    if config.meta.startswith("http://"):
        for name in ("ssl", "_hashlib"):
            if name not in sys.modules:
                sys.modules[name] = None  # type: ignore[assignment]  # import -> ImportError

    from gun.agent.agent import main as run

    run(config)


if __name__ == "__main__":
    main()
