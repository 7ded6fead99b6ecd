"""Once a status line arrived, the status and the body rules decide, never a transport class:
broken framing, bad or unusual content codings, bodies that stall or expand without end."""

from __future__ import annotations

import gzip
import os
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli
import pytest
from backports import zstd

from pingmon.errors import ErrorClass
from pingmon.results import CheckResult
from tests.integration.rawhttp import Reply, answer, check_one, checking, raw_server, site_config

OK = b'{"status": "ok"}'
JSON = ("Content-Type", "application/json")
ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
}


def head(status: int, *headers: tuple[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(status: int) -> bytes:
    return head(status, JSON, ("Transfer-Encoding", "chunked"))


BAD_CHUNK = b"zz\r\n" + OK + b"\r\n0\r\n\r\n"

BROKEN = [
    pytest.param(
        Reply((answer(200, OK, (JSON, ("Content-Encoding", "gzip"))),)),
        (ErrorClass.BAD_RESPONSE, 200, "content coding"),
        id="200-gzip-header-over-a-plain-body",
    ),
    pytest.param(
        Reply((answer(200, OK, (JSON,), content_length=100),), close=True),
        (ErrorClass.BAD_RESPONSE, 200, "Content-Length"),
        id="200-shorter-than-content-length",
    ),
    pytest.param(
        # aiohttp's C parser leaves the body unfinished, so the timeout ends it.
        Reply((chunked(200), BAD_CHUNK)),
        (ErrorClass.BAD_RESPONSE, 200, "broken body"),
        id="200-bad-chunk-size",
    ),
    pytest.param(
        Reply((chunked(200), b"10\r\n" + OK + b"\r\n"), close=True),
        (ErrorClass.BAD_RESPONSE, 200, "chunked"),
        id="200-chunked-cut-short",
    ),
    pytest.param(
        Reply((head(200, JSON, ("Content-Encoding", "gzip")), gzip.compress(OK * 50)[:40])),
        (ErrorClass.BAD_RESPONSE, 200, ""),
        id="200-gzip-cut-short",
    ),
    pytest.param(
        Reply((answer(200, OK, (JSON,), content_length=100),)),
        (ErrorClass.BAD_RESPONSE, 200, "timeout"),
        id="200-body-stalls",
    ),
    pytest.param(
        Reply((answer(503, b"<html>maint", content_length=500),), close=True),
        (ErrorClass.SERVER_ERROR, 503, "503"),
        id="503-shorter-than-content-length",
    ),
    pytest.param(
        Reply((chunked(503), BAD_CHUNK)),
        (ErrorClass.SERVER_ERROR, 503, "503"),
        id="503-bad-chunk-size",
    ),
    pytest.param(
        Reply((answer(401, b"not br", (("Content-Encoding", "br"),)),)),
        (ErrorClass.AUTH, 401, "401"),
        id="401-bad-br",
    ),
    pytest.param(
        Reply((answer(404, b"not zstd", (("Content-Encoding", "zstd"),)),)),
        (ErrorClass.NOT_FOUND, 404, "404"),
        id="404-bad-zstd",
    ),
    pytest.param(
        Reply((answer(429, b"slow", (("Retry-After", "5"),), content_length=99),)),
        (ErrorClass.RATE_LIMITED, 429, "429"),
        id="429-body-stalls",
    ),
    pytest.param(
        Reply((answer(200, OK, (JSON, ("Content-Encoding", "x-gzip"))),)),
        (ErrorClass.BAD_RESPONSE, 200, "content coding"),
        id="200-x-gzip-header-over-a-plain-body",
    ),
    pytest.param(
        Reply((answer(503, b"maint", (("Content-Encoding", "gzip, br"),)),)),
        (ErrorClass.SERVER_ERROR, 503, "503"),
        id="503-bad-coding-list",
    ),
]


@pytest.mark.parametrize(("reply", "expected"), BROKEN)
async def test_a_broken_body_keeps_the_status_class_and_a_2xx_is_a_bad_response(
    tmp_path: Path, reply: Reply, expected: tuple[ErrorClass, int, str]
) -> None:
    error_class, status, said = expected
    async with raw_server(lambda received, index: reply) as server:
        result = await check_one(
            tmp_path / "c.yaml",
            server.url,
            timeout="500ms",
            retries=1,
            expect={"json": {"status": "ok"}},
        )

    assert (result.error_class, result.http_status) == (error_class, status), result.detail
    assert said in result.detail
    assert "400" not in result.detail
    # Only a server_error is worth a retry; a broken 2xx body is not a transport failure.
    assert result.attempts == (2 if error_class is ErrorClass.SERVER_ERROR else 1)


@pytest.mark.parametrize("coding", list(ENCODERS))
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, ErrorClass.NONE),
        (401, ErrorClass.AUTH),
        (404, ErrorClass.NOT_FOUND),
        (429, ErrorClass.RATE_LIMITED),
        (503, ErrorClass.SERVER_ERROR),
    ],
)
async def test_every_common_content_coding_is_decoded_and_the_status_decides(
    tmp_path: Path, coding: str, status: int, expected: ErrorClass
) -> None:
    body = ENCODERS[coding](OK)
    reply = Reply((answer(status, body, (JSON, ("Content-Encoding", coding))),))
    async with raw_server(lambda received, index: reply) as server:
        result = await check_one(
            tmp_path / "c.yaml", server.url, expect={"json": {"status": "ok"}}
        )

    assert (result.error_class, result.http_status) == (expected, status), result.detail


