"""The client sessions checks go out on, and the trace of what one attempt put on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Any

import aiohttp


@dataclass(slots=True)
class WireTrace:
    """What aiohttp did for one attempt, filled in by its tracing signals.

    ``reused`` says whether the latest connection came from the keep-alive pool;
    ``requests`` counts every time the request's headers went out, aiohttp's own silent
    re-send of an idempotent request (RFC 9112 §9.3.1) and pingmon's keep-alive re-send
    included, so attempts count what reached the server, not what pingmon asked for.
    """

    reused: bool = False
    requests: int = 0


def trace_config() -> aiohttp.TraceConfig:
    """Signals that fill the ``WireTrace`` passed as a request's ``trace_request_ctx``."""
    config = aiohttp.TraceConfig()
    config.on_connection_reuseconn.append(_on_reused)
    config.on_connection_create_end.append(_on_created)
    config.on_request_headers_sent.append(_on_headers_sent)
    return config


def _trace(context: SimpleNamespace) -> WireTrace | None:
    trace = context.trace_request_ctx
    return trace if isinstance(trace, WireTrace) else None


async def _on_reused(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    if (trace := _trace(context)) is not None:
        trace.reused = True


async def _on_created(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    if (trace := _trace(context)) is not None:
        trace.reused = False


async def _on_headers_sent(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    if (trace := _trace(context)) is not None:
        trace.requests += 1


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
