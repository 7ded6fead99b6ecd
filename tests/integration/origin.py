"""A provider stand-in on loopback that records exactly what reached it: each request's method,
path, header lines and body, and over TLS the server name (SNI) each handshake asked for."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trustme
from aiohttp import web

from tests.integration.closing import cleanup_aborting

SIMOTEL_PONG = {"success": 1, "message": "pong", "data": None}


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    server_name: str | None = None  # the SNI of the connection it came on

    def header_names(self) -> set[str]:
        return {name.lower() for name, _ in self.headers}

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Origin:
    url: str
    requests: list[Seen] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


@asynccontextmanager
async def serve_origin(
    certificate: trustme.LeafCert | None = None,
) -> AsyncIterator[Origin]:
    """An origin on 127.0.0.1: http, or https with ``certificate``. Any method and path gets
    200: Simotel's ping path its documented pong, every other path ``{"status": "ok"}``."""
    origin = Origin("")
    context = None
    by_connection: dict[int, str | None] = {}  # id(SSLObject) -> the SNI it was opened with
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)

        def remember_server_name(tls: object, name: str | None, _: ssl.SSLContext) -> None:
            origin.server_names.append(name)
            by_connection[id(tls)] = name

        context.sni_callback = remember_server_name

    async def answer(request: web.Request) -> web.Response:
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers)
        body = await request.read()
        tls = request.transport.get_extra_info("ssl_object") if request.transport else None
        server_name = by_connection.get(id(tls)) if tls is not None else None
        seen = Seen(request.method, request.path_qs, headers, body, server_name)
        origin.requests.append(seen)
        if request.path == "/api/v4/setting/ping/act":
            return web.json_response(SIMOTEL_PONG)
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    origin.url = f"{'https' if context else 'http'}://127.0.0.1:{port}"
    try:
        yield origin
    finally:
        await cleanup_aborting(runner)
