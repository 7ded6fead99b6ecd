"""The running daemon: configuration, scheduler, runner and result store, and their reload."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp

from pingmon import __version__
from pingmon.backoff import RateLimitGate
from pingmon.config import Config, load_config
from pingmon.errors import ConfigError, ErrorClass
from pingmon.logs import mask_secrets
from pingmon.metrics import Metrics
from pingmon.results import CheckResult, ResultStore, TargetInfo, TargetState
from pingmon.runner import Runner, TargetPlan, build_plans, config_redactor
from pingmon.scheduler import CheckScheduler
from pingmon.webhooks.metrics import WebhookCollector
from pingmon.webhooks.tracker import WebhookTarget, WebhookTracker
from pingmon.wire import Sessions, trace_config

log = logging.getLogger("pingmon")


# Response header limits. aiohttp's defaults (8190 bytes a line, 128 headers) refuse healthy
# answers real APIs send: a 10 kB Content-Security-Policy, a 9 kB cookie, 150 headers.
# 64 KiB a line is Python's http.client limit (_MAXLINE), between nginx's 8 kB buffers and
# curl's 100 kB a header; 2000 headers is Node's client default (maxHeadersCount). aiohttp has
# no bound on the header section as a whole, so these two also bound it: a hostile server can
# make one check hold at most 2000 x 64 KiB while its headers are read (curl stops at 300 kB
# in all, browsers at ~256 kB, counting no headers). Beyond them: bad_response (client.py).
MAX_RESPONSE_LINE_BYTES = 65_536  # the status line and each header line (name: value)
MAX_RESPONSE_HEADERS = 2_000


def new_session(*, fresh_connections: bool = False) -> aiohttp.ClientSession:
    """A ClientSession for checks: pooled keep-alive connections (or, with
    ``fresh_connections``, a new connection for every request), no aiohttp default timeout
    (each attempt is bounded by its target's timeout), no cookies, the response header
    limits above, and the trace that ``wire.WireTrace`` reads.

    Proxies come per provider (pingmon.route), not from ``trust_env``: that also reads
    ``~/.netrc`` into an Authorization header nobody asked for (and refuses a request that
    sets its own), skips NO_PROXY's CIDR ranges, and looks the environment up on every request.
    No Content-Type of aiohttp's own: a body is sent with the type its provider or user gave
    it, and a POST without one carries none (a strict API answers 415 to an invented
    application/octet-stream).

    No connection limit here: the runner's semaphores bound checks in flight, and can
    change on reload, which a connector's limit cannot.
    """
    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=0, ttl_dns_cache=60, force_close=fresh_connections
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": f"pingmon/{__version__}"},
        skip_auto_headers=("Content-Type",),
        trust_env=False,
        auto_decompress=True,
        max_line_size=MAX_RESPONSE_LINE_BYTES,
        max_field_size=MAX_RESPONSE_LINE_BYTES,
        max_headers=MAX_RESPONSE_HEADERS,
        trace_configs=[trace_config()],
    )


def new_sessions() -> Sessions:
    """The pooled session and its fresh-connection twin for the keep-alive re-send."""
    return Sessions(new_session(), new_session(fresh_connections=True))


def settle_heap() -> None:
    """Collect what loading left behind, then exempt the long-lived objects (configuration,
    plans, jobs) from future collections: a full collection over 10,000 targets' objects
    otherwise pauses the event loop for ~100 ms. Unfreezing first lets an old
    configuration be freed after a reload."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class Daemon:
    """Owns everything that lives as long as the process, and swaps configurations."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = ResultStore()
        self.gate = RateLimitGate(config.settings.backoff)
        self.webhooks = WebhookTracker(time.time)
        self.metrics = Metrics(
            self.store,
            self.gate.delays,
            config.settings.latency_histogram,
            collectors=[WebhookCollector(self.webhooks)],
        )
        self.scheduler = CheckScheduler(self.check, self.metrics.scheduler_lag.observe)
        self.plans: dict[str, TargetPlan] = {}
        self.in_flight: set[asyncio.Task[Any]] = set()
        self._sessions: Sessions | None = None
        self._runner: Runner | None = None
        self._reload_lock = asyncio.Lock()
        self._stopping = False

    @property
    def ready(self) -> bool:
        return self._runner is not None and self.scheduler.running

    async def start(self) -> None:
        self._sessions = new_sessions()
        self._runner = Runner(
            self._sessions,
            self.gate,
            self.config.settings.concurrency,
            on_internal_error=self.metrics.internal_errors.inc,
        )
        self._apply(self.config)
        self.metrics.config_loaded(True)
        self.scheduler.start()
        settle_heap()
        log.info(
            "pingmon started",
            extra={"targets": len(self.config.targets), "config": self.config.source},
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop scheduling, let in-flight checks finish within ``grace``, then close."""
        # APScheduler may already have submitted a run that starts after this point; the
        # flag turns it away before it can reach a closed session.
        self._stopping = True
        self.scheduler.pause()
        if self.in_flight:
            _, pending = await asyncio.wait(set(self.in_flight), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("checks cancelled at shutdown", extra={"count": len(pending)})
                await asyncio.wait(pending)
        self.scheduler.shutdown()
        self.webhooks.close()
        if self._sessions is not None:
            await self._sessions.close()

    async def reload(self) -> tuple[bool, list[str]]:
        """Load the file again; a bad file keeps the running configuration."""
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            try:
                # In a worker thread: a large file takes a second to validate, and the
                # checks go on meanwhile.
                config = await loop.run_in_executor(None, load_config, Path(self.config.source))
            except ConfigError as error:
                self.metrics.config_loaded(False)
                for line in error.lines():
                    log.error(
                        "reload refused; the running configuration stays", extra={"problem": line}
                    )
                return False, error.lines()
            for warning in config.warnings:
                log.warning(warning)
            for key in ("listen", "webhook_listen", "webhook_path_prefix"):
                if getattr(config.settings, key) != getattr(self.config.settings, key):
                    log.warning(
                        f"{key} changed; it takes effect at the next restart",
                        extra={key: getattr(self.config.settings, key)},
                    )
            self._apply(config)
            self.config = config
            self.metrics.config_loaded(True)
            settle_heap()
            log.info("configuration reloaded", extra={"targets": len(config.targets)})
            return True, []

    def _apply(self, config: Config) -> None:
        mask_secrets(config_redactor(config))
        settings = config.settings
        self.plans = build_plans(config, self.plans)
        self.store.configure([_info(plan) for plan in self.plans.values()])
        self.webhooks.configure(webhook_targets(config))
        self.gate.policy = settings.backoff
        self.gate.retain({plan.credential for plan in self.plans.values()})
        self.metrics.latency_histogram = settings.latency_histogram
        if self._runner is not None and settings.concurrency != self.config.settings.concurrency:
            self._runner.slots = asyncio.Semaphore(settings.concurrency)
        self.scheduler.sync(config.targets)

    async def check(self, name: str) -> None:
        """One scheduled check of a target; every expected failure ends as a result."""
        plan = self.plans.get(name)
        if plan is None or self._runner is None or self._stopping:
            return
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
        try:
            result = await self._runner.run(plan)  # total: a bug ends as the target's result
        finally:
            if task is not None:
                self.in_flight.discard(task)
        if result is not None:
            self._record(result)

    def _record(self, result: CheckResult) -> None:
        change = self.store.record(result)
        if change is None:
            return
        old, new = change
        if result.success:
            self.webhooks.ping_succeeded(result.target, result.sent_at, result.event_id)
        elif not _rate_limited(result):
            self.webhooks.ping_failed(result.target)
        self.scheduler.set_failing(result.target, not result.success and not _rate_limited(result))
        if old.last is None or old.last.error_class is not result.error_class:
            log_transition(old, new)


def webhook_targets(config: Config) -> list[WebhookTarget]:
    """The targets whose ping must come back as a webhook."""
    targets = []
    for target in config.targets:
        settings = target.params.webhook_settings
        if settings is not None:
            targets.append(
                WebhookTarget(
                    target.name,
                    target.provider_name,
                    target.provider_type,
                    settings,
                    settings.networks(),
                )
            )
    return targets


def _rate_limited(result: CheckResult) -> bool:
    return result.error_class is ErrorClass.RATE_LIMITED


def _info(plan: TargetPlan) -> TargetInfo:
    target = plan.target
    return TargetInfo(
        target.name, target.provider_name, target.provider_type, target.interval, plan.credential
    )


def log_transition(old: TargetState, new: TargetState) -> None:
    """One line when a target's state changes, never on every tick."""
    result = new.last
    assert result is not None
    fields = result_fields(result)
    if old.last is not None:
        fields["previous_error_class"] = old.last.error_class.value
    if result.success:
        log.info("target is up", extra=fields)
    else:
        log.warning("target is failing", extra=fields)


def result_fields(result: CheckResult) -> dict[str, Any]:
    return {
        "target": result.target,
        "provider": result.provider,
        "error_class": result.error_class.value,
        "http_status": result.http_status,
        "duration_seconds": round(result.duration_seconds, 4),
        "attempts": result.attempts,
        "detail": result.detail,
    }
