"""`pingmon demo`: the daemon against the local sandbox, showing success, failure and back-off."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pingmon.config import load_config
from pingmon.daemon import Daemon
from pingmon.eventloop import run as run_on_loop
from pingmon.sandbox import SANDBOX_CREDENTIALS, Sandbox, Scenario
from pingmon.service import ListenError, serve

CREDS = SANDBOX_CREDENTIALS
DEMO_ENV = {
    "PINGMON_DEMO_STRIPE_KEY": CREDS.stripe.test_key,
    "PINGMON_DEMO_NINEPIC_KEY": CREDS.ninepic.api_key,
    "PINGMON_DEMO_SIMOTEL_USER": CREDS.simotel.both.username,
    "PINGMON_DEMO_SIMOTEL_PASSWORD": CREDS.simotel.both.password,
    "PINGMON_DEMO_SIMOTEL_TOKEN": CREDS.simotel.both.api_key,
    "PINGMON_DEMO_STRIPE_WEBHOOK_SECRET": "whsec_pingmon_demo_signing_secret",
    "PINGMON_DEMO_SIMOTEL_HOOK_USER": "pingmon-demo-hook",
    "PINGMON_DEMO_SIMOTEL_HOOK_PASSWORD": "pingmon-demo-hook-password",
}
# The round trip: the sandbox delivers these targets' webhooks back to pingmon, signed.
STRIPE_HOOK_TARGET = "orders-webhook"
SIMOTEL_HOOK_TARGET = "pbx-main"
REVOKED_DESTINATION = "ed_test_pingmon_revoked"
THROTTLED_PATH = "/throttled"


def demo_document(sandbox: Sandbox, listen: str) -> dict[str, Any]:
    """A configuration for the sandbox: four healthy targets, one failing, one throttled."""
    urls = sandbox.urls()
    document: dict[str, Any] = {
        "listen": listen,
        "defaults": {"interval": "5s", "timeout": "2s"},
        "backoff": {"initial": "15s", "multiplier": 2, "max": "2m"},
        "providers": {
            "stripe": {"type": "stripe", "base_url": urls["stripe"],
                       "api_key": {"env": "PINGMON_DEMO_STRIPE_KEY"}},
            "ninepic": {"type": "ninepic", "base_url": urls["ninepic"],
                        "api_key": {"env": "PINGMON_DEMO_NINEPIC_KEY"}},
            "pbx": {"type": "simotel", "base_url": urls["simotel"],
                    "username": {"env": "PINGMON_DEMO_SIMOTEL_USER"},
                    "password": {"env": "PINGMON_DEMO_SIMOTEL_PASSWORD"},
                    "api_key": {"env": "PINGMON_DEMO_SIMOTEL_TOKEN"}},
            "status-page": {"type": "http", "base_url": urls["http"]},
        },
        "targets": [
            {"name": STRIPE_HOOK_TARGET, "provider": "stripe",
             "destination_id": CREDS.stripe.test_destination,
             "webhook": {"timeout": "3s",
                         "signing_secret": {"env": "PINGMON_DEMO_STRIPE_WEBHOOK_SECRET"}}},
            {"name": "wedding-456", "provider": "ninepic",
             "org_id": CREDS.ninepic.org_id, "event_id": CREDS.ninepic.event_id},
            {"name": SIMOTEL_HOOK_TARGET, "provider": "pbx",
             "webhook": {"timeout": "3s",
                         "username": {"env": "PINGMON_DEMO_SIMOTEL_HOOK_USER"},
                         "password": {"env": "PINGMON_DEMO_SIMOTEL_HOOK_PASSWORD"}}},
            {"name": "status", "provider": "status-page", "path": "/healthz",
             "expect": {"status": [200], "json": {"status": "ok"}}},
            {"name": "billing-webhook", "provider": "stripe",
             "destination_id": REVOKED_DESTINATION},
            {"name": "throttled-status", "provider": "status-page", "path": THROTTLED_PATH},
        ],
    }  # fmt: skip
    for provider in document["providers"].values():
        # The sandbox is on loopback: a proxy in the user's environment must not take it over.
        provider["proxy_url"] = "none"
    return document


def banner(daemon: Daemon, address: str, sandbox: Sandbox, config_path: Path) -> str:
    url = f"http://{address}"
    return "\n".join(
        [
            f"pingmon demo: {len(daemon.config.targets)} targets against a local sandbox.",
            f"  metrics:  {url}/metrics",
            f"  status:   {url}/status",
            f"  config:   {config_path}",
            "  healthy:  orders-webhook (Stripe), wedding-456 (9pic), pbx-main (Simotel), status",
            "  webhooks: orders-webhook and pbx-main: each ping's webhook comes back, signed, to "
            f"{url}/webhooks/TARGET (see pingmon_webhook_roundtrip_seconds)",
            "  failing:  billing-webhook (Stripe answers 404: the destination does not exist)",
            "  backoff:  throttled-status (429 with Retry-After: 30; see pingmon_backoff_seconds)",
            "  sandbox:  " + ", ".join(f"{k} {v}" for k, v in sandbox.urls().items()),
            "Press Ctrl-C to stop.",
        ]
    )


def deliver_webhooks(sandbox: Sandbox, receiver: str) -> None:
    """Point the sandbox's Stripe destination and Simotel Event Webhooks at pingmon."""
    sandbox.stripe.set_webhook(
        CREDS.stripe.test_destination,
        f"{receiver}/{STRIPE_HOOK_TARGET}",
        DEMO_ENV["PINGMON_DEMO_STRIPE_WEBHOOK_SECRET"],
    )
    sandbox.simotel.set_webhook(
        f"{receiver}/{SIMOTEL_HOOK_TARGET}",
        DEMO_ENV["PINGMON_DEMO_SIMOTEL_HOOK_USER"],
        DEMO_ENV["PINGMON_DEMO_SIMOTEL_HOOK_PASSWORD"],
    )


async def _demo(listen: str) -> None:
    os.environ.update(DEMO_ENV)
    async with Sandbox() as sandbox:
        sandbox.stripe.deleted_destinations.add(REVOKED_DESTINATION)
        sandbox.http.set_scenario(THROTTLED_PATH, Scenario("rate_limited", retry_after="30"))
        with tempfile.TemporaryDirectory(prefix="pingmon-demo-") as directory:
            config_path = Path(directory) / "pingmon-demo.yaml"
            document = demo_document(sandbox, listen)
            config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

            async def on_started(daemon: Daemon, address: str) -> None:
                deliver_webhooks(sandbox, f"http://{address}/webhooks")
                print(banner(daemon, address, sandbox, config_path), flush=True)

            await serve(load_config(config_path), on_started=on_started)


def run_demo(listen: str, loop: str = "asyncio") -> int:
    """Run the demo on ``loop`` (``pingmon.eventloop``) until SIGINT/SIGTERM."""
    try:
        run_on_loop(_demo(listen), loop)
    except ListenError as error:
        print(f"pingmon demo: {error}; try --listen 127.0.0.1:9109", file=sys.stderr)
        return 1
    return 0
