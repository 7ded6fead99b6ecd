"""One HTTP attempt: send, time-box, read a bounded body, and classify transport failures."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl

import aiohttp

from pingmon.errors import ErrorClass, TransportError
from pingmon.providers.base import HttpResponse, PreparedRequest, short
from pingmon.route import DIRECT, TransportOptions

READ_CHUNK_BYTES = 65_536
# The userinfo of any URL in a text (RFC 3986 §3.2.1), dropped from what describe() says.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@]*@")


async def send(
    session: aiohttp.ClientSession,
    request: PreparedRequest,
    *,
    timeout: float,
    max_body_bytes: int,
    transport: TransportOptions = DIRECT,
) -> HttpResponse:
    """Send one request; the whole attempt (connect, headers, body) is bounded by ``timeout``.

    Raises TransportError, classified, when no complete response arrived.
    """
    try:
        async with asyncio.timeout(timeout):
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
                ssl=transport.ssl,
                server_hostname=transport.server_hostname,
                proxy=transport.proxy_address,
            ) as response:
                body, truncated = await _read_bounded(response, max_body_bytes)
                return HttpResponse(response.status, response.headers, body, truncated)
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        raise TransportError(classify_exception(error), describe(error)) from None


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes; a larger body is never read whole (the connection is dropped)."""
    if response.content_length is not None and response.content_length > limit:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def classify_exception(error: BaseException) -> ErrorClass:
    """The error class of a failed attempt. Order matters: aiohttp's timeouts are also
    connection errors, and its TLS errors are also connector errors."""
    if isinstance(error, TimeoutError):
        return ErrorClass.TIMEOUT
    if isinstance(error, aiohttp.ClientConnectorDNSError) or _caused_by_dns(error):
        return ErrorClass.DNS
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        return ErrorClass.TLS
    if isinstance(error, aiohttp.ClientHttpProxyError):
        # The proxy refused the tunnel (CONNECT): the provider was never reached.
        return ErrorClass.CONNECT
    if isinstance(error, aiohttp.ClientResponseError):
        # aiohttp could not parse what came back: not an HTTP answer we can judge.
        return ErrorClass.BAD_RESPONSE
    if isinstance(error, aiohttp.InvalidURL):
        return ErrorClass.CLIENT_ERROR
    return ErrorClass.CONNECT


def _caused_by_dns(error: BaseException) -> bool:
    return isinstance(error, aiohttp.ClientConnectorError) and isinstance(
        error.os_error, socket.gaierror
    )


def describe(error: BaseException) -> str:
    """A short reason for logs and /status; the URL's query and userinfo are never included."""
    if isinstance(error, TimeoutError):
        return "no complete answer within the timeout"
    if isinstance(error, aiohttp.ClientConnectorError):
        return short(f"{type(error).__name__}: {error.host}:{error.port}: {error.os_error}")
    if isinstance(error, aiohttp.ClientResponseError):
        return short(f"{type(error).__name__}: {error.status} {error.message}")
    # InvalidURL and NonHttpUrlClientError print the whole URL, user:password@ included.
    said = _USERINFO.sub(r"\1", str(error))
    return short(f"{type(error).__name__}: {said}")
