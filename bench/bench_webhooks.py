"""Benchmark of the webhook round trip and of the receiver under a forged flood; run by hand.

    python bench/bench_webhooks.py --duration 10

Three processes, all on 127.0.0.1:

- this one runs the daemon through ``serve()`` (HTTP server and webhook receiver included) and
  measures it;
- the sandbox (``python -m pingmon.sandbox``): one Stripe event destination per target
  (``ed_test_bench_<i>``, ``--stripe-webhook``) and Simotel's Ping event (``--simotel-webhook``),
  each delivering its signed webhook back to the daemon after every successful ping;
- a flooder (this script with ``--flooder``): forged POSTs to the receiver at a fixed rate, open
  loop (bad Stripe signatures, wrong Simotel Basic credentials, unknown targets).

After the warm-up, two windows of ``--duration`` seconds: quiet (round trips only), then the
flood while the round trips go on. In each: counted deliveries and their round trips (raw values
from the tracker, see ``RoundTripRecorder``), misses and refusals (tracker state), scheduler lag
(``LagRecorder``), CPU of this process (``getrusage``), and the warnings the refusals logged.
Once the daemon has stopped: what the sandbox's receivers answered (every legitimate delivery
should have had 200) and ``verify_stripe()`` per call (``timeit``). SIGINT/SIGTERM end the run
early.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import logging
import os
import resource
import secrets
import socket
import sys
import tempfile
import time
import timeit
from collections import Counter
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from inprocess import (
    Child,
    GcRecorder,
    Interrupted,
    LagRecorder,
    LogCounter,
    cpu_seconds,
    ms,
    print_table,
    quantile,
    sleep_until,
    versions,
    wait_started,
)

from pingmon.config import load_config
from pingmon.daemon import Daemon
from pingmon.fields import parse_duration
from pingmon.sandbox import SANDBOX_CREDENTIALS
from pingmon.sandbox.stripe_webhooks import stripe_signature
from pingmon.service import serve
from pingmon.webhooks.stripe import verify_stripe
from pingmon.webhooks.tracker import Delivered, WebhookTracker
from pingmon.webhooks.verify import Authentic, Refused

CREDS = SANDBOX_CREDENTIALS
CHILD_START_TIMEOUT = 20.0
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
FLOOD_DRAIN_SECONDS = 5.0  # the flooder's wait for its last answers
FLOOD_REQUEST_TIMEOUT = 5.0
FLOOD_REPORT_TIMEOUT = FLOOD_DRAIN_SECONDS + 10.0
SIMOTEL_TARGET = "pbx-bench"
UNKNOWN_TARGET_SHARE = 4  # every 4th forged request names no target; the others a real one
# All that forged requests can be refused as: any other reason is a legitimate one uncounted.
FORGED_REASONS = frozenset({"bad_signature", "unknown_target"})
# The daemon reads its secrets from the environment, as in production; these are the
# sandbox's own (public, loopback-only) credentials.
ENV = {
    "PINGMON_BENCH_STRIPE_KEY": CREDS.stripe.test_key,
    "PINGMON_BENCH_STRIPE_WEBHOOK_SECRET": CREDS.stripe.webhook_secret,
    "PINGMON_BENCH_SIMOTEL_USER": CREDS.simotel.both.username,
    "PINGMON_BENCH_SIMOTEL_PASSWORD": CREDS.simotel.both.password,
    "PINGMON_BENCH_SIMOTEL_TOKEN": CREDS.simotel.both.api_key,
    "PINGMON_BENCH_SIMOTEL_HOOK_USER": CREDS.simotel.webhook_username,
    "PINGMON_BENCH_SIMOTEL_HOOK_PASSWORD": CREDS.simotel.webhook_password,
}


def stripe_target_name(i: int) -> str:
    return f"stripe-{i}"


def destination(i: int) -> str:
    return f"ed_test_bench_{i}"


def free_port() -> int:
    """A port free now on 127.0.0.1: the sandbox must know the receiver's URL before it runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- child process: the flooder --------------------------------------------------------


@dataclass
class FloodPlan:
    """What the flooder is told on its stdin when the flood window starts."""

    base: str  # the receiver, http://127.0.0.1:PORT/webhooks
    rate: float
    seconds: float
    connections: int
    stripe_targets: list[str]
    simotel_targets: list[str]


