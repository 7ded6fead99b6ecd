"""The process around the daemon: HTTP site, signals, orderly shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from pingmon.config import Config, split_listen
from pingmon.daemon import Daemon
from pingmon.errors import describe_exception
from pingmon.server import make_app
from pingmon.watch import ConfigWatcher, FileWatch
from pingmon.webauth import protect
from pingmon.webconfig import LiveWebConfig, WebConfig, WebOptions
from pingmon.webhooks.receiver import add_webhook_routes
from pingmon.webtls import RotatingServerContext

log = logging.getLogger("pingmon")

SHUTDOWN_GRACE_SECONDS = 10.0


class ListenError(Exception):
    """The HTTP server could not bind its address."""


async def serve(
    config: Config,
    *,
    on_started: Callable[[Daemon, str], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    first_look: FileWatch | None = None,
    web_options: WebOptions | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``): then stop scheduling, let in-flight checks
    finish within a bound, and return. SIGHUP reloads the configuration. ``first_look``: the
    file as seen before ``config`` was loaded from it (else it is first looked at here).
    ``web_options``: the command line's listen address, web configuration (TLS, basic auth,
    headers on every route of ``listen``) and lifecycle switch."""
    stop = stop or asyncio.Event()
    web_options = web_options or WebOptions()
    daemon = Daemon(config)
    watcher = ConfigWatcher(lambda: daemon.config, daemon.reload, first_look)
    settings = config.settings
    listen = web_options.listen_address or settings.listen
    app = make_app(daemon, lifecycle=web_options.enable_lifecycle)
    ssl_context = _secure(app, web_options.config)
    runners = [web.AppRunner(app, access_log=None, handle_signals=False)]
    webhook_app = app if settings.webhook_listen is None else web.Application()
    add_webhook_routes(webhook_app, daemon.webhooks, settings.webhook_path_prefix)
    if settings.webhook_listen is not None:
        runners.append(web.AppRunner(webhook_app, access_log=None, handle_signals=False))
    watching: asyncio.Task[None] | None = None
    try:
        await _start_site(runners[0], listen, ssl_context)
        if settings.webhook_listen is not None:
            await _start_site(runners[1], settings.webhook_listen)
            log.info(
                "receiving webhooks",
                extra={"address": _bound_address(runners[1], settings.webhook_listen)},
            )
        await daemon.start()
        watching = asyncio.create_task(watcher.run(), name="pingmon-config-watch")
        _install_signals(daemon, stop)
        address = _bound_address(runners[0], listen)
        log.info("listening", extra={"address": address, "tls": ssl_context is not None})
        if on_started is not None:
            await on_started(daemon, address)
        await stop.wait()
        log.info("shutting down: letting in-flight checks finish")
        watching.cancel()
        await daemon.stop(grace=_grace(daemon.config))
    finally:
        if watching is not None:
            watching.cancel()
        _remove_signals()
        for runner in reversed(runners):
            await runner.cleanup()


def _secure(app: web.Application, config: WebConfig | None) -> ssl.SSLContext | None:
    """Basic auth and headers on ``app`` from the web configuration, and the TLS context for
    its site (None: plain HTTP), both following the file and the certificates as they change."""
    if config is None:
        return None
    live = LiveWebConfig(config)
    protect(app, live)
    return None if config.tls is None else RotatingServerContext(live.tls)


async def _start_site(
    runner: web.AppRunner, listen: str, ssl_context: ssl.SSLContext | None = None
) -> None:
    await runner.setup()
    host, port = split_listen(listen)
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as error:
        raise ListenError(f"cannot listen on {listen}: {error.strerror}") from None


def _grace(config: Config) -> float:
    """Long enough for a check that just started, bounded so shutdown never hangs."""
    longest = max((t.timeout * (t.retries + 1) for t in config.targets), default=0.0)
    return min(SHUTDOWN_GRACE_SECONDS, longest + 1.0)


def _bound_address(runner: web.AppRunner, fallback: str) -> str:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return f"{address[0]}:{address[1]}"
    return fallback


def _install_signals(daemon: Daemon, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[object]] = set()

    def reload() -> None:
        task = loop.create_task(daemon.reload(), name="pingmon-sighup-reload")
        reloads.add(task)
        task.add_done_callback(_reloaded)

    def _reloaded(task: asyncio.Task[object]) -> None:
        """A reload reports its own failures; anything else is logged here, so nothing ends
        as "Task exception was never retrieved"."""
        reloads.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("reload on SIGHUP failed", extra={"error": describe_exception(error)})

    loop.add_signal_handler(signal.SIGHUP, reload)


def _remove_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.remove_signal_handler(sig)
