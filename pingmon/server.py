"""The HTTP server: /metrics, /status, health, readiness and reload (when enabled)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from pingmon import __version__
from pingmon.daemon import Daemon
from pingmon.results import TargetState
from pingmon.webauth import cross_site
from pingmon.webhooks.tracker import WebhookState

DAEMON = web.AppKey("daemon", Daemon)
LIFECYCLE = web.AppKey("lifecycle", bool)

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

LANDING_PAGE = f"""<!doctype html>
<html><head><title>pingmon</title></head><body>
<h1>pingmon {__version__}</h1>
<ul>
<li><a href="metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="status">/status</a>: every target's last result (JSON)</li>
<li><a href="-/healthy">/-/healthy</a>, <a href="-/ready">/-/ready</a></li>
</ul></body></html>
"""


def make_app(daemon: Daemon, *, lifecycle: bool = False) -> web.Application:
    """The routes on ``listen``; ``lifecycle`` (--web.enable-lifecycle) lets POST /-/reload act."""
    app = web.Application()
    app[DAEMON] = daemon
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
    """Rendered from a snapshot in chunks, yielding to the event loop between them, so a
    scrape of many targets never stalls the checks (a worker thread would not help: the
    rendering holds the GIL)."""
    daemon = request.app[DAEMON]
    openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
    response = web.StreamResponse(
        headers={"Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE}
    )
    await response.prepare(request)
    for chunk in daemon.metrics.render_chunks(daemon.metrics.snapshot(), openmetrics):
        await response.write(chunk)
        await asyncio.sleep(0)
    await response.write_eof()
    return response


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="pingmon is healthy.\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[DAEMON].ready:
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
    ok, problems = await request.app[DAEMON].reload()
    if ok:
        return web.json_response({"status": "success"})
    return web.json_response({"status": "error", "problems": problems}, status=500)


async def status(request: web.Request) -> web.Response:
    """Every target's last result, next run and back-off; nothing secret is in the state."""
    daemon = request.app[DAEMON]
    webhooks = {state.target.name: webhook_status(state) for state in daemon.webhooks.states()}
    targets = [target_status(daemon, state) for state in daemon.store.snapshot()]
    for target in targets:
        if target["target"] in webhooks:
            target["webhook"] = webhooks[target["target"]]
    return web.json_response(
        {
            "version": __version__,
            "config": daemon.config.source,
            "ready": daemon.ready,
            "targets": targets,
        }
    )


def target_status(daemon: Daemon, state: TargetState) -> dict[str, Any]:
    info, last = state.info, state.last
    next_run = daemon.scheduler.next_run(info.name)
    return {
        "target": info.name,
        "provider": info.provider,
        "provider_type": info.provider_type,
        "interval_seconds": info.interval,
        "success": None if last is None else last.success,
        "error_class": None if last is None else last.error_class.value,
        "http_status": None if last is None else last.http_status,
        "duration_seconds": None if last is None else round(last.duration_seconds, 6),
        "attempts": None if last is None else last.attempts,
        "detail": None if last is None else last.detail,
        "last_run": _iso(None if last is None else last.finished_at),
        "last_success": _iso(state.last_success_at),
        "consecutive_failures": state.consecutive_failures,
        "next_run": None if next_run is None else next_run.isoformat(),
        "backoff_seconds": round(daemon.gate.delay_in_force(info.credential), 3),
        "backoff_remaining_seconds": round(daemon.gate.remaining(info.credential), 3),
    }


def webhook_status(state: WebhookState) -> dict[str, Any]:
    """What became of the target's last pings' webhooks; nothing secret is in the state."""
    return {
        "timeout_seconds": state.target.settings.timeout,
        "awaiting": len(state.pending),
        "delivered": state.last_delivered,
        "roundtrip_seconds": None
        if state.last_roundtrip is None
        else round(state.last_roundtrip, 6),
        "last_received": _iso(state.last_received_at),
        "consecutive_misses": state.consecutive_misses,
        "delivered_total": state.delivered_total,
        "missed_total": state.missed_total,
        "rejected": {reason.value: count for reason, count in state.rejected.items() if count},
    }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