@dataclass
class FloodReport:
    """What the flooder saw: answers by status ("error:<class>" when none came)."""

    sent: int
    seconds: float
    statuses: dict[str, int]
    by_kind: dict[str, dict[str, int]]
    answer_p50: float | None = None  # seconds, request sent -> answer read
    answer_p99: float | None = None
    cpu: float = 0.0  # the flooder's own CPU seconds meanwhile, which the host also had to give


Forged = tuple[str, str, bytes, dict[str, str]]  # kind, url, body, headers


class Forger:
    """Builds forged requests in a fixed rotation: per ``UNKNOWN_TARGET_SHARE``, one to a
    target that does not exist, the others to the real targets in turn, badly signed."""

    def __init__(self, plan: FloodPlan) -> None:
        self.base = plan.base
        self.known = [("stripe", t) for t in plan.stripe_targets]
        self.known += [("simotel", t) for t in plan.simotel_targets]
        self._forged = 0
        self._unknown = 0
        # Built once, as a capture of a real thin event would be; only signatures vary.
        self.stripe_body = json.dumps(
            {
                "id": "evt_test_" + secrets.token_hex(23),
                "object": "v2.core.event",
                "type": "v2.core.event_destination.ping",
                "livemode": False,
                "created": "2025-01-01T00:00:00.000Z",
                "related_object": {"id": "ed_test_forged", "type": "event_destination"},
            }
        ).encode()
        wrong = base64.b64encode(b"pingmon_webhook:not-the-password").decode()
        self.simotel_headers = {
            "Content-Type": "application/json",
            "Authorization": f"Basic {wrong}",
        }

    def stripe_headers(self) -> dict[str, str]:
        signature = f"t={int(time.time())},v1={secrets.token_hex(32)}"
        return {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature}

    def next(self, i: int) -> Forged:
        if not self.known or i % UNKNOWN_TARGET_SHARE == UNKNOWN_TARGET_SHARE - 1:
            self._unknown += 1
            url = f"{self.base}/no-such-target-{self._unknown % 1000}"
            return "unknown_target", url, self.stripe_body, self.stripe_headers()
        provider, name = self.known[self._forged % len(self.known)]
        self._forged += 1
        url = f"{self.base}/{name}"
        if provider == "stripe":
            return "stripe_bad_signature", url, self.stripe_body, self.stripe_headers()
        return "simotel_bad_credentials", url, b'{"event_name": "Ping"}', self.simotel_headers


