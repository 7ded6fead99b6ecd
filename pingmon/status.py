"""The ``/status`` document: every target's last result, next run and back-off, as JSON.

At 10,000 targets the document is 4 MB and ~140 ms of work: built in one piece on the event
loop for every request, ten clients in a loop stalled the checks and ``/-/healthy``. So the
whole document is built a slice of targets at a time (yielding to the loop between slices),
once for every request that arrives while it is built, and, while requests keep coming, for
those within ``BUILD_REUSE`` times its cost after (``SingleFlight``: ~0.15 s old at most for
1,000 targets, ~1.4 s for 10,000), so clients in a loop keep building to a tenth of the
loop's time. One target's (``?target=NAME``) is built at once, always current. Nothing
secret is in the state it reads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pingmon import __version__
from pingmon.daemon import Daemon
from pingmon.results import TargetState
from pingmon.singleflight import SingleFlight
from pingmon.webhooks.tracker import WebhookState

BUILD_REUSE = 9.0
TARGETS_PER_SLICE = 500  # ~7 ms of work between two turns of the event loop

Body = tuple[bytes, ...]


class StatusPages:
    """The whole document from a shared snapshot, or named targets now."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self.builds: SingleFlight[None, Body] = SingleFlight(self._build, reuse=BUILD_REUSE)

    async def everything(self) -> Body:
        return await self.builds(None)

    def named(self, names: Sequence[str]) -> Body | None:
        """The document for these targets only; None if one of them is not configured."""
        states = []
        for name in names:
            state = self._daemon.store.get(name)
            if state is None:
                return None
            states.append(state)
        webhooks = _webhooks(self._daemon)
        parts = [_target_json(self._daemon, state, webhooks) for state in states]
        return (_head(self._daemon), ", ".join(parts).encode(), b"]}")

    async def _build(self, _: None) -> Body:
        daemon = self._daemon
        webhooks = _webhooks(daemon)
        body = [_head(daemon)]
        states = daemon.store.snapshot()
        for start in range(0, len(states), TARGETS_PER_SLICE):
            part = ", ".join(
                _target_json(daemon, state, webhooks)
                for state in states[start : start + TARGETS_PER_SLICE]
            )
            body.append((", " + part if start else part).encode())
            await asyncio.sleep(0)
        body.append(b"]}")
        return tuple(body)


def _head(daemon: Daemon) -> bytes:
    """The document up to its list of targets: ``{"version": ..., ..., "targets": [``."""
    envelope: dict[str, Any] = {
        "version": __version__,
        "config": daemon.config.source,
        "ready": daemon.ready,
        # which shard this is, and how many targets every shard holds (placement.Share)
        "sharding": None if daemon.runtime is None else daemon.runtime.share.summary(),
    }
    return json.dumps(envelope)[:-1].encode() + b', "targets": ['


def _webhooks(daemon: Daemon) -> dict[str, dict[str, Any]]:
    return {state.target.name: webhook_status(state) for state in daemon.webhooks.states()}


def _target_json(daemon: Daemon, state: TargetState, webhooks: dict[str, dict[str, Any]]) -> str:
    entry = target_status(daemon, state)
    webhook = webhooks.get(state.info.name)
    if webhook is not None:
        entry["webhook"] = webhook
    return json.dumps(entry)


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
