"""``python -m pingmon.sandbox``: run the four fakes until SIGTERM/SIGINT, for other processes.

Prints one JSON line of base URLs on stdout once every fake listens, so a parent process (the
end-to-end test, a shell script) can read it and configure pingmon. ``--stripe-webhook`` and
``--simotel-webhook`` make successful pings deliver webhooks, signed with the sandbox's own
webhook credentials (``SANDBOX_CREDENTIALS``), so no secret travels on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from pingmon.sandbox import KINDS, SANDBOX_CREDENTIALS, Sandbox


def destination_and_url(value: str) -> tuple[str, str]:
    """``ed_test_x=http://127.0.0.1:9000/webhooks/orders`` -> ``(ed_test_x, url)``."""
    destination, sep, url = value.partition("=")
    if not sep or not destination or not url:
        raise argparse.ArgumentTypeError(f"expected DESTINATION=URL, got {value!r}")
    return destination, url


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``--host``, one ``--<kind>-port`` per fake (0, the default, picks a free port), webhooks."""
    parser = argparse.ArgumentParser(
        prog="python -m pingmon.sandbox",
        description="Run loopback imitations of Stripe, 9pic, Simotel and a status page.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    for kind in KINDS:
        parser.add_argument(f"--{kind}-port", type=int, default=0, metavar="N")
    parser.add_argument(
        "--stripe-webhook",
        type=destination_and_url,
        action="append",
        default=[],
        metavar="DESTINATION=URL",
        help="deliver this destination's ping events to URL (repeatable)",
    )
    parser.add_argument(
        "--simotel-webhook", metavar="URL", help="fire Simotel's Ping event webhook at URL"
    )
    parser.add_argument("--simotel-webhook-version", choices=("G4", "Rest4"), default="G4")
    return parser.parse_args(argv)


def configure_webhooks(sandbox: Sandbox, args: argparse.Namespace) -> None:
    """Point the fakes' webhooks where the arguments say, with the sandbox credentials."""
    stripe, simotel = SANDBOX_CREDENTIALS.stripe, SANDBOX_CREDENTIALS.simotel
    for destination, url in args.stripe_webhook:
        sandbox.stripe.set_webhook(destination, url, stripe.webhook_secret)
    if args.simotel_webhook:
        sandbox.simotel.set_webhook(
            args.simotel_webhook,
            simotel.webhook_username,
            simotel.webhook_password,
            args.simotel_webhook_version,
        )


async def serve(args: argparse.Namespace) -> None:
    """Start the sandbox, announce its URLs, and wait for a stop signal."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    ports = {kind: getattr(args, f"{kind}_port") for kind in KINDS}
    async with Sandbox(args.host, ports) as sandbox:
        configure_webhooks(sandbox, args)
        print(json.dumps(sandbox.urls()), flush=True)
        await stopping.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 after a clean stop)."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
