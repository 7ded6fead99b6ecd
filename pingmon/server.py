"""The HTTP server: /metrics, /status, health, readiness and reload (when enabled)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from pingmon import __version__
from pingmon.readmodel import ReadModel
from pingmon.status import StatusPages, document
from pingmon.webauth import cross_site

# Load the file again and adopt it, or refuse it: (adopted, the problems).
Reload = Callable[[], Awaitable[tuple[bool, list[str]]]]

READ_MODEL = web.AppKey("read_model", ReadModel)
RELOAD = web.AppKey[Reload]("reload")
STATUS = web.AppKey("status", StatusPages)
LIFECYCLE = web.AppKey("lifecycle", bool)

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# What one write hands the transport; with the server's bounded buffers (connections.py) a
# client that stops reading holds at most about two of these in pingmon.
WRITE_PIECE_BYTES = 32768

LANDING_PAGE = f"""<!doctype html>
<html><head><title>pingmon</title></head><body>
<h1>pingmon {__version__}</h1>
<ul>
<li><a href="metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="status">/status</a>: every target's last result (JSON)</li>
<li><a href="-/healthy">/-/healthy</a>, <a href="-/ready">/-/ready</a></li>
</ul></body></html>
"""


def make_app(
    model: ReadModel, reload_config: Reload, *, lifecycle: bool = False
) -> web.Application:
    """The routes on ``listen``, reading ``model`` only; ``lifecycle``
    (--web.enable-lifecycle) lets POST /-/reload call ``reload_config``."""
    app = web.Application()
    app[READ_MODEL] = model
    app[RELOAD] = reload_config
    app[STATUS] = StatusPages(model)
    app[LIFECYCLE] = lifecycle
    app.router.add_get("/", landing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    return app


async def landing(request: web.Request) -> web.Response:
    return web.Response(text=LANDING_PAGE, content_type="text/html")


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


async def metrics(request: web.Request) -> web.StreamResponse:
    """The exposition, rendered once for every scrape that arrives while it is rendered
    (``Metrics.exposition``), so that extra scrapers cost bandwidth, not event-loop time."""
    openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
    body = await request.app[READ_MODEL].exposition(openmetrics)
    content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
    return await send_chunks(request, body, content_type)


async def send_chunks(
    request: web.Request, chunks: Sequence[bytes], content_type: str, status: int = 200
) -> web.StreamResponse:
    """Write a body made of ``chunks`` a piece at a time: each write waits for the client
    to take the previous pieces (the server's write timeout bounds that wait), so a client
    that reads slowly holds a bounded buffer, not its own copy of the body."""
    response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
    response.content_length = sum(len(chunk) for chunk in chunks)
    await response.prepare(request)
    if request.method == "HEAD":  # the headers only (RFC 9110 §9.3.2): aiohttp would send it
        chunks = ()
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), WRITE_PIECE_BYTES):
            await response.write(view[start : start + WRITE_PIECE_BYTES])
            await request.writer.drain()  # waits while the transport is above its high mark
            # A fast reader's writes never wait, and many answers sent at once (a burst of
            # scrapes sharing a render) would hold the loop: one piece each, in turn.
            await asyncio.sleep(0)
    await response.write_eof()
    return response


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="pingmon is healthy.\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[READ_MODEL].snapshot(()).ready:
        return web.Response(text="pingmon is ready.\n")
    return web.Response(status=503, text="pingmon is not ready.\n")


async def reload(request: web.Request) -> web.Response:
    """Prometheus' convention: 403 unless --web.enable-lifecycle; SIGHUP and the file watcher
    always reload. A browser's cross-site request (an HTML form posting here) is refused even
    when enabled."""
    if not request.app[LIFECYCLE]:
        return web.Response(status=403, text="Lifecycle API is not enabled.\n")
    if cross_site(request):
        return web.Response(status=403, text="Cross-site requests are refused.\n")
    ok, problems = await request.app[RELOAD]()
    if ok:
        return web.json_response({"status": "success"})
    return web.json_response({"status": "error", "problems": problems}, status=500)


async def status(request: web.Request) -> web.StreamResponse:
    """Every target's last result, next run and back-off (a snapshot shared by requests
    close together, ``pingmon.status``), or only those named by ``?target=NAME``
    (repeatable; current); 404 for a name not configured. Nothing secret is in the state."""
    names = request.query.getall("target", [])
    if not names:
        whole = await request.app[STATUS].everything()
        return await send_chunks(request, whole, JSON_CONTENT_TYPE)
    snapshot = request.app[READ_MODEL].snapshot(names)
    if snapshot.unknown:
        unknown = snapshot.unknown[0]
        return web.json_response({"error": f"no target named {unknown[:100]!r}"}, status=404)
    return await send_chunks(request, document(snapshot), JSON_CONTENT_TYPE)