async def flood(plan: FloodPlan) -> FloodReport:
    """Send ``rate`` requests a second for ``seconds``, open loop: each leaves at its due time
    (or at once when behind), at most ``connections`` in flight."""
    forger = Forger(plan)
    report = FloodReport(0, 0.0, {}, {})
    latencies: list[float] = []
    slots = asyncio.Semaphore(plan.connections)
    tasks: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=FLOOD_REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=plan.connections)

    async def send(session: aiohttp.ClientSession, forged: Forged) -> None:
        kind, url, body, headers = forged
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = str(response.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            status = f"error:{type(error).__name__}"
        finally:
            slots.release()
        latencies.append(time.perf_counter() - started)
        report.statuses[status] = report.statuses.get(status, 0) + 1
        kinds = report.by_kind.setdefault(kind, {})
        kinds[status] = kinds.get(status, 0) + 1

    loop = asyncio.get_running_loop()
    cpu = cpu_seconds()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = loop.time()
        end = started + plan.seconds
        for i in range(int(plan.rate * plan.seconds)):
            delay = started + i / plan.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            if loop.time() >= end:
                slots.release()
                break
            task = asyncio.create_task(send(session, forger.next(i)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            report.sent += 1
        report.seconds = loop.time() - started
        if tasks:
            await asyncio.wait(set(tasks), timeout=FLOOD_DRAIN_SECONDS)
    report.answer_p50, report.answer_p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
    report.cpu = cpu_seconds() - cpu
    return report


async def run_flooder() -> None:
    """Child: print "ready", read one FloodPlan line, flood, print the report, then wait to be
    terminated (so that the parent's stop never races the exit)."""
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if not line.strip():
        return
    report = await flood(FloodPlan(**json.loads(line)))
    print(json.dumps(asdict(report)), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)


async def start_child(*command: str) -> tuple[Child, str]:
    """A child process, and its first line (the sandbox's URLs, or "ready")."""
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(*command, stdin=pipe, stdout=pipe)
    child = Child(proc)
    try:
        return child, await child.read_line(CHILD_START_TIMEOUT)
    except BaseException:
        await child.stop()
        raise


async def send_plan(flooder: Child, plan: FloodPlan) -> None:
    assert flooder.proc.stdin is not None
    flooder.proc.stdin.write(json.dumps(asdict(plan)).encode() + b"\n")
    await flooder.proc.stdin.drain()


# --- configuration ---------------------------------------------------------------------


def sandbox_command(args: argparse.Namespace, receiver: str) -> list[str]:
    command = [sys.executable, "-m", "pingmon.sandbox"]
    for i in range(args.stripe_targets):
        command += ["--stripe-webhook", f"{destination(i)}={receiver}/{stripe_target_name(i)}"]
    if args.simotel:
        command += ["--simotel-webhook", f"{receiver}/{SIMOTEL_TARGET}"]
    return command


def write_config(
    args: argparse.Namespace, urls: dict[str, str], listen: str, directory: str
) -> Path:
    """Stripe targets (and one Simotel target) whose pings come back as webhooks; the webhook
    timeout is the interval, the most the configuration allows."""
    interval = parse_duration(args.interval)
    stripe_hook = {
        "timeout": interval,
        "signing_secret": {"env": "PINGMON_BENCH_STRIPE_WEBHOOK_SECRET"},
    }
    targets: list[dict[str, Any]] = [
        {"name": stripe_target_name(i), "provider": "stripe", "destination_id": destination(i),
         "webhook": stripe_hook}
        for i in range(args.stripe_targets)
    ]  # fmt: skip
    if args.simotel:
        simotel_hook = {
            "timeout": interval,
            "username": {"env": "PINGMON_BENCH_SIMOTEL_HOOK_USER"},
            "password": {"env": "PINGMON_BENCH_SIMOTEL_HOOK_PASSWORD"},
        }
        targets.append({"name": SIMOTEL_TARGET, "provider": "pbx", "webhook": simotel_hook})
    config = {
        "listen": listen,
        "defaults": {"interval": interval, "timeout": min(5.0, interval / 2), "jitter": 0.1},
        "providers": {
            "stripe": {"type": "stripe", "base_url": urls["stripe"],
                       "api_key": {"env": "PINGMON_BENCH_STRIPE_KEY"}},
            "pbx": {"type": "simotel", "base_url": urls["simotel"],
                    "username": {"env": "PINGMON_BENCH_SIMOTEL_USER"},
                    "password": {"env": "PINGMON_BENCH_SIMOTEL_PASSWORD"},
                    "api_key": {"env": "PINGMON_BENCH_SIMOTEL_TOKEN"}},
        },
        "targets": targets,
    }  # fmt: skip
    path = Path(directory) / "pingmon-bench-webhooks.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


# --- measurement -----------------------------------------------------------------------


class RoundTripRecorder:
    """Wraps the tracker's ``_deliver`` (a private method, like ``LagRecorder``'s observer: the
    bench's intrusion, kept out of pingmon) and keeps every counted delivery's round trip, as
    the histogram sees it, while recording."""

    def __init__(self, tracker: WebhookTracker) -> None:
        self._original = tracker._deliver
        self.values: list[float] = []
        self.recording = False
        tracker._deliver = self  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Delivered:
        # Passed through as they come: the private signature is not the bench's to pin.
        delivered = self._original(*args, **kwargs)
        if self.recording:
            self.values.append(delivered.roundtrip_seconds)
        return delivered


class RefusalLogCounter(logging.Handler):
    """Records at WARNING and above from ``pingmon.webhooks`` while recording: what the
    refusals cost the log (``RefusalLog`` writes one per target and reason every 10 s)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines = 0
        self.recording = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.recording:
            self.lines += 1


@dataclass
class HookCounts:
    """The tracker's totals over every target: the pingmon_webhook_* series' source."""

    delivered: int
    missed: int
    rejected: Counter[str]  # by reason; unknown_target included

    def minus(self, before: HookCounts) -> HookCounts:
        rejected = Counter(self.rejected)
        rejected.subtract(before.rejected)
        return HookCounts(
            self.delivered - before.delivered, self.missed - before.missed, +rejected
        )


def hook_counts(tracker: WebhookTracker) -> HookCounts:
    rejected: Counter[str] = Counter()
    delivered = missed = 0
    for state in tracker.states():
        delivered += state.delivered_total
        missed += state.missed_total
        for reason, n in state.rejected.items():
            rejected[reason.value] += n
    rejected["unknown_target"] += tracker.unknown_target_total
    return HookCounts(delivered, missed, rejected)


@dataclass
class Window:
    started: float  # time.monotonic(): the sandbox's Delivery.sent_at is on the same clock
    seconds: float
    cpu: float
    counts: HookCounts
    roundtrips: list[float]
    lags: list[float]
    gc_pauses: list[tuple[int, float]]
    log_lines: int
    preempted: int  # involuntary context switches of this process: the host's share in a stall
    flood: FloodReport | None = None


@dataclass
class Probes:
    daemon: Daemon
    lag: LagRecorder
    roundtrips: RoundTripRecorder
    logs: RefusalLogCounter

    def recording(self, on: bool) -> None:
        self.lag.recording = self.roundtrips.recording = self.logs.recording = on


async def measure(
    probes: Probes, args: argparse.Namespace, stop: asyncio.Event,
    flooder: Child | None = None, plan: FloodPlan | None = None,
) -> Window:  # fmt: skip
    """One window; the flood (if any) starts with it and is told to last as long. The flood
    window ends when the flooder reports, a few ms after ``--duration``: its last requests,
    sent after the start's delay, are then counted by the receiver too."""
    probes.lag.values, probes.roundtrips.values = [], []
    probes.logs.lines = 0
    tracker = probes.daemon.webhooks
    gc_pauses = GcRecorder()
    gc.callbacks.append(gc_pauses)
    before, cpu0, t0 = hook_counts(tracker), cpu_seconds(), time.monotonic()
    switches0 = involuntary_switches()
    probes.recording(True)
    gc_pauses.recording = True
    if flooder is not None and plan is not None:
        await send_plan(flooder, plan)
    await sleep_until(t0 + args.duration, stop)
    report = None
    if flooder is not None:
        report = FloodReport(**json.loads(await flooder.read_line(FLOOD_REPORT_TIMEOUT)))
    probes.recording(False)
    gc_pauses.recording = False
    after, cpu1, t1 = hook_counts(tracker), cpu_seconds(), time.monotonic()
    gc.callbacks.remove(gc_pauses)
    preempted = involuntary_switches() - switches0
    return Window(
        t0, t1 - t0, cpu1 - cpu0, after.minus(before), probes.roundtrips.values,
        probes.lag.values, gc_pauses.pauses, probes.logs.lines, preempted, report,
    )  # fmt: skip


def involuntary_switches() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw


async def sandbox_deliveries(urls: dict[str, str]) -> list[dict[str, Any]]:
    """Every webhook the sandbox sent, with the status the receiver answered (None: no answer)."""
    deliveries: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for kind in ("stripe", "simotel"):
            async with session.get(urls[kind] + "/_sandbox/webhook-deliveries") as response:
                response.raise_for_status()
                deliveries += (await response.json())["deliveries"]
    return deliveries


def time_verify_stripe(calls: int) -> dict[str, Any]:
    """``verify_stripe()`` per call on a thin ping event: signed (the whole path, JSON read
    included) and forged (the HMAC, then refused)."""
    secret = CREDS.stripe.webhook_secret
    body = json.dumps(
        {
            "id": "evt_test_" + "a" * 46,
            "object": "v2.core.event",
            "type": "v2.core.event_destination.ping",
            "livemode": False,
            "created": "2025-01-01T00:00:00.000Z",
            "related_object": {
                "id": destination(0),
                "type": "event_destination",
                "url": f"/v2/core/event_destinations/{destination(0)}",
            },
        }
    ).encode()
    now = time.time()
    signed = stripe_signature(body, secret, int(now))
    forged = f"t={int(now)},v1={'0' * 64}"
    # Not timings: only that each variant takes the path it is named after.
    if not isinstance(verify_stripe(body, signed, secret, 300.0, now), Authentic):
        raise RuntimeError("the signed thin event did not verify")
    if not isinstance(verify_stripe(body, forged, secret, 300.0, now), Refused):
        raise RuntimeError("the forged thin event verified")
    results = {}
    for label, header in (("signed", signed), ("bad_signature", forged)):
        seconds = min(
            timeit.repeat(
                partial(verify_stripe, body, header, secret, 300.0, now),
                number=calls,
                repeat=3,
            )
        )
        results[f"verify_stripe_{label}_us"] = round(seconds / calls * 1e6, 2)
    return {"verify_stripe_calls": calls, "thin_event_bytes": len(body), **results}


# --- the run ---------------------------------------------------------------------------


async def run_daemon(
    args: argparse.Namespace, config_path: Path, flooder: Child, plan: FloodPlan
) -> tuple[Window, Window]:
    config = load_config(config_path)
    stop = asyncio.Event()  # serve() sets it on SIGINT/SIGTERM, and so do we
    started: asyncio.Future[tuple[Daemon, str]] = asyncio.get_running_loop().create_future()

    async def on_started(daemon: Daemon, address: str) -> None:
        started.set_result((daemon, address))

    logs = RefusalLogCounter()
    logging.getLogger("pingmon.webhooks").addHandler(logs)
    service = asyncio.create_task(serve(config, on_started=on_started, stop=stop))
    try:
        daemon, _ = await wait_started(started, service)
        lag = LagRecorder(daemon.scheduler._observe_lag)
        daemon.scheduler._observe_lag = lag
        probes = Probes(daemon, lag, RoundTripRecorder(daemon.webhooks), logs)
        await sleep_until(time.monotonic() + args.warmup, stop)
        quiet = await measure(probes, args, stop)
        flooded = await measure(probes, args, stop, flooder, plan)
    finally:
        stop.set()  # what SIGTERM does
        await asyncio.wait_for(service, timeout=STOP_TIMEOUT)
        logging.getLogger("pingmon.webhooks").removeHandler(logs)
    return quiet, flooded


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Everything, bounded in time; the children are stopped whatever happens."""
    os.environ.update(ENV)
    logs = LogCounter()
    logging.getLogger("pingmon").addHandler(logs)
    bound = 2 * CHILD_START_TIMEOUT + STARTUP_TIMEOUT + args.warmup + 2 * args.duration + 45
    children: list[Child] = []
    try:
        async with asyncio.timeout(bound):
            listen = f"127.0.0.1:{free_port()}"
            receiver = f"http://{listen}/webhooks"
            sandbox, line = await start_child(*sandbox_command(args, receiver))
            children.append(sandbox)
            urls: dict[str, str] = json.loads(line)
            flooder, _ = await start_child(sys.executable, __file__, "--flooder")
            children.append(flooder)
            plan = FloodPlan(
                receiver, args.flood_rate, args.duration, args.flood_connections,
                [stripe_target_name(i) for i in range(args.stripe_targets)],
                [SIMOTEL_TARGET] if args.simotel else [],
            )  # fmt: skip
            with tempfile.TemporaryDirectory(prefix="pingmon-bench-") as directory:
                path = write_config(args, urls, listen, directory)
                quiet, flooded = await run_daemon(args, path, flooder, plan)
            deliveries = await sandbox_deliveries(urls)
    finally:
        for child in children:
            await child.stop()
    micro = time_verify_stripe(args.verify_calls)
    result = figures(args, quiet, flooded, deliveries)
    return {**result, **micro, "pingmon_warnings_and_errors": logs.counts, "versions": versions()}


# --- figures ---------------------------------------------------------------------------


def sent_in(deliveries: list[dict[str, Any]], w: Window) -> list[dict[str, Any]]:
    """The sandbox's deliveries sent in the window (``sent_at`` is ``time.monotonic()``,
    one clock for every process of the host)."""
    end = w.started + w.seconds
    return [d for d in deliveries if w.started <= d["sent_at"] < end]


def legitimate_not_200(deliveries: list[dict[str, Any]], w: Window) -> int:
    """Deliveries the sandbox sent in the window that the receiver did not answer 200."""
    return sum(1 for d in sent_in(deliveries, w) if d["status"] != 200)


def uncounted_legitimate(w: Window) -> int:
    """Refusals that no forged request causes (duplicate, late, unmatched, ...): legitimate
    deliveries the receiver did not count, some of them answered 200."""
    forged = FORGED_REASONS if w.flood is not None else frozenset()
    return sum(n for reason, n in w.counts.rejected.items() if reason not in forged)


def answers(deliveries: list[dict[str, Any]], w: Window) -> dict[str, int]:
    """What the receiver answered the sandbox, by status ("none": no answer, then the error)."""
    counts = Counter(str(d["status"] or f"none:{d['error']}") for d in sent_in(deliveries, w))
    return dict(sorted(counts.items()))


def window_figures(w: Window, deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    delivered = w.counts.delivered
    return {
        "window_seconds": round(w.seconds, 2),
        "deliveries_per_second": round(delivered / w.seconds, 1),
        "deliveries": delivered,
        "missed": w.counts.missed,
        "roundtrip_samples": len(w.roundtrips),
        "roundtrip_p50_ms": ms(quantile(w.roundtrips, 0.5)),
        "roundtrip_p90_ms": ms(quantile(w.roundtrips, 0.9)),
        "roundtrip_p99_ms": ms(quantile(w.roundtrips, 0.99)),
        "roundtrip_max_ms": ms(max(w.roundtrips, default=None)),
        "lag_p50_ms": ms(quantile(w.lags, 0.5)),
        "lag_p99_ms": ms(quantile(w.lags, 0.99)),
        "lag_max_ms": ms(max(w.lags, default=None)),
        "gc_collections_gen2": sum(1 for generation, _ in w.gc_pauses if generation == 2),
        "gc_max_pause_ms": ms(max((pause for _, pause in w.gc_pauses), default=None)),
        "cpu_percent": round(w.cpu / w.seconds * 100, 1),
        "involuntary_context_switches": w.preempted,
        "rejected_by_reason": dict(sorted(w.counts.rejected.items())),
        "sandbox_deliveries_sent": len(sent_in(deliveries, w)),
        "sandbox_deliveries_answered": answers(deliveries, w),
        "webhook_warning_log_lines": w.log_lines,
    }


def flood_figures(rate: float, quiet: Window, flooded: Window) -> dict[str, Any]:
    report = flooded.flood
    assert report is not None
    refused = sum(flooded.counts.rejected.values())
    answered_refused = sum(
        n for status, n in report.statuses.items() if status.isdigit() and int(status) >= 400
    )
    # The flood's CPU: the flood window's, less what the quiet window spent in as long a time.
    extra_cpu = flooded.cpu - quiet.cpu * flooded.seconds / quiet.seconds
    return {
        "flood_target_rate": rate,
        "flood_achieved_rate": round(report.sent / report.seconds, 1) if report.seconds else None,
        "flood_sent": report.sent,
        "flood_answers": dict(sorted(report.statuses.items())),
        "flood_answers_by_kind": report.by_kind,
        "flood_answer_p50_ms": ms(report.answer_p50),
        "flood_answer_p99_ms": ms(report.answer_p99),
        "flooder_cpu_percent": round(report.cpu / report.seconds * 100, 1)
        if report.seconds
        else None,
        "receiver_refused": refused,
        "receiver_refused_minus_flood_refusals": refused - answered_refused,
        "cpu_us_per_refused_request": round(extra_cpu / refused * 1e6, 1) if refused else None,
        "refusal_log_lines_per_1000_refused": round(flooded.log_lines / refused * 1000, 2)
        if refused
        else None,
    }


def figures(
    args: argparse.Namespace, quiet: Window, flooded: Window, deliveries: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every figure, in README order; None where there was nothing to measure."""
    interval = parse_duration(args.interval)
    targets = args.stripe_targets + (1 if args.simotel else 0)
    legit_lost = sum(
        w.counts.missed + legitimate_not_200(deliveries, w) + uncounted_legitimate(w)
        for w in (quiet, flooded)
    )
    return {
        "stripe_targets": args.stripe_targets,
        "simotel_targets": 1 if args.simotel else 0,
        "interval_seconds": interval,
        "webhook_timeout_seconds": interval,
        "expected_deliveries_per_second": round(targets / interval, 1),
        "cpu_us_per_ping_and_delivery": round(quiet.cpu / quiet.counts.delivered * 1e6, 1)
        if quiet.counts.delivered
        else None,
        **{f"quiet_{k}": v for k, v in window_figures(quiet, deliveries).items()},
        **{f"flood_{k}": v for k, v in window_figures(flooded, deliveries).items()},
        **flood_figures(args.flood_rate, quiet, flooded),
        "legitimate_refused_or_missed": legit_lost,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stripe-targets", type=int, default=50)
    parser.add_argument(
        "--simotel",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one Simotel target too (the sandbox has one Ping event webhook)",
    )
    parser.add_argument("--interval", default="1s", help="a duration: 500ms, 1s, 10s")
    parser.add_argument("--duration", type=float, default=10.0, help="each window, seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the windows")
    parser.add_argument("--flood-rate", type=float, default=500.0, help="forged requests/s")
    parser.add_argument("--flood-connections", type=int, default=32, help="flood in flight")
    parser.add_argument("--verify-calls", type=int, default=10_000, help="timeit number")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--flooder", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.flooder:
        asyncio.run(run_flooder())
        return
    try:
        result = asyncio.run(main_async(args))
    except Interrupted as error:
        sys.exit(f"bench_webhooks: {error}")
    if not args.json:
        print_table(result)
    print(json.dumps(result))
    sys.exit(0 if result["quiet_deliveries"] else 1)


if __name__ == "__main__":
    main()
