"""The ``/status`` document: every target's last result, next run and back-off, as JSON.

At 10,000 targets the document is 4 MB and ~140 ms of work: built in one piece on the event
loop for every request, ten clients in a loop stalled the checks and ``/-/healthy``. So the
whole document is built a slice of targets at a time (yielding to the loop between slices),
once for every request that arrives while it is built, and, while requests keep coming, for
those within ``BUILD_REUSE`` times its cost after (``SingleFlight``: ~0.15 s old at most for
1,000 targets, ~1.4 s for 10,000), so clients in a loop keep building to a tenth of the
loop's time. One target's (``?target=NAME``) is built at once, always current. Every
document is written from one ``readmodel.Snapshot``, so it shows the daemon at one instant
however many slices it takes. Nothing secret is in the state it reads.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from pingmon.readmodel import ReadModel, Snapshot, WebhookView
from pingmon.results import OUTCOME_FIELDS, TargetState, result_fields, seconds
from pingmon.singleflight import SingleFlight

BUILD_REUSE = 9.0
TARGETS_PER_SLICE = 500  # ~7 ms of work between two turns of the event loop

Body = tuple[bytes, ...]


class StatusPages:
    """The whole document, from one snapshot, shared by the requests close together."""

    def __init__(self, model: ReadModel) -> None:
        self._model = model
        self.builds: SingleFlight[None, Body] = SingleFlight(self._build, reuse=BUILD_REUSE)

    async def everything(self) -> Body:
        return await self.builds(None)

    async def _build(self, _: None) -> Body:
        return await document_in_slices(self._model.snapshot())


def document(snapshot: Snapshot) -> Body:
    """The document of a snapshot's targets, at once (for a few targets)."""
    parts = [_target_json(snapshot, state) for state in snapshot.targets]
    return (_head(snapshot), ", ".join(parts).encode(), b"]}")


async def document_in_slices(snapshot: Snapshot) -> Body:
    """The document of a snapshot's targets, yielding to the event loop between slices."""
    body = [_head(snapshot)]
    states = snapshot.targets
    for start in range(0, len(states), TARGETS_PER_SLICE):
        part = ", ".join(
            _target_json(snapshot, state) for state in states[start : start + TARGETS_PER_SLICE]
        )
        body.append((", " + part if start else part).encode())
        await asyncio.sleep(0)
    body.append(b"]}")
    return tuple(body)


def envelope(snapshot: Snapshot) -> dict[str, Any]:
    """What the document says besides its targets."""
    return {
        "version": snapshot.version,
        "config": snapshot.config,
        "ready": snapshot.ready,
        # which shard this is, and how many targets every shard holds (placement.Share)
        "sharding": None if snapshot.sharding is None else snapshot.sharding.summary(),
    }


def _head(snapshot: Snapshot) -> bytes:
    """The document up to its list of targets: ``{"version": ..., ..., "targets": [``."""
    return json.dumps(envelope(snapshot))[:-1].encode() + b', "targets": ['


def _target_json(snapshot: Snapshot, state: TargetState) -> str:
    entry = target_status(snapshot, state)
    webhook = snapshot.webhooks.get(state.info.name)
    if webhook is not None:
        entry["webhook"] = webhook_status(webhook)
    return json.dumps(entry)


def target_status(snapshot: Snapshot, state: TargetState) -> dict[str, Any]:
    """A target's entry: its configuration, its last result's outcome (``OUTCOME_FIELDS``,
    nulls before its first check), its next run and its credential's back-off."""
    info, last = state.info, state.last
    fields = {} if last is None else result_fields(last)
    next_run = snapshot.next_runs.get(info.name)
    backoff = snapshot.backoff(info.credential)
    return {
        "target": info.name,
        "provider": info.provider,
        "provider_type": info.provider_type,
        "interval_seconds": info.interval,
        **{name: fields.get(name) for name in OUTCOME_FIELDS},
        "last_run": _iso(None if last is None else last.finished_at),
        "last_success": _iso(state.last_success_at),
        "consecutive_failures": state.consecutive_failures,
        "next_run": None if next_run is None else next_run.isoformat(),
        "backoff_seconds": round(backoff.delay_seconds, 3),
        "backoff_remaining_seconds": round(backoff.remaining_seconds, 3),
    }


def webhook_status(view: WebhookView) -> dict[str, Any]:
    """What became of the target's last pings' webhooks; nothing secret is in the state."""
    return {
        "timeout_seconds": view.timeout_seconds,
        "awaiting": view.awaiting,
        "delivered": view.delivered,
        "roundtrip_seconds": None
        if view.roundtrip_seconds is None
        else seconds(view.roundtrip_seconds),
        "last_received": _iso(view.last_received_at),
        "consecutive_misses": view.consecutive_misses,
        "delivered_total": view.delivered_total,
        "missed_total": view.missed_total,
        "rejected": dict(view.rejected),
    }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
