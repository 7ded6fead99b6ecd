"""``client.send`` cancelled or timed out at every await (connecting, the first request on a
kept connection, the keep-alive race's re-send on a fresh one, the body): no connection is
left acquired in either session, nothing but a cancellation, a ``TransportError`` or an
answer comes out, and the sessions go on working."""

from __future__ import annotations

import asyncio
import random

import pytest

from pingmon.client import send
from pingmon.daemon import new_sessions
from pingmon.errors import TransportError
from pingmon.providers.base import HttpResponse, PreparedRequest
from tests.integration.rawhttp import Received, Reply, answer, raw_server

OK = answer(200, b'{"status": "ok"}')
SLOW_BODY = (answer(200, b"", content_length=8), b"ab", b"cd", b"ef", b"gh")


def reply(received: Received, index: int) -> Reply:
    """By path: ``/ok`` answers; ``/race`` answers a connection's first request and drops
    its second unanswered (the keep-alive race); ``/slow`` sends its body in pieces
    50 ms apart; ``/silent`` never answers and closes."""
    if received.path == "/ok" or (received.path == "/race" and index == 0):
        return Reply((OK,))
    if received.path == "/slow":
        return Reply(SLOW_BODY)
    return Reply()


@pytest.mark.parametrize("seed", range(2))
async def test_cancelled_or_timed_out_sends_leave_no_connection_acquired(seed: int) -> None:
    rng = random.Random(seed)
    async with raw_server(reply) as server, new_sessions() as sessions:
        connectors = (sessions.pooled.connector, sessions.fresh.connector)
        for _ in range(60):
            path = rng.choice(("/ok", "/race", "/slow", "/silent"))
            method = rng.choice(("GET", "POST"))
            request = PreparedRequest(
                method, server.url + path, {}, b"x" if method == "POST" else None
            )
            timeout = rng.choice((1.0, rng.uniform(0.0, 0.15)))
            task = asyncio.create_task(send(sessions, request, timeout=timeout, max_body_bytes=64))
            await asyncio.sleep(rng.uniform(0.0, 0.15))
            task.cancel()
            try:
                outcome: object = await task
            except asyncio.CancelledError:
                outcome = "cancelled"
            except TransportError as error:
                outcome = error
            assert outcome == "cancelled" or isinstance(outcome, HttpResponse | TransportError)
            for _ in range(20):  # the release callbacks, if any are pending
                if not any(connector and connector._acquired for connector in connectors):
                    break
                await asyncio.sleep(0.005)
            for connector in connectors:
                assert connector is not None
                assert not connector._acquired, (path, method, timeout)
        answered = await send(
            sessions, PreparedRequest("GET", server.url + "/ok"), timeout=1.0, max_body_bytes=64
        )
        assert answered.status == 200
        assert answered.body == b'{"status": "ok"}'
