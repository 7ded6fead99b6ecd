"""The process around the daemon: HTTP site, signals, orderly shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from pingmon.config import Config, split_listen
from pingmon.connections import ConnectionCollector, ConnectionLimits, GuardedRunner
from pingmon.daemon import Daemon
from pingmon.errors import describe_exception
from pingmon.heap import collect_old_cycles
from pingmon.server import make_app
from pingmon.throttle import throttled
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
    headers on every route of ``listen``) and lifecycle switch.

    Every start is paired with its stop on every way out: a start-up that fails half-way
    (a port taken, ``on_started`` raising), or this task being cancelled, stops what had
    started, in reverse order. Only a requested stop waits for in-flight checks."""
    stop = stop or asyncio.Event()
    web_options = web_options or WebOptions()
    daemon = Daemon(config)
    watcher = ConfigWatcher(lambda: daemon.config, daemon.reload, first_look)
    settings = config.settings
    listen = web_options.listen_address or settings.listen
    limits = ConnectionLimits(settings.server)
    app = make_app(daemon, daemon.reload, lifecycle=web_options.enable_lifecycle)
    ssl_context = _secure(app, web_options.config)
    webhook_app = app if settings.webhook_listen is None else web.Application()
    add_webhook_routes(
        webhook_app, daemon.webhooks, settings.webhook_path_prefix, settings.server.header_timeout
    )
    async with AsyncExitStack() as stack:
        stack.callback(_remove_signals)  # last: a second SIGTERM while stopping stays harmless
        stack.enter_context(throttled())
        stack.enter_context(_registered(daemon.metrics.own, ConnectionCollector(limits)))
        address = await stack.enter_async_context(_site(app, listen, limits, ssl_context))
        if settings.webhook_listen is not None:
            hooks = await stack.enter_async_context(
                _site(webhook_app, settings.webhook_listen, limits)
            )
            log.info("receiving webhooks", extra={"address": hooks})

        async def stop_daemon() -> None:
            await daemon.stop(grace=_grace(daemon.config) if stop.is_set() else 0.0)

        stack.push_async_callback(stop_daemon)  # also undoes a start that failed half-way
        await daemon.start()
        watching = asyncio.create_task(watcher.run(), name="pingmon-config-watch")
        stack.push_async_callback(_cancel, watching)
        collecting = asyncio.create_task(collect_old_cycles(), name="pingmon-old-cycles")
        stack.push_async_callback(_cancel, collecting)
        _install_signals(daemon, stop)
        log.info("listening", extra={"address": address, "tls": ssl_context is not None})
        if on_started is not None:
            await on_started(daemon, address)
        await stop.wait()
        log.info("shutting down: letting in-flight checks finish")


@asynccontextmanager
async def _site(
    app: web.Application,
    listen: str,
    limits: ConnectionLimits,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[str]:
    """Serve ``app`` on ``listen`` within ``limits``; the address it is bound to."""
    runner = GuardedRunner(
        app, limits, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_SECONDS
    )
    await runner.setup()
    try:
        await _start_site(runner, listen, ssl_context)
        yield _bound_address(runner, listen)
    finally:
        await runner.cleanup()


@contextmanager
def _registered(registry: CollectorRegistry, collector: Collector) -> Iterator[None]:
    registry.register(collector)
    try:
        yield
    finally:
        registry.unregister(collector)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


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
    host, port = split_listen(listen)
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as error:
        raise ListenError(f"cannot listen on {listen}: {error.strerror}") from None


def _grace(config: Config) -> float:
    """Long enough for a check that just started, bounded so shutdown never hangs."""
    tries = (t.schedule.timeout * (t.schedule.retries + 1) for t in config.targets)
    longest = max(tries, default=0.0)
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
