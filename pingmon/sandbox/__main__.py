"""``python -m pingmon.sandbox``: run the four fakes until SIGTERM/SIGINT, for other processes.

Prints one JSON line of base URLs on stdout once every fake listens, so a parent process (the
end-to-end test, a shell script) can read it and configure pingmon.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from pingmon.sandbox import KINDS, Sandbox


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``--host`` and one ``--<kind>-port`` per fake (0, the default, picks a free port)."""
    parser = argparse.ArgumentParser(
        prog="python -m pingmon.sandbox",
        description="Run loopback imitations of Stripe, 9pic, Simotel and a status page.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    for kind in KINDS:
        parser.add_argument(f"--{kind}-port", type=int, default=0, metavar="N")
    return parser.parse_args(argv)


async def serve(host: str, ports: dict[str, int]) -> None:
    """Start the sandbox, announce its URLs, and wait for a stop signal."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with Sandbox(host, ports) as sandbox:
        print(json.dumps(sandbox.urls()), flush=True)
        await stopping.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 after a clean stop)."""
    args = parse_args(argv)
    ports = {kind: getattr(args, f"{kind}_port") for kind in KINDS}
    asyncio.run(serve(args.host, ports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
