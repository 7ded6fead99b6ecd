"""One HTTP attempt: send, time-box, read a bounded body, and classify transport failures."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import aiohttp

from pingmon.errors import ErrorClass, ResourceExhausted, TransportError
from pingmon.providers.base import HttpResponse, PreparedRequest, short
from pingmon.route import DIRECT, TransportOptions

READ_CHUNK_BYTES = 65_536
# What the kernel says when pingmon itself, not the target, is out of something.
EXHAUSTION_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


async def send(
    session: aiohttp.ClientSession,
    request: PreparedRequest,
    *,
    timeout: float,
    max_body_bytes: int,
    transport: TransportOptions = DIRECT,
) -> HttpResponse:
    """Send one request; the whole attempt (connect, headers, body) is bounded by ``timeout``.

    Raises TransportError, classified, when no complete response arrived; ResourceExhausted
    (a TransportError) when pingmon itself had no file descriptor or buffer for it.
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
        if (code := exhausted_errno(error)) is not None:
            raise ResourceExhausted(errno.errorcode[code], describe(error)) from None
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


def exhausted_errno(error: BaseException) -> int | None:
    """EMFILE, ENFILE, ENOBUFS or ENOMEM when that is what failed the attempt, anywhere in
    the exception's chain (aiohttp wraps the socket's OSError), else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in EXHAUSTION_ERRNOS:
            return current.errno
        os_error = getattr(current, "os_error", None)
        current = os_error if isinstance(os_error, OSError) else current.__cause__
    return None


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
    return short(f"{type(error).__name__}: {error}")
