"""Response headers as large as real APIs send are accepted; beyond the bound the answer is a
bad_response that invents no status and quotes no header."""

from __future__ import annotations

from pathlib import Path

import pytest

from pingmon.daemon import MAX_RESPONSE_HEADERS, MAX_RESPONSE_LINE_BYTES
from pingmon.errors import ErrorClass
from tests.integration.rawhttp import Reply, answer, check_one, raw_server

CANARY = "hdrcanary"
BODY = b'{"status": "ok"}'
CSP = "default-src 'self'; " + " ".join(f"https://cdn{i}.example.com" for i in range(400))


def with_headers(*headers: tuple[str, str]) -> Reply:
    return Reply((answer(200, BODY, (("Content-Type", "application/json"), *headers)),))


HEALTHY = [
    pytest.param((("Content-Security-Policy", CSP),), id="10kB-csp"),
    pytest.param((("Set-Cookie", "session=" + "a" * 9000 + "; Path=/"),), id="9kB-cookie"),
    pytest.param(tuple((f"X-Trace-{i}", "x") for i in range(150)), id="150-headers"),
    pytest.param((("X-Big", "b" * (MAX_RESPONSE_LINE_BYTES - 16)),), id="line-at-the-bound"),
    pytest.param(
        tuple((f"X-H{i}", "x") for i in range(MAX_RESPONSE_HEADERS - 4)), id="count-at-the-bound"
    ),
]


@pytest.mark.parametrize("headers", HEALTHY)
async def test_a_healthy_answer_with_large_headers_is_a_success(
    tmp_path: Path, headers: tuple[tuple[str, str], ...]
) -> None:
    async with raw_server(lambda received, index: with_headers(*headers)) as server:
        result = await check_one(
            tmp_path / "c.yaml", server.url, expect={"json": {"status": "ok"}}
        )

    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200), result.detail


TOO_LARGE = [
    pytest.param((("X-Huge", CANARY * (80 * 1024 // len(CANARY))),), "longer than", id="80KiB"),
    pytest.param(
        tuple((f"X-{CANARY}-{i}", CANARY) for i in range(MAX_RESPONSE_HEADERS + 1000)),
        "more response headers",
        id="3000-headers",
    ),
]


@pytest.mark.parametrize(("headers", "said"), TOO_LARGE)
async def test_headers_beyond_the_bound_are_a_bad_response_quoting_nothing(
    tmp_path: Path, headers: tuple[tuple[str, str], ...], said: str
) -> None:
    async with raw_server(lambda received, index: with_headers(*headers)) as server:
        result = await check_one(tmp_path / "c.yaml", server.url, retries=2)

    assert result.error_class is ErrorClass.BAD_RESPONSE
    assert result.http_status is None
    assert result.attempts == 1  # not a transport failure worth a retry
    assert said in result.detail
    assert "400" not in result.detail
    assert CANARY not in result.detail
