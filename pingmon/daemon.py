"""The running daemon: configuration, scheduler, runner and result store, and their reload.

A configuration is adopted in two steps. ``prepare`` builds everything it needs off to the
side (plans, budgets, result-store entries, webhook targets, the checked schedule) and raises
ConfigError when it cannot be run; ``Daemon._commit`` then adopts the result with assignments
and a timer sync that cannot fail. A reload runs the load and ``prepare`` in a thread with a
deadline; any failure leaves the running configuration exactly as it was.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from pingmon import __version__
from pingmon.backoff import RateLimitGate
from pingmon.config import Config, load_config
from pingmon.deadline import Abandoned, DeadlineWorker
from pingmon.errors import ConfigError, ErrorClass, Problem, ResourceExhausted, describe_exception
from pingmon.heap import collection_paused, pausing_collection, settle
from pingmon.logs import mask_secrets
from pingmon.metrics import Metrics
from pingmon.placement import Share, own_share
from pingmon.readmodel import Snapshot, take_snapshot
from pingmon.redaction import NO_REDACTION, Redactor
from pingmon.results import CheckResult, ResultStore, TargetInfo, TargetState, result_fields
from pingmon.runner import Runner, TargetPlan, build_plans, config_redactor
from pingmon.scheduler import CheckScheduler, ScheduleError, SchedulePlan, plan_schedule
from pingmon.slots import Slots
from pingmon.standby import StandbyConfig
from pingmon.throttle import LogThrottle
from pingmon.webhooks.metrics import WebhookCollector
from pingmon.webhooks.tracker import WebhookTarget, WebhookTracker
from pingmon.wire import Sessions, TracedRequest

log = logging.getLogger("pingmon")

# How long a reload may take to read, validate and prepare a file before it is given up (the
# running configuration stays). A large file takes about a second; only a file that never
# finishes loading (a FIFO, a YAML bomb) comes near this.
RELOAD_DEADLINE_SECONDS = 30.0
# Given-up loads whose thread still runs; past this, reloads are refused until a restart.
MAX_ABANDONED_LOADS = 4


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
    limits above, and requests that fill in ``wire.WireTrace``.

    Proxies come per provider (pingmon.route), not from ``trust_env``: that also reads
    ``~/.netrc`` into an Authorization header nobody asked for (and refuses a request that
    sets its own), skips NO_PROXY's CIDR ranges, and looks the environment up on every request.
    No Content-Type of aiohttp's own: a body is sent with the type its provider or user gave
    it, and a POST without one carries none (a strict API answers 415 to an invented
    application/octet-stream); ``client.send`` asks aiohttp to skip it per request, where
    aiohttp would add one.

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
        trust_env=False,
        auto_decompress=True,
        max_line_size=MAX_RESPONSE_LINE_BYTES,
        max_field_size=MAX_RESPONSE_LINE_BYTES,
        max_headers=MAX_RESPONSE_HEADERS,
        request_class=TracedRequest,
    )


def new_sessions() -> Sessions:
    """The pooled session and its fresh-connection twin for the keep-alive re-send."""
    return Sessions(new_session(), new_session(fresh_connections=True))


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything one configuration needs, built before any of it is adopted."""

    config: Config
    plans: Mapping[str, TargetPlan]
    infos: tuple[TargetInfo, ...]
    webhooks: tuple[WebhookTarget, ...]
    schedule: SchedulePlan
    credentials: frozenset[str]
    # This process's shard and the whole file's assignment; ``config`` holds its targets only.
    share: Share
    # Every secret of the file in every wire form, for the log filter.
    redactor: Redactor = NO_REDACTION


def prepare(config: Config, previous: Mapping[str, TargetPlan] | None = None) -> Runtime:
    """Build what ``config`` needs without touching anything running; token buckets of
    ``previous`` plans are carried over. ConfigError (one line per problem) for anything
    that keeps it from running, expected or not. With ``sharding``, the runtime's
    configuration holds only this shard's targets."""
    try:
        own, share = own_share(config)
        return _prepare(own, share, previous)
    except ConfigError:
        raise
    except ScheduleError as error:
        index = next(i for i, target in enumerate(config.targets) if target.name == error.target)
        problem = Problem(f"targets[{index}].{error.field}", error.reason)
        raise ConfigError(config.source, [problem]) from None
    except Exception as error:  # noqa: BLE001  # whatever it is, the file is refused
        problem = Problem("", f"cannot be applied ({describe_exception(error)})")
        raise ConfigError(config.source, [problem]) from None


def _prepare(config: Config, share: Share, previous: Mapping[str, TargetPlan] | None) -> Runtime:
    schedule = plan_schedule(config.targets)
    plans = build_plans(config, dict(previous or {}), share.assignment.rate_share)
    return Runtime(
        config=config,
        plans=plans,
        infos=tuple(_info(plan) for plan in plans.values()),
        webhooks=tuple(webhook_targets(config)),
        schedule=schedule,
        credentials=frozenset(plan.credential for plan in plans.values()),
        share=share,
        redactor=config_redactor(config),
    )


