"""The headers on the wire for every method x body x user headers: per-request
``skip_auto_headers`` (``client.skip_auto_headers``) against the session-wide skip pingmon
had before (the oracle: the same session with Content-Type in its own skip set)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from multidict import istr

from pingmon.client import send
from pingmon.daemon import new_sessions
from pingmon.providers.base import PreparedRequest
from pingmon.wire import Sessions
from tests.integration.origin import Origin, serve_origin

METHODS = ("GET", "HEAD", "OPTIONS", "TRACE", "DELETE", "POST", "PUT", "PATCH", "post", "get")
BODIES = (None, b"", b"x", b'{"a": 1}')
HEADERS: tuple[dict[str, str], ...] = (
    {},
    {"Content-Type": "application/json"},
    {"content-type": "text/plain"},
    {"CONTENT-TYPE": ""},
    {"X-Extra": "1", "Accept": "*/*"},
)


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with serve_origin() as running:
        yield running


def session_wide_skip(sessions: Sessions) -> Sessions:
    """``sessions`` with Content-Type skipped session-wide, as ``new_session`` did."""
    for session in (sessions.pooled, sessions.fresh):
        session._skip_auto_headers = frozenset({istr("Content-Type")})
    return sessions


async def test_headers_on_the_wire_match_the_session_wide_skip(origin: Origin) -> None:
    cases = list(itertools.product(METHODS, BODIES, HEADERS))
    async with new_sessions() as new, session_wide_skip(new_sessions()) as old:
        for method, body, headers in cases:
            request = PreparedRequest(method, f"{origin.url}/h", headers, body)
            for sessions in (new, old):
                await send(sessions, request, timeout=5.0, max_body_bytes=1024)
    seen = origin.requests
    assert len(seen) == 2 * len(cases)
    for index, case in enumerate(cases):
        ours, before = seen[2 * index], seen[2 * index + 1]
        assert (ours.method, ours.headers, ours.body) == (
            before.method,
            before.headers,
            before.body,
        ), case
