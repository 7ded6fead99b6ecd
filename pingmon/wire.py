"""The client sessions checks go out on, and the trace of what one attempt put on the wire."""

from __future__ import annotations

import weakref
from collections.abc import Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp.connector import Connection


@dataclass(slots=True)
class WireTrace:
    """What aiohttp did for one attempt, filled in by its requests (``TracedRequest``).

    ``reused`` says whether the latest connection came from the keep-alive pool;
    ``requests`` counts every time the request's headers went out, aiohttp's own silent
    re-send of an idempotent request (RFC 9112 §9.3.1) and pingmon's keep-alive re-send
    included, so attempts count what reached the server, not what pingmon asked for.
    """

    reused: bool = False
    requests: int = 0


# The trace of the attempt being sent by this task (``tracing``), read as aiohttp builds its
# requests: aiohttp's own tracing (a TraceConfig) fires a dozen awaited signals per request
# whether or not anyone listens, ~30 µs a check; this reads the same two facts at their source.
_CURRENT: ContextVar[WireTrace | None] = ContextVar("pingmon_wire_trace", default=None)
# Connections (their protocols) a request has gone out on: one seen again came from the pool.
_USED: weakref.WeakSet[object] = weakref.WeakSet()


class tracing:
    """Fill ``wire`` in from every request sent in this block (on a ``TracedRequest``
    session), aiohttp's own re-send of an idempotent request included."""

    __slots__ = ("_token", "_wire")

    def __init__(self, wire: WireTrace) -> None:
        self._wire = wire

    def __enter__(self) -> None:
        self._token = _CURRENT.set(self._wire)

    def __exit__(self, *_: object) -> None:
        _CURRENT.reset(self._token)


class TracedRequest(aiohttp.ClientRequest):
    """aiohttp's request, filling in the ``WireTrace`` of ``tracing``: the session's
    ``request_class``. aiohttp builds one per request it sends (its re-send too), and sends
    it once, on the connection it got: ``send`` writes the status line and headers first
    (where aiohttp's ``on_request_headers_sent`` signal would fire), so each call counts a
    request. Nothing else is overridden: passing aiohttp a trace of its own instead would
    make every request and response chunk await it (``StreamWriter`` callbacks)."""

    def send(self, conn: Connection) -> Coroutine[Any, Any, aiohttp.ClientResponse]:
        """aiohttp's ``send``, counted as it is called: aiohttp awaits it at once (``await
        req.send(conn)``), so a plain method returning its coroutine costs a coroutine less
        per request than an ``async def`` awaiting it."""
        protocol = conn.protocol
        seen = protocol is not None and protocol in _USED
        if protocol is not None and not seen:
            _USED.add(protocol)  # untraced requests too: the next one may be traced
        wire = _CURRENT.get()
        if wire is not None:
            wire.reused = seen
            wire.requests += 1
        return super().send(conn)


@dataclass(frozen=True, slots=True)
class Sessions:
    """The pooled session every request goes out on first, and one whose connections are
    never reused, for the single re-send after a keep-alive race (see ``client.send``).

    Both are built alike (``daemon.new_session``) and closed together.
    """

    pooled: aiohttp.ClientSession
    fresh: aiohttp.ClientSession

    async def close(self) -> None:
        await self.pooled.close()
        await self.fresh.close()

    async def __aenter__(self) -> Sessions:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