@pausing_collection
def load_runtime(
    source: str,
    previous: Mapping[str, TargetPlan],
    load: Callable[[str], Config] = load_config,
) -> Runtime:
    """Read, validate and prepare a file (in a worker thread); only ConfigError escapes."""
    try:
        config = load(source)
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001  # whatever it is, the file is refused
        problem = Problem("", f"cannot be loaded ({describe_exception(error)})")
        raise ConfigError(source, [problem]) from None
    return prepare(config, previous)


class Daemon:
    """Owns everything that lives as long as the process, and swaps configurations.

    ``load_deadline``: seconds a reload may take to load and prepare the file; ``load``
    reads a file into a Config (``load_config``; tests put a loader that never returns here).
    """

    def __init__(self, config: Config, load_deadline: float = RELOAD_DEADLINE_SECONDS) -> None:
        self._initial = config
        self.runtime: Runtime | None = None
        self.load_deadline = load_deadline
        self.load: Callable[[str], Config] = load_config
        self.store = ResultStore()
        self.gate = RateLimitGate(config.settings.backoff)
        self.webhooks = WebhookTracker(time.time)
        self.metrics = Metrics(
            self.store,
            self.gate.delays,
            config.settings.latency_histogram,
            collectors=[WebhookCollector(self.webhooks)],
            profile=config.settings.metrics.profile,
        )
        self.scheduler = CheckScheduler(
            self.check, self.metrics.scheduler_lag.observe, config.settings.timer_slack
        )
        self.in_flight: set[asyncio.Task[Any]] = set()
        self._sessions: Sessions | None = None
        self._runner: Runner | None = None
        self._reload_lock = asyncio.Lock()
        self._loader = DeadlineWorker("pingmon-config-load", MAX_ABANDONED_LOADS)
        self._stop_requested = asyncio.Event()
        self._exhaustion_log = LogThrottle()
        self._stopping = False

    @property
    def config(self) -> Config:
        """The configuration running (before ``start``, the one given)."""
        return self._initial if self.runtime is None else self.runtime.config

    @property
    def plans(self) -> Mapping[str, TargetPlan]:
        return {} if self.runtime is None else self.runtime.plans

    @property
    def standby(self) -> bool:
        """Running no targets in place of a refused file (``pingmon.standby``)."""
        return isinstance(self.config, StandbyConfig)

    @property
    def ready(self) -> bool:
        return self._runner is not None and self.scheduler.running and not self.standby

    def snapshot(self, names: Sequence[str] | None = None) -> Snapshot:
        """What the HTTP layer reads (``readmodel.ReadModel``): every target, or the named."""
        return take_snapshot(
            store=self.store,
            scheduler=self.scheduler,
            gate=self.gate,
            webhooks=self.webhooks,
            config=self.config.source,
            ready=self.ready,
            names=names,
            sharding=None if self.runtime is None else self.runtime.share,
        )

    async def exposition(self, openmetrics: bool, gzip: bool = False) -> tuple[bytes, ...]:
        """The /metrics body (``readmodel.ReadModel``)."""
        return await self.metrics.exposition(openmetrics, gzip)

    async def start(self) -> None:
        """Adopt the configuration and start the timers; ConfigError if it cannot run."""
        with collection_paused():
            runtime = prepare(self._initial)
            self._sessions = new_sessions()
            self._runner = Runner(
                self._sessions,
                self.gate,
                runtime.config.settings.concurrency,
                on_internal_error=self.metrics.internal_errors.inc,
                on_exhausted=self._exhausted,
            )
            self._commit(runtime)
            self.metrics.config_loaded(not self.standby)
            self.scheduler.start()
        settle()
        log.info(
            "pingmon started",
            extra={"targets": len(self.config.targets), "config": self.config.source},
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop scheduling, let in-flight checks finish within ``grace``, then close.

        A reload still loading is given up at once: shutdown never waits for a loader.
        """
        # APScheduler may already have submitted a run that starts after this point; the
        # flag turns it away before it can reach a closed session.
        self._stopping = True
        self._stop_requested.set()
        self.scheduler.pause()
        if self.in_flight:
            _, pending = await asyncio.wait(set(self.in_flight), timeout=grace)
            if pending:
                self.scheduler.cancel_runs()  # its runs: a stop, not a failure each
                for task in pending:
                    if not task.cancelling():  # a check not started by the scheduler
                        task.cancel()
                log.warning("checks cancelled at shutdown", extra={"count": len(pending)})
                await asyncio.wait(pending)
        self.scheduler.shutdown()
        self.webhooks.close()
        if self._sessions is not None:
            await self._sessions.close()

    async def reload(self) -> tuple[bool, list[str]]:
        """Load the file again and adopt it whole, or refuse it whole.

        Every failure (a bad file, an exception nobody planned for, a load past its deadline)
        keeps the running configuration untouched, sets
        ``pingmon_config_last_reload_successful 0``, logs each problem and returns them.
        """
        async with self._reload_lock:
            source = self.config.source
            if self._stopping:
                return self._refuse([f"{source}: pingmon is stopping; nothing was reloaded"])
            load = functools.partial(load_runtime, source, self.plans, self.load)
            try:
                # In a thread: a large file takes a second to validate, and the checks go
                # on meanwhile; one that never finishes is given up at the deadline.
                runtime = await self._loader.run(load, self.load_deadline, self._stop_requested)
            except ConfigError as error:
                return self._refuse(error.lines())
            except Abandoned as error:
                return self._refuse([f"{source}: loading was given up: {error}"])
            if self._stopping:
                return self._refuse([f"{source}: pingmon is stopping; nothing was reloaded"])
            return self._adopt(runtime)

    def _adopt(self, runtime: Runtime) -> tuple[bool, list[str]]:
        previous = self.runtime
        for warning in runtime.config.warnings:
            log.warning(warning)
        _warn_restart_only(self.config, runtime.config)
        try:
            with collection_paused():
                self._commit(runtime)
        except Exception as error:  # a bug: put the previous configuration back whole
            log.exception("adopting the configuration failed; going back to the running one")
            self._roll_back(previous)
            return self._refuse(
                [f"{runtime.config.source}: cannot be applied ({describe_exception(error)})"]
            )
        self.metrics.config_loaded(True)
        settle()
        log.info("configuration reloaded", extra={"targets": len(runtime.config.targets)})
        return True, []

    def _roll_back(self, previous: Runtime | None) -> None:
        if previous is None:
            return
        try:
            self._commit(previous)
        except Exception:
            log.exception("going back to the running configuration failed")

    def _refuse(self, lines: list[str]) -> tuple[bool, list[str]]:
        self.metrics.config_loaded(False)
        for line in lines:
            log.error("reload refused; the running configuration stays", extra={"problem": line})
        return False, lines

    def _commit(self, runtime: Runtime) -> None:
        """Adopt a prepared configuration: assignments and a timer sync, nothing that can
        refuse it (``prepare`` already checked everything that could)."""
        settings = runtime.config.settings
        resized = settings.concurrency != self.config.settings.concurrency
        mask_secrets(runtime.redactor)
        self.runtime = runtime
        self.store.configure(list(runtime.infos))
        self.webhooks.configure(runtime.webhooks)
        self.gate.policy = settings.backoff
        self.gate.retain(set(runtime.credentials))
        self.metrics.sharded(runtime.share.shard, runtime.share.shards)
        self.metrics.configure(settings.metrics.profile, settings.latency_histogram)
        if self._runner is not None and resized:
            self._runner.slots = Slots(settings.concurrency)
        self.scheduler.apply(runtime.schedule, settings.timer_slack)

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

    def _exhausted(self, error: ResourceExhausted) -> None:
        """A check pingmon had no file descriptor (or buffer) for: its own fault, not the
        target's, so nothing is recorded (as during a back-off); counted, and said once in a
        while rather than as a failure of every target."""
        self.metrics.resource_exhaustion.labels(errno=error.errno_name).inc()
        suppressed = self._exhaustion_log.admit(error.errno_name)
        if suppressed is None:
            return
        fields: dict[str, Any] = {"errno": error.errno_name, "detail": error.detail}
        if suppressed:
            fields["suppressed"] = suppressed
        log.error("pingmon ran out of resources: checks are skipped, not failed", extra=fields)

    def _record(self, result: CheckResult) -> None:
        change = self.store.record(result)
        if change is None:
            return
        old, new = change
        success = result.success
        failed = not success and not _rate_limited(result)  # a 429 is neither
        if success:
            self.webhooks.ping_succeeded(result.target, result.sent_at, result.event_id)
        elif failed:
            self.webhooks.ping_failed(result.target)
        self.scheduler.set_failing(result.target, failed)
        if old.last is None or old.last.error_class is not result.error_class:
            log_transition(old, new)


def _warn_restart_only(running: Config, new: Config) -> None:
    for key in ("listen", "webhook_listen", "webhook_path_prefix", "server"):
        if getattr(new.settings, key) != getattr(running.settings, key):
            log.warning(
                f"{key} changed; it takes effect at the next restart",
                extra={key: getattr(running.settings, key)},
            )


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
    interval = target.schedule.interval
    return TargetInfo(
        target.name, target.provider_name, target.provider_type, interval, plan.credential
    )


def log_transition(old: TargetState, new: TargetState) -> None:
    """One line when a target's state changes, never on every tick."""
    result = new.last
    assert result is not None
    fields: dict[str, Any] = result_fields(result)
    del fields["success"]  # the message says it
    if old.last is not None:
        fields["previous_error_class"] = old.last.error_class.value
    if result.success:
        log.info("target is up", extra=fields)
    else:
        log.warning("target is failing", extra=fields)
