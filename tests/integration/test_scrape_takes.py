"""The copy-on-write takes under real scrapers of the daemon's own server: slow readers,
clients that go away half-way, many at once, while results arrive and reloads switch the
profile and rename targets. Every gzip body is one member (``gzip -t``) of a whole
exposition; once the scrapes are over, results keep nothing for any scrape."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import subprocess
import zlib
from pathlib import Path

import aiohttp
import pytest

from pingmon import exposition
from pingmon.daemon import Daemon
from tests.integration.conftest import ConfigWriter, StartDaemon, eventually, http_target
from tests.integration.test_scrape import check_metrics
from tests.integration.test_scrape_consistency import OPENMETRICS, assert_whole
from tests.tools import require_tool

FAST = {"interval": "100ms", "timeout": "80ms", "jitter": 0}


def kept(daemon: Daemon) -> tuple[int, int]:
    """(takes still kept up to date, pieces they keep)."""
    targets = daemon.metrics.targets
    live = [take for ref in targets._takes if (take := ref()) is not None and take.pending]
    pieces = sum(
        len(piece) for take in live for family in take.before for piece in family.values()
    )
    return len(live), pieces


def one_member(body: bytes) -> bytes:
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    data = decompressor.decompress(body)
    assert decompressor.eof
    assert decompressor.unused_data == b""
    return data


def gzip_test(tool: str, body: bytes, path: Path) -> subprocess.CompletedProcess[bytes]:
    """``gzip -t`` of ``body``, written to ``path``."""
    path.write_bytes(body)
    return subprocess.run([tool, "-t", str(path)], capture_output=True, timeout=30, check=False)


async def slow_reader(host: str, port: int, coding: str, read: int, pause: float) -> None:
    """A scraper reading ``read`` bytes a time with ``pause`` between, for at most 10 reads,
    then gone (the connection closed half-way)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET /metrics HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: {coding}\r\n\r\n".encode()
        )
        await writer.drain()
        for _ in range(10):
            if not await reader.read(read):
                break
            await asyncio.sleep(pause)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def scrape(http: aiohttp.ClientSession, url: str, kind: str, gone: bool) -> bytes | None:
    """A whole body (decompressed), or None when the client went away after its headers."""
    headers = {"Accept-Encoding": "gzip" if kind == "gzip" else "identity"}
    if kind == "openmetrics":
        headers["Accept"] = OPENMETRICS
    async with http.get(url + "/metrics", headers=headers) as response:
        assert response.status == 200
        if gone:
            await response.content.read(100)
            response.close()
            return None
        body = await response.read()
    return one_member(body) if kind == "gzip" else body


async def test_slow_gone_and_many_scrapers_through_reloads_leave_nothing_kept(
    config_writer: ConfigWriter,
    start_daemon: StartDaemon,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    promtool = require_tool("promtool")
    gzip_tool = require_tool("gzip")
    monkeypatch.setattr(exposition, "SLICE_BYTES", 300)  # many slices and runs
    names = [f"t{i:02d}" for i in range(30)]
    running = await start_daemon(
        config_writer.load([http_target(n) for n in names], defaults=FAST)
    )
    await running.wait_checked("status", names[-1])
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    bodies: list[tuple[str, bytes]] = []
    raw_gzip: list[bytes] = []
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for round_ in range(6):
            renamed = [f"{n}-r{round_}" if i % 5 == round_ % 5 else n for i, n in enumerate(names)]
            kept_targets = renamed[: 30 - 3 * round_]
            profile = "lean" if round_ % 2 else "default"
            config_writer.write(
                [http_target(n) for n in kept_targets], defaults=FAST, metrics={"profile": profile}
            )
            kinds = ["plain", "gzip", "openmetrics"] * 6
            scrapes = [scrape(http, running.url, kind, i % 4 == 3) for i, kind in enumerate(kinds)]
            slow = [
                slow_reader(host, int(port), coding, 64, 0.02) for coding in ("gzip", "identity")
            ]
            reloading = running.daemon.reload()
            reloaded, done, _ = await asyncio.gather(
                reloading, asyncio.gather(*scrapes), asyncio.gather(*slow)
            )
            assert reloaded == (True, []), reloaded
            for kind, body in zip(kinds, done, strict=True):
                if body is not None:
                    bodies.append((kind, body))
            async with http.get(
                running.url + "/metrics", headers={"Accept-Encoding": "gzip"}
            ) as r:
                raw_gzip.append(await r.read())
    assert len(bodies) > 50
    for kind, body in bodies:
        assert_whole(body, kind == "openmetrics")
    for body in [body for kind, body in bodies if kind != "openmetrics"][::6]:
        checked = check_metrics(promtool, body)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    for i, body in enumerate(raw_gzip):
        tested = gzip_test(gzip_tool, body, tmp_path / f"scrape{i}.gz")
        assert tested.returncode == 0, tested.stderr
        assert gzip.decompress(body) == one_member(body)

    # No scrape under way now: the checks go on, and nothing is kept for any scrape.
    await eventually(lambda: not running.daemon.metrics.scrapes._running)
    runs = running.daemon.metrics.store.snapshot()
    await eventually(lambda: running.daemon.metrics.store.snapshot() != runs)  # results came
    assert kept(running.daemon) == (0, 0)
    assert len(running.daemon.metrics.targets._takes) <= 4
