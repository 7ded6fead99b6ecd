"""A loopback HTTP/1.1 server that answers with exact bytes, for answers no framework sends
(broken framing, huge headers, idle keep-alive closes, closes without a byte of answer), and
the ways to check an http target against it."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pingmon.backoff import RateLimitGate
from pingmon.config import Config, load_config
from pingmon.daemon import new_sessions
from pingmon.oneshot import check_once
from pingmon.results import CheckResult
from pingmon.runner import Runner, TargetPlan, build_plans

PIECE_PAUSE_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server read it: its connection (0-based), method, path, headers."""

    connection: int
    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server does with one request.

    ``pieces`` are written in order with a short pause between them, so a test can send the
    status line and headers in one read and the body in another; no pieces means no answer
    at all. Then the connection stays open for the next request unless ``close`` says so;
    ``reset`` closes with a TCP RST instead of a FIN.
    """

    pieces: tuple[bytes, ...] = ()
    close: bool = False
    reset: bool = False


Handler = Callable[[Received, int], Reply]  # the request, and its index on its connection


def answer(
    status: int = 200,
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
    *,
    content_length: int | None = None,
) -> bytes:
    """A complete HTTP/1.1 answer; Content-Length is the body's unless given."""
    length = len(body) if content_length is None else content_length
    head = [f"HTTP/1.1 {status} Whatever", *(f"{k}: {v}" for k, v in headers)]
    head.append(f"Content-Length: {length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class RawServer:
    """The server's address and everything it read, in order."""

    url: str
    received: list[Received] = field(default_factory=list)

    def count(self, path: str | None = None) -> int:
        return sum(1 for r in self.received if path is None or r.path == path)


@asynccontextmanager
async def raw_server(
    handler: Handler, *, idle_close: float | None = None, linger: float = 0.3
) -> AsyncIterator[RawServer]:
    """Serve ``handler`` on a free loopback port.

    With ``idle_close``, a connection without a new request for that long is closed as
    Node's keepAliveTimeout or gunicorn's --keep-alive do, but politely: the server
    half-closes (FIN), then goes on reading for ``linger`` seconds and records a request
    that was already on its way, before it closes. So ``received`` is exactly what reached
    the server, even the request a client sent into the closing connection.
    """
    connections = 0
    state = RawServer("")
    open_connections: set[asyncio.StreamWriter] = set()
    handlers: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        number, connections = connections, connections + 1
        open_connections.add(writer)
        if (task := asyncio.current_task()) is not None:
            handlers.add(task)
        try:
            await _serve(reader, writer, number)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            open_connections.discard(writer)
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()

    async def _serve(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int
    ) -> None:
        index = 0
        while True:
            try:
                received = await asyncio.wait_for(_read_request(reader, number), idle_close)
            except TimeoutError:
                writer.write_eof()
                late = await asyncio.wait_for(_read_request(reader, number), linger)
                if late is not None:
                    state.received.append(late)  # it arrived as the server was closing
                return
            if received is None:
                return
            state.received.append(received)
            reply = handler(received, index)
            index += 1
            for i, piece in enumerate(reply.pieces):
                if i:
                    await asyncio.sleep(PIECE_PAUSE_SECONDS)
                writer.write(piece)
                await writer.drain()
            if reply.reset:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if reply.close or not reply.pieces:
                return

    server = await asyncio.start_server(serve, "127.0.0.1", 0, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.close()
        for writer in list(open_connections):
            writer.transport.abort()  # its handler sees the connection end and returns
        if handlers:
            await asyncio.wait(handlers, timeout=1)
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Received | None:
    """The next request on a connection, its body read and dropped; None at a clean EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if length := int(headers.get("content-length", "0")):
        await reader.readexactly(length)
    return Received(connection, method, path, headers)


def site_config(path: Path, base_url: str, targets: list[dict[str, Any]], **top: Any) -> Config:
    """A configuration whose targets (``provider: site`` by default) check ``base_url``."""
    document: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "defaults": {"interval": "5s", "timeout": "2s", "jitter": 0},
        "providers": {"site": {"type": "http", "base_url": base_url}},
        "targets": [{"provider": "site", **target} for target in targets],
        **top,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return load_config(path)


async def check_one(path: Path, base_url: str, **target: Any) -> CheckResult:
    """One check of one http target named ``t`` against ``base_url``, as `pingmon check`."""
    (result,) = await check_once(site_config(path, base_url, [{"name": "t", **target}]), [])
    return result


@asynccontextmanager
async def checking(config: Config) -> AsyncIterator[tuple[Runner, dict[str, TargetPlan]]]:
    """A runner on the daemon's sessions and the configuration's plans, to check a target
    again and again on the same keep-alive pool without a scheduler."""
    async with new_sessions() as sessions:
        gate = RateLimitGate(config.settings.backoff)
        yield Runner(sessions, gate, config.settings.concurrency), build_plans(config)
