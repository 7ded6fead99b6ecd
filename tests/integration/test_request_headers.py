"""No invented headers: each provider type sends the headers it or the user asked for, plus
only HTTP's own framing and negotiation (Host, Content-Length, Accept, Accept-Encoding,
User-Agent); never a Content-Type aiohttp made up (a strict API answers 415 to one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from pingmon import __version__
from pingmon.config import load_config
from pingmon.errors import ErrorClass
from pingmon.oneshot import check_once
from tests.integration.origin import Origin, Seen, serve_origin

AUTOMATIC = {"host", "content-length", "accept", "accept-encoding", "user-agent"}


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with serve_origin() as running:
        yield running


async def sent(tmp_path: Path, origin: Origin, provider: dict[str, Any], **target: Any) -> Seen:
    document = {
        "providers": {"p": {**provider, "base_url": origin.url}},
        "targets": [{"name": "t", "provider": "p", **target}],
    }
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    await check_once(load_config(path), [])
    (seen,) = origin.requests
    return seen


def content_types(seen: Seen) -> list[str]:
    return [value for name, value in seen.headers if name.lower() == "content-type"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_a_request_without_a_body_carries_no_content_type(
    tmp_path: Path, origin: Origin, method: str
) -> None:
    seen = await sent(tmp_path, origin, {"type": "http"}, method=method, path="/hook")
    assert seen.method == method
    assert content_types(seen) == []
    assert seen.header("Content-Length") == "0"  # framing: the body is empty (RFC 9110 8.6)
    assert seen.header_names() <= AUTOMATIC


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "GET", "OPTIONS"])
async def test_a_body_without_a_content_type_is_sent_without_one(
    tmp_path: Path, origin: Origin, method: str
) -> None:
    seen = await sent(tmp_path, origin, {"type": "http"}, method=method, body='{"ping": 1}')
    assert (seen.body, content_types(seen)) == (b'{"ping": 1}', [])
    assert seen.header("Content-Length") == "11"
    assert seen.header_names() <= AUTOMATIC


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_a_request_of_a_bodiless_method_carries_neither_type_nor_length(
    tmp_path: Path, origin: Origin, method: str
) -> None:
    seen = await sent(tmp_path, origin, {"type": "http"}, method=method)
    assert seen.header_names() == AUTOMATIC - {"content-length"}


@pytest.mark.parametrize(
    ("provider_headers", "target_headers"),
    [
        ({}, {"Content-Type": "text/plain; charset=utf-8"}),
        ({"content-type": "text/plain; charset=utf-8"}, {}),
    ],
    ids=["target-header", "provider-secret-header"],
)
async def test_a_content_type_the_user_gave_is_sent_once_as_given(
    tmp_path: Path,
    origin: Origin,
    provider_headers: dict[str, str],
    target_headers: dict[str, str],
) -> None:
    provider = {"type": "http", "headers": provider_headers}
    seen = await sent(
        tmp_path, origin, provider, method="POST", body="ping", headers=target_headers
    )
    assert content_types(seen) == ["text/plain; charset=utf-8"]


PROVIDER_TYPES: list[tuple[dict[str, Any], dict[str, Any], set[str], list[str]]] = [
    (
        {"type": "stripe", "api_key": "sk_test_canary"},
        {"destination_id": "ed_test_1"},
        {"authorization", "stripe-version", "idempotency-key", "content-type", "accept"},
        ["application/json"],
    ),
    (
        {
            "type": "simotel",
            "auth": "both",
            "api_key": "simotel-key",
            "username": "user",
            "password": "pass",
        },
        {},
        {"authorization", "x-apikey", "content-type", "accept"},
        ["application/json"],
    ),
    (
        {"type": "ninepic", "api_key": "ninepic-key"},
        {"org_id": 1, "event_id": 2},
        {"x-api-key", "accept"},
        [],
    ),
]


@pytest.mark.parametrize(
    ("provider", "target", "own_headers", "expected_types"),
    PROVIDER_TYPES,
    ids=[provider["type"] for provider, *_ in PROVIDER_TYPES],
)
async def test_each_provider_type_sends_its_own_headers_and_nothing_invented(
    tmp_path: Path,
    origin: Origin,
    provider: dict[str, Any],
    target: dict[str, Any],
    own_headers: set[str],
    expected_types: list[str],
) -> None:
    seen = await sent(tmp_path, origin, provider, **target)
    assert own_headers <= seen.header_names() <= AUTOMATIC | own_headers
    assert content_types(seen) == expected_types
    assert seen.header("User-Agent") == f"pingmon/{__version__}"


async def test_a_strict_api_refusing_unasked_content_types_answers_the_bodiless_post(
    tmp_path: Path,
) -> None:
    """The issue's example: a POST without a body against an API that answers 415 to any
    Content-Type it cannot parse, application/octet-stream included."""

    async def strict(request: web.Request) -> web.Response:
        if request.headers.get("Content-Type") not in (None, "application/json"):
            return web.json_response({"error": "unsupported media type"}, status=415)
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/ping", strict)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    document = {
        "providers": {
            "api": {"type": "http", "base_url": f"http://127.0.0.1:{runner.addresses[0][1]}"}
        },
        "targets": [{"name": "t", "provider": "api", "method": "POST", "path": "/ping"}],
    }
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    try:
        (result,) = await check_once(load_config(path), [])
    finally:
        await runner.cleanup()
    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200)