async def test_a_br_coded_429_still_backs_the_credential_off(tmp_path: Path) -> None:
    slow_down = brotli.compress(b"slow down")
    headers = (("Content-Encoding", "br"), ("Retry-After", "5"))
    reply = Reply((answer(429, slow_down, headers),))
    async with raw_server(lambda received, index: reply) as server:
        target = {"name": "t", "headers": {"Accept-Encoding": "br, gzip"}}
        config = site_config(tmp_path / "c.yaml", server.url, [target])
        async with checking(config) as (runner, plans):
            first = await runner.run(plans["t"])
            second = await runner.run(plans["t"])

    assert first is not None
    assert first.error_class is ErrorClass.RATE_LIMITED
    assert second is None  # backing off: not sent
    assert runner.gate.is_closed(plans["t"].credential)
    assert server.count() == 1


async def test_max_body_bytes_counts_decoded_bytes_not_the_coded_length(tmp_path: Path) -> None:
    decoded = os.urandom(9000)  # incompressible: its gzip form is a little longer
    coded = gzip.compress(decoded)
    assert len(coded) > 9010
    reply = Reply((answer(200, coded, (("Content-Encoding", "gzip"),)),))
    async with raw_server(lambda received, index: reply) as server:
        fits = await check_one(tmp_path / "c.yaml", server.url, max_body_bytes=9010)
        too_large = await check_one(tmp_path / "c.yaml", server.url, max_body_bytes=8990)

    assert fits.error_class is ErrorClass.NONE, fits.detail
    assert too_large.error_class is ErrorClass.BAD_RESPONSE
    assert too_large.detail == "body larger than max_body_bytes"


@pytest.mark.parametrize("coding", [None, "identity", " Identity ", ""])
async def test_a_plain_body_declared_larger_than_the_limit_is_never_read(
    tmp_path: Path, coding: str | None
) -> None:
    """Without a content coding, Content-Length is the decoded size: one over the limit is
    too large at once, though the body stalls (it would otherwise end at the timeout)."""
    headers = (JSON,) if coding is None else (JSON, ("Content-Encoding", coding))
    reply = Reply((answer(200, OK, headers, content_length=5000),))
    async with raw_server(lambda received, index: reply) as server:
        result = await check_one(tmp_path / "c.yaml", server.url, max_body_bytes=4999)

    assert result.error_class is ErrorClass.BAD_RESPONSE
    assert result.detail == "body larger than max_body_bytes"


async def test_no_status_line_within_the_timeout_is_timeout_and_the_next_check_runs(
    tmp_path: Path,
) -> None:
    """The attempt's bound covers waiting for the headers: it ends as timeout (not as a
    cancellation of the check), and the runner checks the target again as usual."""
    # Half a status line, then silence on a connection left open; an answer next time.
    replies = [Reply((b"HTTP/1.1 2",)), Reply((answer(200, OK, (JSON,)),))]
    async with raw_server(lambda received, index: replies[min(server.count() - 1, 1)]) as server:
        target = {"name": "t", "timeout": "0.3s", "retries": 0}
        config = site_config(tmp_path / "c.yaml", server.url, [target])
        async with checking(config) as (runner, plans):
            silent = await runner.run(plans["t"])
            answered = await runner.run(plans["t"])

    assert silent is not None
    assert answered is not None
    assert (silent.error_class, silent.http_status) == (ErrorClass.TIMEOUT, None)
    assert silent.detail == "no complete answer within the timeout"
    assert answered.error_class is ErrorClass.NONE, answered.detail


