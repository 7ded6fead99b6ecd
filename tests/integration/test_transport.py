"""Transport failures against real loopback servers: TLS verification and error classes."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web

from pingmon.client import classify_exception
from pingmon.config import load_config
from pingmon.errors import ErrorClass
from pingmon.oneshot import check_once
from tests.integration.closing import cleanup_aborting
from tests.integration.conftest import ConfigWriter


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(certificate_authority: trustme.CA) -> AsyncIterator[str]:
    """An HTTPS status page on 127.0.0.1 whose certificate our own test CA issued."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    yield f"https://127.0.0.1:{port}"
    await cleanup_aborting(runner)


async def _check(config_writer: ConfigWriter, base_url: str, tls: dict[str, Any]) -> ErrorClass:
    providers = {"secure": {"type": "http", "base_url": base_url, "tls": tls}}
    target = {"name": "secure", "provider": "secure", "path": "/healthz"}
    path = config_writer.write([target], providers=providers)
    (result,) = await check_once(load_config(path), [])
    return result.error_class


async def test_unknown_certificate_authority_is_a_tls_error(
    config_writer: ConfigWriter, tls_server: str
) -> None:
    assert await _check(config_writer, tls_server, {}) is ErrorClass.TLS


async def test_ca_file_makes_the_certificate_trusted(
    config_writer: ConfigWriter, tls_server: str, certificate_authority: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(ca_file))
    verdict = await _check(config_writer, tls_server, {"ca_file": str(ca_file)})
    assert verdict is ErrorClass.NONE


async def test_insecure_skip_verify_accepts_any_certificate(
    config_writer: ConfigWriter, tls_server: str
) -> None:
    verdict = await _check(config_writer, tls_server, {"insecure_skip_verify": True})
    assert verdict is ErrorClass.NONE


async def test_plain_http_to_a_tls_port_is_not_a_success(
    config_writer: ConfigWriter, tls_server: str
) -> None:
    plain = tls_server.replace("https://", "http://")
    assert await _check(config_writer, plain, {}) in {ErrorClass.CONNECT, ErrorClass.BAD_RESPONSE}


def _connector_error(os_error: OSError) -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("example.invalid", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, os_error)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TimeoutError(), ErrorClass.TIMEOUT),
        (aiohttp.ServerTimeoutError("read"), ErrorClass.TIMEOUT),
        (
            aiohttp.ClientConnectorDNSError(
                aiohttp.client_reqrep.ConnectionKey(
                    "example.invalid", 443, True, True, None, None, None
                ),
                OSError(-2, "Name or service not known"),
            ),
            ErrorClass.DNS,
        ),
        (_connector_error(socket.gaierror(-2, "Name or service not known")), ErrorClass.DNS),
        (_connector_error(ConnectionRefusedError(111, "refused")), ErrorClass.CONNECT),
        (aiohttp.ServerDisconnectedError(), ErrorClass.CONNECT),
        (aiohttp.ClientOSError(104, "reset"), ErrorClass.CONNECT),
        (ssl.SSLError("handshake"), ErrorClass.TLS),
        (aiohttp.ClientPayloadError("truncated"), ErrorClass.CONNECT),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_aiohttp_exceptions_map_to_one_error_class(
    error: BaseException, expected: ErrorClass
) -> None:
    assert classify_exception(error) is expected
