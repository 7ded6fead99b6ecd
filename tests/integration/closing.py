"""Ending a test's own TLS servers without leaving a socket behind.

A graceful TLS close (``transport.close()``, what ``AppRunner.cleanup`` and
``StreamWriter.close`` do) sends close_notify and waits for the peer's, up to asyncio's
``ssl_shutdown_timeout`` (30 s); the test's event loop is closed long before when the peer is
slow to hang up (a proxy that has not yet relayed pingmon's close), and the plain socket under
the TLS layer is then never closed: a ``ResourceWarning`` whenever the collector next runs,
in whatever test that is. A test's server has nothing left to say at its teardown, so it
aborts: the socket is closed at once, whatever the peer does.
"""

from __future__ import annotations

import asyncio

from aiohttp import web


async def cleanup_aborting(runner: web.BaseRunner) -> None:
    """``runner.cleanup()`` after aborting every connection its server still holds."""
    if runner.server is not None:
        for handler in runner.server.connections:
            if handler.transport is not None:
                handler.transport.abort()
    await runner.cleanup()


class StreamConnections:
    """The connections an ``asyncio.start_server`` callback is serving (``track`` each
    writer), to ``abort`` at teardown."""

    def __init__(self) -> None:
        self._writers: set[asyncio.StreamWriter] = set()

    def track(self, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)

    def abort(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
