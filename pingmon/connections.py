"""Bounds on pingmon's own HTTP server: a connection cap, and header, idle and write timeouts.

aiohttp's server closes a connection that has no complete request ``keepalive_timeout``
after it opened or after its last answer (the idle timeout), and bounds line and header sizes;
it has no header-read deadline, no cap on connections and no write deadline. Those live here,
at the lowest level that sees every connection: a protocol wrapped around aiohttp's own, made
by the listening socket's protocol factory (``GuardedRunner.server``):

- cap: at ``max_connections``, a new connection takes the place of the one that has waited
  longest without being served (a request's headers still coming, an answer not read, an idle
  keep-alive), which is closed; when every connection is being served it is answered 503 and
  closed at once. Connections (and their file descriptors) never accumulate, and clients that
  hold connections without using them cannot lock out a health probe or a scrape;
- header timeout: a request's line and headers must arrive within ``header_timeout`` of its
  first byte (for a connection's first request, of the connection), as Go's
  ``ReadHeaderTimeout``; a half-sent request is closed then, whatever trickles in;
- write timeout: what waits for a client is bounded, in pingmon (the transport's buffer,
  ``WRITE_BUFFER_BYTES``) and in the kernel (``TCP_NOTSENT_LOWAT``: otherwise Linux grows
  the send buffer to 4 MB and takes a whole ``/metrics`` for a client that reads nothing,
  out of sight of the timeout and of RSS); a client that leaves it full for
  ``write_timeout`` is disconnected, which frees both.

Everything runs on the event loop; the counts are plain integers read by the collector.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pingmon.config import ServerSettings
from pingmon.throttle import LogThrottle

log = logging.getLogger("pingmon.server")

# What a client that leaves an answer unread can pin in pingmon, about: the transport is
# paused above it (and the write timeout starts); half of asyncio's default.
WRITE_BUFFER_BYTES = 32768
# Data not yet sent that the kernel queues for a connection before it stops taking more
# (Linux's TCP_NOTSENT_LOWAT, tcp(7)); data in flight to a reading client is not bounded by it.
UNSENT_KERNEL_BYTES = 131072
TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_REFUSAL_BODY = b"pingmon has too many open connections; try again later\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n"
    b"\r\n" + _REFUSAL_BODY
)


class Drop(StrEnum):
    """Why pingmon closed a client's connection itself: a metric label."""

    MAX_CONNECTIONS = "max_connections"  # refused: at the cap, and every connection served
    EVICTED = "evicted"  # closed at the cap to make room: it waited longest unserved
    HEADER_TIMEOUT = "header_timeout"
    WRITE_TIMEOUT = "write_timeout"


