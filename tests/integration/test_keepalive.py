"""The keep-alive race: a request lost on a reused connection is sent again once on a fresh
one, for every method; attempts count every request that reached the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pingmon.errors import ErrorClass
from pingmon.results import CheckResult
from pingmon.runner import Runner, TargetPlan
from tests.integration.conftest import StartDaemon, eventually
from tests.integration.rawhttp import (
    Received,
    Reply,
    answer,
    check_one,
    checking,
    raw_server,
    site_config,
)

OK = answer(200, b'{"status": "ok"}', (("Content-Type", "application/json"),))
OK_HEAD = answer(200, b"", (("Content-Type", "application/json"),), content_length=16)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def first_on_each_connection(received: Received, index: int) -> Reply:
    """The race made deterministic: a connection's first request is answered (keep-alive),
    its second is read and dropped without a byte of answer, as a server closing an idle
    connection just as the request arrives does. A fresh connection always works."""
    if index > 0:
        return Reply()
    return Reply((OK_HEAD if received.method == "HEAD" else OK,))


async def check_repeatedly(runner: Runner, plan: TargetPlan, times: int) -> list[CheckResult]:
    results = []
    for _ in range(times):
        result = await runner.run(plan)
        assert result is not None
        results.append(result)
    return results


@pytest.mark.parametrize("method", METHODS)
async def test_a_request_dropped_on_a_reused_connection_is_sent_again_on_a_fresh_one(
    tmp_path: Path, method: str
) -> None:
    async with raw_server(first_on_each_connection) as server:
        target = {"name": "t", "method": method, "path": "/ping"}
        if method in ("POST", "PUT", "PATCH"):
            target["body"] = "{}"
        config = site_config(tmp_path / "c.yaml", server.url, [target])
        async with checking(config) as (runner, plans):
            results = await check_repeatedly(runner, plans["t"], 4)

    assert [r.error_class for r in results] == [ErrorClass.NONE] * 4
    assert [r.attempts for r in results[:2]] == [1, 2]  # the dropped request is counted too
    assert sum(r.attempts for r in results) == server.count()


async def test_the_re_send_carries_the_stripe_checks_idempotency_key_unchanged(
    tmp_path: Path,
) -> None:
    async with raw_server(first_on_each_connection) as server:
        provider = {"type": "stripe", "base_url": server.url, "api_key": "sk_test_canary"}
        target = {"name": "t", "provider": "stripe", "destination_id": "ed_test_a"}
        config = site_config(
            tmp_path / "c.yaml", server.url, [target], providers={"stripe": provider}
        )
        async with checking(config) as (runner, plans):
            await check_repeatedly(runner, plans["t"], 2)

    keys = [r.headers["idempotency-key"] for r in server.received]
    assert len(keys) == 3  # check 1; check 2 dropped, then sent again
    assert keys[1] == keys[2] != keys[0]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
async def test_a_server_that_never_answers_again_still_ends_as_connect_after_one_re_send(
    tmp_path: Path, method: str, reset: bool
) -> None:
    def answers_once(received: Received, index: int) -> Reply:
        first = received.connection == 0 and index == 0
        return Reply((OK,)) if first else Reply(reset=reset)

    async with raw_server(answers_once) as server:
        target = {"name": "t", "method": method, "path": "/ping"}
        config = site_config(tmp_path / "c.yaml", server.url, [target])
        async with checking(config) as (runner, plans):
            first, second = await check_repeatedly(runner, plans["t"], 2)

    assert first.error_class is ErrorClass.NONE
    assert second.error_class is ErrorClass.CONNECT
    assert second.http_status is None
    assert second.attempts == 2  # the reused connection, then the fresh one: no more
    assert server.count() == first.attempts + second.attempts


async def test_a_post_failing_on_a_fresh_connection_is_not_sent_again(tmp_path: Path) -> None:
    async with raw_server(lambda received, index: Reply()) as server:
        result = await check_one(tmp_path / "c.yaml", server.url, method="POST", body="{}")

    assert result.error_class is ErrorClass.CONNECT
    assert result.attempts == server.count() == 1


async def test_aiohttps_own_re_send_of_a_get_is_counted_as_an_attempt(tmp_path: Path) -> None:
    async with raw_server(lambda received, index: Reply()) as server:
        result = await check_one(tmp_path / "c.yaml", server.url, retries=1)

    assert result.error_class is ErrorClass.CONNECT
    # Two attempts (one retry), each sent twice: aiohttp re-sends an idempotent request
    # once after a disconnect (RFC 9112 §9.3.1); pingmon counts what the server saw.
    assert result.attempts == server.count() == 4


async def test_an_attempt_that_reaches_no_server_still_counts_as_one(tmp_path: Path) -> None:
    async with raw_server(lambda received, index: Reply()) as server:
        url = server.url
    result = await check_one(tmp_path / "c.yaml", url, retries=2)  # nothing listens now

    assert result.error_class is ErrorClass.CONNECT
    assert result.attempts == 3


async def test_a_post_at_the_servers_idle_timeout_never_fails_and_attempts_match_the_server(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    idle = 0.2
    async with raw_server(lambda received, index: Reply((OK,)), idle_close=idle) as server:
        target = {"name": "t", "method": "POST", "path": "/ping", "body": "{}"}
        config = site_config(
            tmp_path / "c.yaml",
            server.url,
            [target],
            defaults={"interval": f"{idle}s", "timeout": "150ms", "jitter": 0},
            watch={"enabled": False},
        )
        running = await start_daemon(config)
        labels = {"provider": "site", "target": "t"}

        def checks() -> float:
            return sum(
                running.sample("pingmon_checks_total", error_class=cls, **labels) or 0.0
                for cls in ("none", "connect")
            )

        checks.__name__ = "20 checks done"
        await eventually(lambda: checks() >= 20, timeout=15)
        running.daemon.scheduler.pause()
        await eventually(lambda: not running.daemon.in_flight)
        attempts = running.sample("pingmon_check_attempts_total", **labels)
        status = await running.target_status("t")

    assert running.sample("pingmon_checks_total", error_class="connect", **labels) is None
    assert status["error_class"] == "none", json.dumps(status)
    assert attempts == server.count()
