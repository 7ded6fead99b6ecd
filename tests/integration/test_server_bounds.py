"""pingmon's own server under clients that hold it: header, idle and write timeouts, the
connection cap, a webhook body that trickles, and library warnings a client can cause."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest

from tests.integration.conftest import (
    ConfigWriter,
    RunningDaemon,
    StartDaemon,
    eventually,
    ninepic_target,
    stripe_target,
)

HALF_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: pingmon\r\n"
FULL_REQUEST = b"GET /-/healthy HTTP/1.1\r\nHost: pingmon\r\n\r\n"
LONG = "30s"  # a bound a test does not reach
SHORT = "300ms"
CLOSE_WITHIN = 8.0  # how long a test waits for the server to close a connection


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def start(
    config_writer: ConfigWriter, start_daemon: StartDaemon, **server: Any
) -> RunningDaemon:
    bounds = {"header_timeout": LONG, "idle_timeout": LONG, "write_timeout": LONG, **server}
    targets = [ninepic_target("w", interval="10s", timeout="1s")]
    return await start_daemon(config_writer.load(targets, server=bounds))


def webhook_target() -> dict[str, Any]:
    """A target whose webhooks the receiver reads (a body is read only for a known one)."""
    webhook = {"signing_secret": "whsec_bounds", "timeout": "10s"}
    return stripe_target("hooked", interval="10s", timeout="1s", webhook=webhook)


def address(running: RunningDaemon) -> tuple[str, int]:
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


@asynccontextmanager
async def connection(
    running: RunningDaemon, rcvbuf: int | None = None
) -> AsyncIterator[Connection]:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(address(running))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(ConnectionResetError):  # pingmon closes what it drops with a reset
            await writer.wait_closed()


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection (a reset counts as closed);
    fails the test if it is still open after CLOSE_WITHIN seconds."""
    received = b""
    try:
        async with asyncio.timeout(CLOSE_WITHIN):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open; it sent {received[:80]!r}")
    return received


async def still_open(reader: asyncio.StreamReader) -> bool:
    """True if the connection is open and nothing came (a short look, not a wait)."""
    try:
        async with asyncio.timeout(0.1):
            return await reader.read(1) != b""
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False


def dropped(running: RunningDaemon, reason: str) -> float:
    return running.sample("pingmon_http_connections_dropped_total", reason=reason) or 0.0


