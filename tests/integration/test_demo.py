"""`pingmon demo` shows a healthy, a failing and a backing-off target, as its banner says."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from typing import Any

import aiohttp

from tests.integration.conftest import eventually


async def test_demo_shows_success_failure_and_backoff() -> None:
    # A proxy in the user's environment (here a dead one) must not take the loopback sandbox.
    dead_proxy = {"HTTP_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", "demo", "--listen", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **dead_proxy},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 20)
        assert first.startswith(b"pingmon demo: 6 targets")
        metrics_line = await process.stdout.readline()
        match = re.search(rb"(http://127\.0\.0\.1:\d+)/metrics", metrics_line)
        assert match is not None
        base = match.group(1).decode()
        async with aiohttp.ClientSession() as http:
            states: dict[str, Any] = {}

            async def shown() -> bool:
                async with http.get(f"{base}/status") as response:
                    states.update({t["target"]: t for t in (await response.json())["targets"]})
                return all(states[name]["error_class"] is not None for name in
                           ("orders-webhook", "billing-webhook", "throttled-status")) and all(
                    states[name]["webhook"]["delivered"] is not None
                    for name in ("orders-webhook", "pbx-main"))  # fmt: skip

            await eventually(shown, timeout=15, interval=0.2)
        assert states["orders-webhook"]["success"] is True
        assert states["billing-webhook"]["error_class"] == "not_found"
        assert states["throttled-status"]["error_class"] == "rate_limited"
        assert states["throttled-status"]["backoff_seconds"] >= 30
        for name in ("orders-webhook", "pbx-main"):  # the round trip works
            webhook = states[name]["webhook"]
            assert webhook["delivered"] is True, webhook
            assert webhook["roundtrip_seconds"] > 0
            assert webhook["rejected"] == {}
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