def coded(codings: str, data: bytes) -> bytes:
    """``data`` with the codings of a Content-Encoding list applied in its order."""
    aliases = {"x-gzip": "gzip"}
    for coding in (c.strip().lower() for c in codings.split(",")):
        coding = aliases.get(coding, coding)
        data = data if coding in ("", "identity") else ENCODERS[coding](data)
    return data


# RFC 9110 §8.4: a list names every coding in the order applied; §8.4.1.3: x-gzip is gzip.
CODING_LISTS = ["x-gzip", "X-GZIP", "gzip, identity", "identity, br", "gzip, gzip"]
CODING_LISTS += ["deflate, gzip", "br,zstd", " gzip , deflate ", "zstd, x-gzip"]


@pytest.mark.parametrize("codings", CODING_LISTS)
async def test_an_alias_or_a_list_of_content_codings_is_decoded_in_order(
    tmp_path: Path, codings: str
) -> None:
    reply = Reply((answer(200, coded(codings, OK), (JSON, ("Content-Encoding", codings))),))
    async with raw_server(lambda received, index: reply) as server:
        result = await check_one(
            tmp_path / "c.yaml", server.url, expect={"json": {"status": "ok"}}
        )

    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200), result.detail


BOMB_DECODED_BYTES = 64 * 1024 * 1024
BOMB_LIMIT = 64 * 1024


def _bomb(coding: str) -> bytes:
    """64 MiB of zeros, coded without ever holding them whole."""
    block = bytes(1024 * 1024)
    blocks = BOMB_DECODED_BYTES // len(block)
    if coding in ("gzip", "deflate"):
        coder = zlib.compressobj(1, wbits=31 if coding == "gzip" else 15)
        return b"".join(coder.compress(block) for _ in range(blocks)) + coder.flush()
    if coding == "br":
        stream = brotli.Compressor(quality=5)
        coded: bytes = b"".join(stream.process(block) for _ in range(blocks)) + stream.finish()
        return coded
    zcoder = zstd.ZstdCompressor()
    return b"".join(zcoder.compress(block) for _ in range(blocks)) + zcoder.flush()


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {coding: _bomb(coding) for coding in ENCODERS}


async def checked_with_traced_peak(tmp_path: Path, reply: Reply) -> tuple[CheckResult, int]:
    """One check of a server answering ``reply`` under the bomb limit, and the peak of memory
    traced while it ran (bytes)."""
    target: dict[str, Any] = {"max_body_bytes": BOMB_LIMIT, "timeout": "3s"}
    async with raw_server(lambda received, index: reply) as server:
        tracemalloc.start()
        try:
            result = await check_one(tmp_path / "c.yaml", server.url, **target)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("coding", list(ENCODERS))
async def test_a_decompression_bomb_is_cut_at_max_body_bytes_with_bounded_memory(
    tmp_path: Path, coding: str, bombs: dict[str, bytes]
) -> None:
    reply = Reply((answer(200, bombs[coding], (JSON, ("Content-Encoding", coding))),))
    result, peak = await checked_with_traced_peak(tmp_path, reply)

    assert result.error_class is ErrorClass.BAD_RESPONSE
    assert result.detail == "body larger than max_body_bytes"
    assert peak < BOMB_DECODED_BYTES // 8, f"{peak} bytes traced"


@pytest.mark.parametrize("codings", ["x-gzip", "gzip, identity", "gzip, gzip"])
async def test_a_bomb_in_a_coding_pingmon_decodes_itself_is_cut_with_bounded_memory(
    tmp_path: Path, codings: str, bombs: dict[str, bytes]
) -> None:
    body = bombs["gzip"] if codings != "gzip, gzip" else gzip.compress(bombs["gzip"])
    reply = Reply((answer(200, body, (JSON, ("Content-Encoding", codings))),))
    result, peak = await checked_with_traced_peak(tmp_path, reply)

    assert result.error_class is ErrorClass.BAD_RESPONSE
    assert result.detail == "body larger than max_body_bytes"
    assert peak < BOMB_DECODED_BYTES // 8, f"{peak} bytes traced"