async def test_a_half_sent_request_is_closed_after_the_header_timeout_whatever_trickles_in(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start(config_writer, start_daemon, header_timeout=SHORT)
    async with connection(running) as (reader, writer):
        writer.write(HALF_REQUEST)

        async def trickle() -> None:
            for _ in range(200):  # a byte every 50 ms, well past the timeout
                await asyncio.sleep(0.05)
                writer.write(b"X")

        trickling = asyncio.create_task(trickle())
        try:
            assert await read_until_closed(reader) == b""  # closed, never answered
        finally:
            trickling.cancel()
    assert dropped(running, "header_timeout") == 1


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start(config_writer, start_daemon, header_timeout=SHORT)
    async with connection(running) as (reader, _):
        assert await read_until_closed(reader) == b""
    assert dropped(running, "header_timeout") == 1


async def test_the_header_timeout_restarts_with_each_request_on_a_kept_alive_connection(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start(config_writer, start_daemon, header_timeout=SHORT)
    async with connection(running) as (reader, writer):
        for _ in range(3):  # each answered: a complete request stops the timer
            writer.write(FULL_REQUEST)
            assert (await reader.readuntil(b"healthy.\n")).startswith(b"HTTP/1.1 200")
            await asyncio.sleep(0.2)  # within the timeout: the timer ran only while sending
        writer.write(HALF_REQUEST)
        assert await read_until_closed(reader) == b""
    assert dropped(running, "header_timeout") == 1


async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start(config_writer, start_daemon, idle_timeout=SHORT)
    async with connection(running) as (reader, writer):
        writer.write(FULL_REQUEST)
        assert (await reader.readuntil(b"healthy.\n")).startswith(b"HTTP/1.1 200")
        assert await read_until_closed(reader) == b""


async def test_a_client_that_reads_nothing_is_dropped_after_the_write_timeout(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start(config_writer, start_daemon, write_timeout=SHORT)
    async with connection(running, rcvbuf=4096) as (reader, writer):
        # Answers pile up far past what the kernel and the transport's bounded buffer hold.
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: pingmon\r\n\r\n" * 2000)
        await eventually(lambda: dropped(running, "write_timeout") == 1)
        await read_until_closed(reader)  # what was in flight, then the end
    await eventually(lambda: running.sample("pingmon_http_open_connections") == 0)


async def test_a_client_that_never_reads_one_large_answer_is_dropped_after_the_write_timeout(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    """The kernel would take the whole answer for itself (Linux grows a send buffer to 4 MB)
    and pingmon would never see the client stall: it must not."""
    targets = [ninepic_target(f"t{i}", interval="1h", timeout="1s") for i in range(1500)]
    bounds = {"header_timeout": LONG, "idle_timeout": LONG, "write_timeout": SHORT}
    running = await start_daemon(config_writer.load(targets, server=bounds))
    async with connection(running, rcvbuf=4096) as (reader, writer):
        writer.write(b"GET /status HTTP/1.1\r\nHost: pingmon\r\n\r\n")  # ~700 KB
        await eventually(lambda: dropped(running, "write_timeout") == 1)
        await read_until_closed(reader)


async def test_at_the_cap_a_new_connection_takes_the_place_of_the_longest_unserved_one(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start(config_writer, start_daemon, max_connections=3)
    async with (
        connection(running) as (oldest, oldest_writer),
        connection(running) as (second, second_writer),
        connection(running) as (third, third_writer),
    ):
        for writer in (oldest_writer, second_writer, third_writer):
            writer.write(HALF_REQUEST)
            await writer.drain()
        await eventually(lambda: running.sample("pingmon_http_open_connections") == 3)
        async with connection(running) as (reader, writer):
            writer.write(FULL_REQUEST)
            assert (await reader.readuntil(b"healthy.\n")).startswith(b"HTTP/1.1 200")
        assert await read_until_closed(oldest) == b""
        assert await still_open(second)
        assert await still_open(third)
    assert dropped(running, "evicted") == 1
    assert dropped(running, "max_connections") == 0


async def test_at_the_cap_with_every_connection_served_a_new_one_is_answered_503(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    hooked = webhook_target()
    bounds = {"header_timeout": LONG, "idle_timeout": LONG, "max_connections": 2}
    running = await start_daemon(config_writer.load([hooked], server=bounds))
    post = b"POST /webhooks/hooked HTTP/1.1\r\nHost: pingmon\r\nContent-Length: 100\r\n\r\n"
    async with (
        connection(running) as (_, first),
        connection(running) as (_, second),
    ):
        for writer in (first, second):  # each handler waits for the rest of its body
            writer.write(post + b"{")
            await writer.drain()
        await eventually(lambda: running.sample("pingmon_http_open_connections") == 2)
        async with connection(running) as (reader, _):
            answer = await read_until_closed(reader)
        assert answer.startswith(b"HTTP/1.1 503") or answer == b""  # a reset may beat it
    assert dropped(running, "max_connections") == 1
    assert dropped(running, "evicted") == 0
    await eventually(lambda: running.sample("pingmon_http_open_connections") == 0)
    assert (await running.get_text("/-/healthy"))[0] == 200  # room again


async def test_a_webhook_body_that_trickles_is_answered_408_and_closed(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    hooked = webhook_target()
    bounds = {"header_timeout": SHORT, "idle_timeout": LONG}
    running = await start_daemon(config_writer.load([hooked], server=bounds))
    async with connection(running) as (reader, writer):
        writer.write(b"POST /webhooks/hooked HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")

        async def trickle() -> None:
            for _ in range(99):
                await asyncio.sleep(0.05)
                writer.write(b"a")

        trickling = asyncio.create_task(trickle())
        try:
            answer = await read_until_closed(reader)
        finally:
            trickling.cancel()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"Connection: close" in answer


async def test_a_flood_of_malformed_requests_is_logged_once_per_kind(
    config_writer: ConfigWriter, start_daemon: StartDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    running = await start(config_writer, start_daemon)
    for _ in range(20):
        async with connection(running) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
            assert b" 400 Bad Request" in await read_until_closed(reader)
    server_errors = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(server_errors) == 1
    assert server_errors[0].levelno == logging.ERROR
