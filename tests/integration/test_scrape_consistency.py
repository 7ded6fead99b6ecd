"""Scrapes sliced between turns of the event loop (``Exposition.chunks``) while results
arrive, scrapes overlap and reloads remove targets and change the profile: each scrape is
still one whole, valid exposition of one moment."""

from __future__ import annotations

import asyncio
import gzip
import re
from collections import Counter

import aiohttp
import pytest

from pingmon import exposition
from tests.integration.conftest import ConfigWriter, StartDaemon, http_target
from tests.integration.test_scrape import check_metrics
from tests.tools import require_tool

OPENMETRICS = "application/openmetrics-text;version=1.0.0"
FAMILY = re.compile(rb"^# TYPE (\S+) ", re.M)


def targets_of(body: bytes, family: str) -> set[str]:
    pattern = rb"^" + family.encode() + rb'\{[^}]*target="([^"]*)"'
    return {name.decode() for name in re.findall(pattern, body, re.M)}


def assert_whole(body: bytes, openmetrics: bool) -> None:
    """One TYPE per family; OpenMetrics ends with one ``# EOF``; every per-target fixed
    family names the same targets (one moment's set)."""
    repeated = [name for name, n in Counter(FAMILY.findall(body)).items() if n > 1]
    assert repeated == []
    if openmetrics:
        assert body.endswith(b"# EOF\n")
        assert body.count(b"# EOF") == 1
    success = targets_of(body, "pingmon_check_success")
    intervals = targets_of(body, "pingmon_check_interval_seconds")
    assert success <= intervals  # a target checked is a target configured in that scrape


async def scrape(http: aiohttp.ClientSession, url: str, kind: str) -> tuple[str, bytes]:
    headers = {"Accept-Encoding": "gzip" if kind == "gzip" else "identity"}
    if kind == "openmetrics":
        headers["Accept"] = OPENMETRICS
    method = "HEAD" if kind == "head" else "GET"
    async with http.request(method, url + "/metrics", headers=headers) as response:
        assert response.status == 200
        body = await response.read()
        if kind == "gzip":
            assert response.headers["Content-Encoding"] == "gzip"
            body = gzip.decompress(body)
        if kind == "head":
            assert body == b""
        return kind, body


async def test_overlapping_scrapes_during_reloads_are_each_one_valid_exposition(
    config_writer: ConfigWriter, start_daemon: StartDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    promtool = require_tool("promtool")
    monkeypatch.setattr(exposition, "SLICE_BYTES", 300)  # many slices, many turns of the loop
    fast = {"interval": "100ms", "timeout": "80ms", "jitter": 0}
    many = [http_target(f"t{i:02d}") for i in range(40)]
    running = await start_daemon(config_writer.load(many, defaults=fast))
    await running.wait_checked("status", "t39")
    bodies: list[tuple[str, bytes]] = []  # (kind, body)
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for round_ in range(6):
            kept = many[: 40 - 6 * round_]
            profile = "lean" if round_ % 2 else "default"
            config_writer.write(kept, defaults=fast, metrics={"profile": profile})
            kinds = ["plain", "gzip", "openmetrics", "head"] * 2
            scrapes = asyncio.gather(*(scrape(http, running.url, kind) for kind in kinds))
            reloaded, scraped = await asyncio.gather(running.daemon.reload(), scrapes)
            assert reloaded == (True, []), reloaded
            bodies.extend(scraped)
    for kind, body in bodies:
        if kind == "head":
            continue
        assert_whole(body, kind == "openmetrics")
    # promtool reads the text format only (OpenMetrics names a counter's HELP otherwise)
    texts = [body for kind, body in bodies if kind in ("plain", "gzip")]
    for body in texts[::3]:
        checked = check_metrics(promtool, body)
        assert checked.returncode == 0, checked.stdout + checked.stderr
