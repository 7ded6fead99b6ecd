"""Scrapes that arrive together share one render; /status comes from a shared snapshot and
answers ``?target=NAME`` for one target, current."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from pingmon.status import StatusPages
from tests.integration.conftest import (
    ConfigWriter,
    RunningDaemon,
    StartDaemon,
    eventually,
    ninepic_target,
    simotel_target,
    stripe_target,
)

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
BARRIER_TURNS = 20_000  # bounds the wait for the scrapes to gather (turns of the loop)


def count_renders(running: RunningDaemon, gather: dict[bool, int]) -> list[bool]:
    """Record each render of the exposition (by format: OpenMetrics or not, whether
    compressed or not); each holds until ``gather[format]`` scrapes wait for it, so that
    they all arrive while it is being rendered."""
    scrapes = running.daemon.metrics.scrapes
    compute = scrapes._compute
    renders: list[bool] = []

    async def held(key: tuple[bool, bool]) -> tuple[bytes, ...]:
        openmetrics, _ = key
        renders.append(openmetrics)
        for _ in range(BARRIER_TURNS):
            waiting = sum(scrapes.waiting((openmetrics, gzip)) for gzip in (False, True))
            if waiting >= gather.get(openmetrics, 1):
                break
            await asyncio.sleep(0)
        return await compute(key)

    scrapes._compute = held
    return renders


def reused(running: RunningDaemon) -> bool:
    """Whether a text scrape now would get a kept render, compressed or not."""
    return any(running.daemon.metrics.scrapes.reusable((False, gzip)) for gzip in (False, True))


async def scrape(url: str, accept: str = "") -> tuple[int, bytes]:
    """On a connection of its own, as separate Prometheus servers would."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(url + "/metrics", headers={"Accept": accept} if accept else {}) as response,
    ):
        return response.status, await response.read()


async def test_concurrent_scrapes_share_one_render_and_get_the_same_bytes(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("w"), stripe_target("s")]))
    await running.wait_checked("stripe", "s")
    renders = count_renders(running, {False: 10})
    answers = await asyncio.gather(*(scrape(running.url) for _ in range(10)))
    assert renders == [False]
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    assert b'pingmon_check_success{provider="stripe",target="s"} 1.0' in answers[0][1]


async def test_each_format_is_rendered_once_for_its_concurrent_scrapes(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("w")]))
    renders = count_renders(running, {False: 4, True: 4})
    text = [scrape(running.url) for _ in range(4)]
    openmetrics = [scrape(running.url, OPENMETRICS) for _ in range(4)]
    answers = await asyncio.gather(*text, *openmetrics)
    assert sorted(renders) == [False, True]
    assert len({body for _, body in answers[:4]}) == 1
    assert len({body for _, body in answers[4:]}) == 1
    assert answers[4][1].endswith(b"# EOF\n")
    assert not answers[0][1].endswith(b"# EOF\n")


async def test_a_scrape_after_a_render_and_its_short_reuse_gets_a_new_render(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("w")]))
    renders = count_renders(running, {})
    for _ in range(3):
        await eventually(lambda: not reused(running))
        assert (await scrape(running.url))[0] == 200
    assert renders == [False, False, False]


async def get_json(running: RunningDaemon, query: str) -> tuple[int, Any]:
    async with running.http.get(running.url + "/status" + query) as response:
        return response.status, await response.json()


async def test_status_target_filters_to_the_named_targets_in_order(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    targets = [ninepic_target("w"), stripe_target("s"), simotel_target("p")]
    running = await start_daemon(config_writer.load(targets))
    await running.wait_checked("stripe", "s")
    status, body = await get_json(running, "?target=s")
    assert status == 200
    assert [t["target"] for t in body["targets"]] == ["s"]
    assert body["targets"][0]["success"] is True
    assert set(body) == {"version", "config", "ready", "sharding", "targets"}
    status, body = await get_json(running, "?target=p&target=w")
    assert [t["target"] for t in body["targets"]] == ["p", "w"]


async def test_status_of_a_target_not_configured_is_404_naming_it(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("w")]))
    for query in ("?target=nope", "?target=w&target=nope"):
        status, body = await get_json(running, query)
        assert status == 404
        assert body == {"error": "no target named 'nope'"}


async def test_status_of_one_target_is_current_after_each_check(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([stripe_target("s")]))
    seen: set[str] = set()

    async def three_runs_seen() -> bool:
        _, body = await get_json(running, "?target=s")
        if body["targets"][0]["last_run"] is not None:
            seen.add(body["targets"][0]["last_run"])
        return len(seen) >= 3

    await eventually(three_runs_seen)  # every 500 ms check shows at once, never a stale copy


async def test_concurrent_status_requests_share_one_build(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("w"), stripe_target("s")]))
    await running.wait_checked("stripe", "s")
    pages = StatusPages(running.daemon)
    bodies = await asyncio.gather(*(pages.everything() for _ in range(5)))
    assert pages.builds.runs == 1
    assert len(set(bodies)) == 1
    await eventually(lambda: not pages.builds.reusable(None))
    assert await pages.everything() is not bodies[0]
    assert pages.builds.runs == 2


async def test_the_whole_status_is_the_document_it_always_was(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    targets = [ninepic_target(f"t{i}", interval="1h", timeout="1s") for i in range(1200)]
    running = await start_daemon(config_writer.load(targets))
    status, body = await get_json(running, "")
    assert status == 200
    assert [t["target"] for t in body["targets"]] == [f"t{i}" for i in range(1200)]
    assert body["ready"] is True
    assert body["config"] == str(config_writer.path)


async def test_head_answers_the_headers_of_get_and_no_body(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("w")]))
    for path in ("/metrics", "/status", "/status?target=w"):
        async with running.http.head(running.url + path) as response:
            assert response.status == 200
            assert int(response.headers["Content-Length"]) > 0
            assert await response.read() == b""
        # the kept-alive connection still reads the next answer from its start
        assert (await running.get_text("/-/healthy"))[0] == 200
