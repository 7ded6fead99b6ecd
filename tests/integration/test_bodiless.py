"""Bodiless answers (RFC 9110 §9.3.2 HEAD, §15.2 1xx, §15.3.5 204, §15.4.5 304): no body is
read or measured, whatever their Content-Length says."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pingmon.errors import ErrorClass
from tests.integration.rawhttp import (
    PIECE_PAUSE_SECONDS,
    Received,
    Reply,
    answer,
    check_one,
    checking,
    raw_server,
    site_config,
)

FIVE_MB = 5 * 1024 * 1024


def headers_only(status: int) -> Reply:
    """A 5 MB Content-Length and no body, as HEAD, 204 and 304 answers are sent."""
    return Reply((answer(status, b"", (("ETag", '"v1"'),), content_length=FIVE_MB),))


CASES = [
    pytest.param("HEAD", 200, {}, ErrorClass.NONE, id="HEAD-200"),
    pytest.param("HEAD", 304, {"status": [304]}, ErrorClass.NONE, id="HEAD-304"),
    pytest.param("GET", 304, {"status": [304]}, ErrorClass.NONE, id="GET-304"),
    pytest.param("GET", 204, {"status": [204]}, ErrorClass.NONE, id="GET-204"),
    pytest.param("POST", 204, {"status": [204]}, ErrorClass.NONE, id="POST-204"),
    pytest.param("HEAD", 404, {}, ErrorClass.NOT_FOUND, id="HEAD-404"),
    pytest.param("HEAD", 503, {}, ErrorClass.SERVER_ERROR, id="HEAD-503"),
    pytest.param("GET", 304, {}, ErrorClass.CLIENT_ERROR, id="GET-304-unexpected"),
]


@pytest.mark.parametrize(("method", "status", "expect", "expected"), CASES)
async def test_a_bodiless_answer_is_judged_by_its_status_whatever_its_content_length(
    tmp_path: Path, method: str, status: int, expect: dict[str, Any], expected: ErrorClass
) -> None:
    async with raw_server(lambda received, index: headers_only(status)) as server:
        result = await check_one(
            tmp_path / "c.yaml",
            server.url,
            method=method,
            body="{}" if method == "POST" else None,
            expect=expect,
            max_body_bytes=1024,
        )

    assert (result.error_class, result.http_status) == (expected, status)
    assert "max_body_bytes" not in result.detail


@pytest.mark.parametrize(("method", "status"), [("GET", 204), ("GET", 304), ("HEAD", 200)])
async def test_bytes_a_server_writes_after_a_bodiless_answer_never_reach_the_next_check(
    tmp_path: Path, method: str, status: int
) -> None:
    """RFC 9112 §6.3: a HEAD, 204 or 304 answer ends at its header section; a server that
    writes a body anyway (later: aiohttp's C parser refuses one in the same read) must not
    have it read as the answer to the next check, a check interval later."""

    def reply(received: Received, index: int) -> Reply:
        return Reply((answer(status, content_length=20), b"junk that is no body"))

    async with raw_server(reply) as server:
        target = {"name": "t", "method": method, "expect": {"status": [status]}}
        config = site_config(tmp_path / "c.yaml", server.url, [target])
        async with checking(config) as (runner, plans):
            results = []
            for _ in range(3):
                results.append(await runner.run(plans["t"]))
                await asyncio.sleep(PIECE_PAUSE_SECONDS * 3)  # the junk has come meanwhile

    assert [(r.error_class, r.http_status) if r else None for r in results] == [
        (ErrorClass.NONE, status)
    ] * 3


async def test_an_interim_1xx_answer_is_skipped_and_the_final_one_judged(tmp_path: Path) -> None:
    early_hints = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    final = answer(200, b'{"status": "ok"}')

    async with raw_server(lambda received, index: Reply((early_hints, final))) as server:
        result = await check_one(
            tmp_path / "c.yaml", server.url, expect={"json": {"status": "ok"}}
        )

    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200)