class ConnectionLimits:
    """The bounds of every listening site of one process, and what they did."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.open = 0
        self.dropped: Counter[Drop] = Counter()
        self._guards: dict[asyncio.BaseProtocol, _Guarded] = {}  # by aiohttp's protocol
        # Admitted connections not being served (waiting for a request's headers, for a
        # client to read, or idle), the one unserved longest first: who makes room at the cap.
        self._unserved: dict[_Guarded, None] = {}
        self._log = LogThrottle()

    def factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for a listening socket: aiohttp's protocol, guarded."""
        return lambda: _Guarded(self, server())

    def middleware(self) -> Middleware:
        """Tells a connection when its request's headers are in (so the header timer stops)
        and when its handler is done (so the next request's first byte starts it again)."""

        @web.middleware
        async def track(request: web.Request, handler: Handler) -> web.StreamResponse:
            guard = self._guards.get(request.protocol)
            if guard is not None:
                guard.request_started()
            try:
                return await handler(request)
            finally:
                if guard is not None:
                    guard.request_done()

        return track

    def admit(self, guard: _Guarded) -> bool:
        """Count a new connection in, closing the longest unserved one at the cap; False
        when every connection is being served (the new one is refused)."""
        if self.open >= self.settings.max_connections:
            victim = next(iter(self._unserved), None)
            if victim is None:
                self.drop(Drop.MAX_CONNECTIONS)
                return False
            victim.close(Drop.EVICTED)
        self.open += 1
        self._guards[guard.inner] = guard
        return True

    def release(self, guard: _Guarded) -> None:
        self.open -= 1
        self._guards.pop(guard.inner, None)
        self._unserved.pop(guard, None)

    def served(self, guard: _Guarded, served: bool) -> None:
        """Note whether a connection is being served; an unserved one goes to the back of
        the line (its wait starts now)."""
        self._unserved.pop(guard, None)
        if not served:
            self._unserved[guard] = None

    def drop(self, reason: Drop) -> None:
        """Count a connection pingmon closed itself, and say so at most every few seconds."""
        self.dropped[reason] += 1
        suppressed = self._log.admit(reason)
        if suppressed is not None:
            extra: dict[str, Any] = {"reason": reason.value, "open_connections": self.open}
            if suppressed:
                extra["suppressed"] = suppressed
            log.warning("closed a client's connection", extra=extra)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the cap and the header and write timers."""

    def __init__(self, limits: ConnectionLimits, inner: asyncio.Protocol) -> None:
        self.inner = inner
        self._limits = limits
        self._transport: asyncio.Transport | None = None
        self._admitted = False
        self._busy = False  # a request's headers are in and its handler is running
        self._header_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, if not an asyncio.Transport subclass on every loop (uvloop's).
        stream = self._transport = cast(asyncio.Transport, transport)
        if not self._limits.admit(self):
            stream.write(REFUSAL)
            stream.close()
            return
        self._admitted = True
        stream.set_write_buffer_limits(high=WRITE_BUFFER_BYTES)
        _bound_unsent(stream)
        self._start_header_timer()
        self.inner.connection_made(stream)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if not self._busy and self._header_timer is None:  # a new request's first byte
            self._start_header_timer()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._cancel_timers()
        self._limits.release(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if not self._admitted:
            return
        if self._write_timer is None:
            loop = asyncio.get_running_loop()
            timeout = self._limits.settings.write_timeout
            self._write_timer = loop.call_later(timeout, self._write_timeout)
            self._limits.served(self, False)
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        if not self._admitted:
            return
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
            self._limits.served(self, self._busy)
        self.inner.resume_writing()

    def request_started(self) -> None:
        self._busy = True
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._limits.served(self, self._write_timer is None)

    def request_done(self) -> None:
        self._busy = False
        self._limits.served(self, False)

    def close(self, reason: Drop) -> None:
        """Close the connection now, discarding what was not sent, and count why."""
        self._limits.served(self, True)  # not to be chosen again while it closes
        if self._transport is not None and not self._transport.is_closing():
            self._limits.drop(reason)
            _reset(self._transport)

    def _start_header_timer(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self._limits.settings.header_timeout
        self._header_timer = loop.call_later(timeout, self._header_timeout)
        self._limits.served(self, False)

    def _header_timeout(self) -> None:
        self._header_timer = None
        self.close(Drop.HEADER_TIMEOUT)

    def _write_timeout(self) -> None:
        self._write_timer = None
        self.close(Drop.WRITE_TIMEOUT)

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._write_timer = None


def _bound_unsent(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    option = getattr(socket, "TCP_NOTSENT_LOWAT", None)  # Linux, macOS
    if sock is not None and option is not None and sock.family in TCP_FAMILIES:
        sock.setsockopt(socket.IPPROTO_TCP, option, UNSENT_KERNEL_BYTES)


def _reset(transport: asyncio.Transport) -> None:
    """Close with a reset (SO_LINGER 0): the kernel drops what it still holds for the
    client at once, instead of keeping it for an orphaned socket that may never drain."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in TCP_FAMILIES:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class GuardedRunner(web.AppRunner):
    """An AppRunner whose sites accept connections through ``limits``; aiohttp's own idle
    timeout (``keepalive_timeout``) is the settings' ``idle_timeout``."""

    __slots__ = ("_limits",)

    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: Any) -> None:
        app.middlewares.insert(0, limits.middleware())  # outermost: before any other answers
        super().__init__(app, keepalive_timeout=limits.settings.idle_timeout, **kwargs)
        self._limits = limits

    @property
    def server(self) -> Callable[[], asyncio.Protocol] | None:  # type: ignore[override]
        """What the sites pass to ``loop.create_server``: aiohttp's only use of it."""
        server = super().server
        return None if server is None else self._limits.factory(server)


class ConnectionCollector(Collector):
    """``pingmon_http_open_connections`` and ``pingmon_http_connections_dropped_total``."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self._limits = limits

    def collect(self) -> Iterator[Metric]:
        open_connections = GaugeMetricFamily(
            "pingmon_http_open_connections",
            "Client connections open to pingmon's HTTP server(s).",
            value=self._limits.open,
        )
        dropped = CounterMetricFamily(
            "pingmon_http_connections_dropped",
            "Client connections pingmon closed itself: refused past max_connections, or "
            "timed out sending a request's headers or not reading an answer.",
            labels=["reason"],
        )
        for reason in Drop:
            dropped.add_metric([reason.value], self._limits.dropped[reason])
        yield open_connections
        yield dropped
