"""/metrics as Prometheus scrapes it: gzip when asked, and both metrics profiles valid for
promtool, within their series budget, and carrying what the shipped rules read."""

from __future__ import annotations

import asyncio
import gzip
import re
import subprocess
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pingmon.families import FAMILIES
from pingmon.sandbox import Scenario
from tests.integration.conftest import (
    ConfigWriter,
    RunningDaemon,
    StartDaemon,
    stripe_target,
)
from tests.tools import require_tool

RULES = Path(__file__).resolve().parents[2] / "config" / "alerts" / "pingmon.rules.yml"
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
)


async def get(
    running: RunningDaemon, encoding: str, method: str = "GET"
) -> tuple[aiohttp.ClientResponse, bytes]:
    """/metrics with this Accept-Encoding, the body as sent (not decompressed)."""
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.request(
            method, running.url + "/metrics", headers={"Accept-Encoding": encoding}
        ) as response,
    ):
        return response, await response.read()


async def scraped(running: RunningDaemon) -> str:
    """The text exposition as Prometheus fetches it: gzip-compressed, then decompressed."""
    response, body = await get(running, "gzip")
    assert response.headers["Content-Encoding"] == "gzip"
    return gzip.decompress(body).decode()


def series_per_target(text: str) -> Counter[str]:
    return Counter(
        sample.labels["target"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(("pingmon_check", "pingmon_rate", "pingmon_backoff"))
        and "target" in sample.labels
    )


def check_metrics(promtool: str, body: bytes) -> subprocess.CompletedProcess[bytes]:
    command = [promtool, "check", "metrics"]
    return subprocess.run(command, input=body, capture_output=True, timeout=60, check=False)


async def start_checked(
    config_writer: ConfigWriter, start_daemon: StartDaemon, profile: str
) -> RunningDaemon:
    """A daemon with one target that succeeds and one that failed (and has two classes)."""
    config_writer.sandbox.stripe.set_scenario("ed_test_gone", Scenario("not_found"))
    targets = [stripe_target("up"), stripe_target("gone")]
    running = await start_daemon(config_writer.load(targets, metrics={"profile": profile}))
    await running.wait_checked("stripe", "up", success=True)
    await running.wait_checked("stripe", "gone", success=False)
    return running


async def test_a_scraper_that_takes_gzip_gets_the_exposition_compressed(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([stripe_target("up")]))
    await running.wait_checked("stripe", "up")
    response, body = await get(running, "gzip, deflate")
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert int(response.headers["Content-Length"]) == len(body)
    text = gzip.decompress(body).decode()
    assert 'pingmon_check_success{provider="stripe",target="up"} 1.0' in text
    assert len(body) < len(text)


async def test_a_scraper_without_gzip_gets_plain_text(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([stripe_target("up")]))
    await running.wait_checked("stripe", "up")
    for encoding in ("identity", "gzip;q=0, identity", ""):
        response, body = await get(running, encoding)
        assert "Content-Encoding" not in response.headers, encoding
        assert response.headers["Vary"] == "Accept-Encoding"
        assert b'pingmon_check_success{provider="stripe",target="up"} 1.0' in body


async def test_head_of_a_gzip_scrape_sends_its_headers_only(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([stripe_target("up")]))
    await running.wait_checked("stripe", "up")
    response, body = await get(running, "gzip", method="HEAD")
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert int(response.headers["Content-Length"]) > 0
    assert body == b""


@pytest.mark.parametrize("profile", ["default", "lean"])
async def test_each_metrics_profile_passes_promtool_check_metrics(
    config_writer: ConfigWriter, start_daemon: StartDaemon, profile: str
) -> None:
    promtool = require_tool("promtool")
    running = await start_checked(config_writer, start_daemon, profile)
    body = (await scraped(running)).encode()
    checked = await asyncio.to_thread(check_metrics, promtool, body)
    assert checked.returncode == 0, checked.stderr.decode() + checked.stdout.decode()


async def test_the_lean_profile_keeps_a_target_within_12_series(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    lean = series_per_target(
        await scraped(await start_checked(config_writer, start_daemon, "lean"))
    )
    # Eight families of one series, and one pingmon_checks_total series per class seen.
    assert lean == {"up": 9, "gone": 10}


async def test_the_default_profile_keeps_every_family(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_checked(config_writer, start_daemon, "default")
    text = await scraped(running)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {f.base_name for f in FAMILIES} <= names
    # "gone" has a second pingmon_checks_total series, and no last-success timestamp.
    assert series_per_target(text) == {"up": 34, "gone": 34}


async def test_the_lean_profile_exports_every_per_target_metric_the_shipped_rules_read(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    exprs = " ".join(rule["expr"] for group in groups for rule in group["rules"])
    read = set(re.findall(r"pingmon_[a-z_]+", exprs))
    per_target = read & {f.name for f in FAMILIES}
    assert {"pingmon_checks_total", "pingmon_check_error_class"} <= per_target
    running = await start_checked(config_writer, start_daemon, "lean")
    text = await scraped(running)
    exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert per_target <= exported
