"""One HTTP attempt: send (again once after a keep-alive race), time-box, read a bounded body,
and classify the failures that leave no answer to judge."""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Awaitable

import aiohttp
from aiohttp import http_exceptions
from yarl import URL

from pingmon.body import Body, describe_body_error, http_cause, read_body
from pingmon.errors import ErrorClass, ResourceExhausted, TransportError
from pingmon.providers.base import HttpResponse, PreparedRequest, short
from pingmon.route import DIRECT, TransportOptions
from pingmon.timebox import Deadlines, timebox
from pingmon.wire import Sessions, WireTrace, tracing

# What the kernel says when pingmon itself, not the target, is out of something.
EXHAUSTION_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# How a reused keep-alive connection fails when the server closed it as the request went
# out: a clean close (ServerDisconnectedError) or a reset/broken pipe (ClientOSError,
# ClientConnectionResetError), always before a status line.
_KEEPALIVE_RACE = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
    aiohttp.ClientConnectionResetError,
)
# aiohttp adds a Content-Type of its own (application/octet-stream) to a request with a body,
# and to a POST, PUT or PATCH without one; pingmon never sends one it was not given, so those
# requests skip it. A bodiless request of these methods gets none anyway: it goes without the
# skip, which aiohttp pays for with two header copies per request (``update_auto_headers``).
_UNTYPED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SKIP_CONTENT_TYPE = ("Content-Type",)
# The userinfo of any URL in a text (RFC 3986 §3.2.1), dropped from what describe() says.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@]*@")


async def send(
    sessions: Sessions,
    request: PreparedRequest,
    *,
    timeout: float,
    max_body_bytes: int,
    transport: TransportOptions = DIRECT,
    wire: WireTrace | None = None,
    url: URL | str | None = None,
    deadlines: Deadlines | None = None,
) -> HttpResponse:
    """Send one attempt; connect, headers and body together are bounded by ``timeout``.

    Raises TransportError, classified, when no status line arrived (ResourceExhausted when
    pingmon itself had no file descriptor or buffer for it). Once one did, the answer is
    returned whatever happens to its body (``HttpResponse.body_error``): the status decides
    first. ``wire``, when given, is filled in with what went on the wire. ``url`` is
    ``request.url`` already parsed (``parse_url``, e.g. kept by a ``UrlMemo``); None: it is
    parsed here. ``deadlines``: the timer the bound shares (None: one of its own).

    A request that fails on a reused keep-alive connection before any answer is sent again
    once, on a fresh connection: a server (or load balancer) closing an idle connection as
    a request goes out is routine, not a provider failure (RFC 9112 §9.3.1, §9.6). This
    holds for every method, POST included: the request is re-sent unchanged, so a check
    keeps its Idempotency-Key, if it sends one. A failure on a fresh connection is the
    server's.
    """
    wire = wire if wire is not None else WireTrace()
    body = Body()
    response = None
    target = parse_url(request.url) if url is None else url
    try:
        with timebox(timeout) if deadlines is None else deadlines.box(timeout):
            with tracing(wire):
                try:
                    response = await _request(sessions.pooled, request, target, transport)
                except _KEEPALIVE_RACE as error:
                    if not wire.reused or isinstance(error, aiohttp.ClientConnectorError):
                        raise
                if response is None:  # the keep-alive race: outside the except, unchained
                    response = await _request(sessions.fresh, request, target, transport)
            async with response:  # releases the connection, or closes it mid-body
                await read_body(body, response, request.method, max_body_bytes)
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        if response is None:
            if (code := exhausted_errno(error)) is not None:
                raise ResourceExhausted(errno.errorcode[code], describe(error)) from None
            raise TransportError(classify_exception(error), describe(error)) from None
        body.error = describe_body_error(error)
    return HttpResponse(response.status, response.headers, body.data, body.truncated, body.error)


def _request(
    session: aiohttp.ClientSession,
    request: PreparedRequest,
    url: URL | str,
    transport: TransportOptions,
) -> Awaitable[aiohttp.ClientResponse]:
    """``request`` on ``session``, as an awaitable (not a coroutine of ours: one layer less
    for every resumption of the check)."""
    return session.request(
        request.method,
        url,
        headers=request.headers,
        skip_auto_headers=skip_auto_headers(request),
        data=request.body,
        allow_redirects=False,
        ssl=transport.ssl,
        server_hostname=transport.server_hostname,
        proxy=transport.proxy_address,
    )


def skip_auto_headers(request: PreparedRequest) -> tuple[str, ...] | None:
    """What aiohttp must not add to ``request``: its Content-Type, unless it would add none
    (a bodiless GET, HEAD or OPTIONS; tests/integration/test_request_headers.py pins both)."""
    if request.body is None and request.method in _UNTYPED_METHODS:
        return None
    return _SKIP_CONTENT_TYPE


def parse_url(url: str) -> URL | str:
    """``url`` as aiohttp parses it (``yarl.URL``, ~5-20 µs). One that does not parse is
    left as it is, for aiohttp to say why (``InvalidURL``)."""
    try:
        return URL(url)
    except (ValueError, TypeError):
        return url


class UrlMemo:
    """One target's URL as ``parse_url`` gives it, kept while the URL stays the same: a
    target's URL is usually the same at every check. One per target (``TargetPlan``), so it
    is bounded by the configuration and dropped with it at a reload."""

    __slots__ = ("_parsed", "_text")

    def __init__(self) -> None:
        self._text: str | None = None
        self._parsed: URL | str = ""

    def __call__(self, url: str) -> URL | str:
        """``parse_url(url)``, parsed again only when ``url`` differs from the last one."""
        if url != self._text:
            self._parsed = parse_url(url)
            self._text = url
        return self._parsed


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
    if isinstance(error, aiohttp.ClientHttpProxyError):
        # The proxy's own answer to CONNECT: its status is real, unlike a parse failure's.
        return short(f"proxy refused the tunnel: HTTP {error.status} {error.message}")
    if isinstance(error, aiohttp.ClientResponseError):
        return _unparsable(error)
    # InvalidURL and NonHttpUrlClientError print the whole URL, user:password@ included.
    said = _USERINFO.sub(r"\1", str(error))
    return short(f"{type(error).__name__}: {said}")


def _unparsable(error: aiohttp.ClientResponseError) -> str:
    """Why aiohttp could not parse the status line or headers. Its status (400) is its own
    invention and its message quotes the server's bytes, so neither is repeated."""
    cause = http_cause(error)
    if isinstance(cause, http_exceptions.LineTooLong):
        limit = cause.args[1] if len(cause.args) > 1 else None  # (line, limit, actual size)
        bound = f"{limit} bytes" if isinstance(limit, int) else "the limit"
        return f"invalid response: a status or header line longer than {bound}"
    if isinstance(cause, http_exceptions.BadHttpMessage) and "Too many headers" in str(cause):
        return "invalid response: more response headers than the limit"
    if isinstance(cause, http_exceptions.BadStatusLine):
        return "invalid response: not an HTTP status line"
    if isinstance(cause, http_exceptions.InvalidHeader):
        return "invalid response: a malformed header"
    if cause is None:
        return f"invalid response ({type(error).__name__})"
    # llhttp's reason comes first ("Invalid character in chunk size: b'zz' ^"); the quoted
    # bytes after it are the server's and are dropped.
    reason = str(cause.message).split(":", 1)[0].split("'", 1)[0].split('"', 1)[0]
    return short(f"invalid response: {reason[:80].strip() or type(cause).__name__}")
