"""What the HTTP layer reads of the running daemon: one frozen snapshot, taken at one instant.

The server and the /status document read a ``Snapshot`` and nothing else of the daemon, so a
document is consistent (a check that ends while it is written shows in the next one, not in
half of this one) and the HTTP layer knows no collaborator of the daemon. ``take_snapshot``
reads the collaborators between two turns of the event loop, where nothing else runs.

Extending it (say, which shard this process is): a field with a default here, filled in
``take_snapshot`` from an argument the daemon passes, shown by ``status.envelope``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from pingmon import __version__
from pingmon.backoff import BackoffInForce, RateLimitGate
from pingmon.placement import Share
from pingmon.results import ResultStore, TargetState
from pingmon.scheduler import CheckScheduler
from pingmon.webhooks.tracker import WebhookState, WebhookTracker

NO_BACKOFF = BackoffInForce(0.0, 0.0)


@dataclass(frozen=True, slots=True)
class WebhookView:
    """What became of a target's last pings' webhooks (seconds, wall-clock timestamps)."""

    timeout_seconds: float
    awaiting: int
    delivered: bool | None
    roundtrip_seconds: float | None
    last_received_at: float | None
    consecutive_misses: int
    delivered_total: int
    missed_total: int
    rejected: tuple[tuple[str, int], ...]  # (reason, count) for reasons that occurred


def webhook_view(state: WebhookState) -> WebhookView:
    return WebhookView(
        timeout_seconds=state.target.settings.timeout,
        awaiting=len(state.pending),
        delivered=state.last_delivered,
        roundtrip_seconds=state.last_roundtrip,
        last_received_at=state.last_received_at,
        consecutive_misses=state.consecutive_misses,
        delivered_total=state.delivered_total,
        missed_total=state.missed_total,
        rejected=tuple((reason.value, count) for reason, count in state.rejected.items() if count),
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The daemon as the HTTP layer sees it at one instant; never changes once taken.

    ``targets``: every configured target in configuration order, or the ones asked for, in
    the order asked; ``unknown``: names asked for that are not configured. ``next_runs`` by
    target name (a target without a timer is absent), ``backoffs`` by credential (only those
    in force), ``webhooks`` by target name (only targets with a webhook).
    """

    config: str  # where the configuration running was read from
    ready: bool
    targets: tuple[TargetState, ...] = ()
    unknown: tuple[str, ...] = ()
    next_runs: Mapping[str, datetime] = field(default_factory=lambda: MappingProxyType({}))
    backoffs: Mapping[str, BackoffInForce] = field(default_factory=lambda: MappingProxyType({}))
    webhooks: Mapping[str, WebhookView] = field(default_factory=lambda: MappingProxyType({}))
    version: str = __version__
    sharding: Share | None = None  # which shard this process is; None before the first start

    def backoff(self, credential: str) -> BackoffInForce:
        """The credential's back-off; zeros when its gate is open."""
        return self.backoffs.get(credential, NO_BACKOFF)


class ReadModel(Protocol):
    """What the HTTP layer may ask of a running daemon."""

    def snapshot(self, names: Sequence[str] | None = None) -> Snapshot:
        """Every target (``names`` None), or the named ones (``()``: none, for readiness)."""
        ...

    async def exposition(self, openmetrics: bool) -> tuple[bytes, ...]:
        """The /metrics body, in chunks, in the text format or OpenMetrics."""
        ...


def take_snapshot(
    *,
    store: ResultStore,
    scheduler: CheckScheduler,
    gate: RateLimitGate,
    webhooks: WebhookTracker,
    config: str,
    ready: bool,
    names: Sequence[str] | None = None,
    sharding: Share | None = None,
) -> Snapshot:
    """Read every collaborator at once (no await in here) into a Snapshot; ``names`` as in
    ``ReadModel.snapshot``. About as much work as one slice of the document (~10 ms at
    10,000 targets), most of it their next run times."""
    if names is None:
        targets = store.snapshot()
        unknown: tuple[str, ...] = ()
        next_runs = scheduler.next_runs()
        hooks = webhooks.states()
    else:
        found = {name: store.get(name) for name in names}
        targets = tuple(state for name in names if (state := found[name]) is not None)
        unknown = tuple(name for name in names if found[name] is None)
        next_runs = {name: run for name in found if (run := scheduler.next_run(name)) is not None}
        hooks = tuple(state for state in webhooks.states() if state.target.name in found)
    return Snapshot(
        config=config,
        ready=ready,
        targets=targets,
        unknown=unknown,
        next_runs=MappingProxyType(next_runs),
        backoffs=MappingProxyType(gate.in_force()),
        webhooks=MappingProxyType({state.target.name: webhook_view(state) for state in hooks}),
        sharding=sharding,
    )
