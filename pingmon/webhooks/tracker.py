"""Which pings await their webhook, and what became of each: the round trip's bookkeeping.

A successful ping opens an expectation with a deadline (the target's webhook timeout). A
delivery that matches it closes it: delivered, with a round trip. The deadline passing closes
it as missed. The provider type's webhook kind says how a delivery finds its ping: by event
id (the ping's response names the event), or, carrying nothing to match, it closes the
latest ping still waiting.

A webhook can overtake its ping's answer: the provider sends it while pingmon still reads the
response (some providers fire it from inside the ping call). An authentic delivery nothing awaits
yet is therefore held for the timeout: the ping it belongs to claims it when its answer is
recorded; if none does, it is counted as not a delivery when the hold ends.
Everything runs on the event loop; the metrics read this state between two turns of it.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pingmon.providers import webhook_kind
from pingmon.webhooks.kind import AnyWebhookKind, Match
from pingmon.webhooks.reasons import Reason
from pingmon.webhooks.settings import Network, WebhookSettings
from pingmon.webhooks.verify import Authentic, Refused

log = logging.getLogger("pingmon.webhooks")

ROUNDTRIP_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# What a target remembers of closed pings and accepted signatures, to tell a provider's
# retry (duplicate) and a late delivery from a stranger's event, and to refuse replays.
MEMORY = 1024
# Authentic deliveries held for a ping still being answered; more are not held.
HELD_LIMIT = 64


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A target whose ping sends a webhook, as the receiver and the tracker need it."""

    name: str
    provider: str
    provider_type: str  # a provider type with a webhook kind
    settings: WebhookSettings
    networks: tuple[Network, ...] = ()

    @property
    def identity(self) -> tuple[str, str]:
        return (self.provider, self.provider_type)

    @property
    def kind(self) -> AnyWebhookKind:
        """The provider type's webhook kind (KeyError: the type sends no webhook)."""
        return webhook_kind(self.provider_type)


@dataclass(frozen=True, slots=True)
class Delivered:
    """A delivery counted for its ping."""

    roundtrip_seconds: float


@dataclass(frozen=True, slots=True)
class Held:
    """An authentic delivery no ping awaits yet: its ping may still be being answered."""

    detail: str


@dataclass(slots=True)
class _Pending:
    sequence: int
    sent_at: float
    deadline: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class _Closed:
    delivered: bool
    sent_at: float


@dataclass(slots=True, eq=False)  # found by identity: its timer refers back to it
class _Early:
    received_at: float
    event_id: str | None
    expiry: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class WebhookState:
    """One target's expectations and what the metrics show of it."""

    target: WebhookTarget
    pending: dict[str, _Pending] = field(default_factory=dict)
    closed: OrderedDict[str, _Closed] = field(default_factory=OrderedDict)
    held: list[_Early] = field(default_factory=list)
    signatures: OrderedDict[tuple[str, int], None] = field(default_factory=OrderedDict)
    sequence: int = 0
    decided_sequence: int = 0
    last_delivered: bool | None = None
    last_roundtrip: float | None = None
    last_received_at: float | None = None
    consecutive_misses: int = 0
    delivered_total: int = 0
    missed_total: int = 0
    roundtrip_counts: list[int] = field(default_factory=lambda: [0] * (len(ROUNDTRIP_BUCKETS) + 1))
    roundtrip_sum: float = 0.0
    rejected: Counter[Reason] = field(default_factory=Counter)

    def cancel(self) -> None:
        for timer in [p.deadline for p in self.pending.values()] + [h.expiry for h in self.held]:
            if timer is not None:
                timer.cancel()
        self.pending.clear()
        self.held.clear()


class WebhookTracker:
    """Every webhook target's state; ``clock`` is the wall clock round trips are read from."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._states: dict[str, WebhookState] = {}
        self.unknown_target_total = 0

    def configure(self, targets: Iterable[WebhookTarget]) -> None:
        """Adopt a configuration: a target that stays (same provider) keeps its history and
        its pings in flight; a removed one is forgotten, and its series leave /metrics."""
        states: dict[str, WebhookState] = {}
        for target in targets:
            old = self._states.pop(target.name, None)
            if old is not None and old.target.identity == target.identity:
                old.target = target
                states[target.name] = old
            else:
                if old is not None:
                    old.cancel()
                states[target.name] = WebhookState(target)
        for removed in self._states.values():
            removed.cancel()
        self._states = states

    def close(self) -> None:
        for state in self._states.values():
            state.cancel()

    def target(self, name: str) -> WebhookTarget | None:
        state = self._states.get(name)
        return None if state is None else state.target

    def states(self) -> tuple[WebhookState, ...]:
        return tuple(self._states.values())

    def ping_succeeded(self, name: str, sent_at: float, event_id: str | None) -> None:
        """A ping was answered: its webhook is due within the target's timeout."""
        state = self._states.get(name)
        if state is None:
            return
        state.sequence += 1
        by_event_id = state.target.kind.match is Match.BY_EVENT_ID
        key = event_id if by_event_id and event_id else str(state.sequence)
        pending = _Pending(state.sequence, sent_at)
        delay = max(0.0, sent_at + state.target.settings.timeout - self._clock())
        pending.deadline = asyncio.get_running_loop().call_later(delay, self._expire, state, key)
        state.pending[key] = pending
        early = self._claim(state, key if event_id else None, sent_at)
        if early is not None:
            self._deliver(state, key, early.received_at)

    def ping_failed(self, name: str) -> None:
        """A ping failed (not a 429): the run of answered pings without a webhook is broken,
        so ``consecutive_misses`` counts only misses of pings that answered in a row."""
        state = self._states.get(name)
        if state is not None:
            state.consecutive_misses = 0

    @staticmethod
    def _claim(state: WebhookState, event_id: str | None, sent_at: float) -> _Early | None:
        """The held delivery that belongs to a ping just answered: by its event id when the
        kind matches by id, else the first that came after the ping was sent."""
        for early in state.held:
            matches = early.event_id == event_id if event_id else early.received_at >= sent_at
            if matches:
                state.held.remove(early)
                if early.expiry is not None:
                    early.expiry.cancel()
                return early
        return None

    def refuse(self, name: str | None, reason: Reason) -> None:
        """Count a request that is not a delivery (``name`` None: no such webhook target)."""
        state = self._states.get(name) if name is not None else None
        if state is None:
            self.unknown_target_total += 1
        else:
            state.rejected[reason] += 1

    def accept(self, name: str, event: Authentic) -> Delivered | Held | Refused:
        """Match an authentic request to the ping that caused it."""
        state = self._states.get(name)
        if state is None:  # removed by a reload while its body was read
            self.unknown_target_total += 1
            return Refused(Reason.UNKNOWN_TARGET, "the target no longer expects webhooks")
        kind = state.target.kind
        if not kind.is_ping(event):
            outcome: Delivered | Held | Refused = Refused(
                Reason.UNMATCHED, f"event type {event.event_type} is not a ping"
            )
        elif kind.match is Match.BY_EVENT_ID:
            outcome = self._match_event_id(state, event)
        else:
            outcome = self._match_latest(state)
        if isinstance(outcome, Refused):
            state.rejected[outcome.reason] += 1
        return outcome

    def _match_event_id(self, state: WebhookState, event: Authentic) -> Delivered | Held | Refused:
        if event.event_id is None or event.signed_at is None:
            return Refused(Reason.BAD_PAYLOAD, "no event id or signature timestamp")
        signature = (event.event_id, event.signed_at)
        if signature in state.signatures:
            return Refused(Reason.REPLAYED, f"{event.event_id} with this signature was accepted")
        self._remember_signature(state, signature)
        now = self._clock()
        if event.event_id in state.pending:
            return self._deliver(state, event.event_id, now)
        closed = state.closed.get(event.event_id)
        if closed is not None:
            return _closed_refusal(state, closed, event.event_id)
        return self._hold(state, _Early(now, event.event_id))

    def _match_latest(self, state: WebhookState) -> Delivered | Held | Refused:
        now = self._clock()
        if state.pending:
            latest = max(state.pending, key=lambda key: state.pending[key].sequence)
            return self._deliver(state, latest, now)
        return self._hold(state, _Early(now, None))

    def _hold(self, state: WebhookState, early: _Early) -> Held | Refused:
        if len(state.held) >= HELD_LIMIT:
            return self._unclaimed(state, early)
        timeout = state.target.settings.timeout
        early.expiry = asyncio.get_running_loop().call_later(timeout, self._release, state, early)
        state.held.append(early)
        return Held(f"held up to {timeout:g}s for its ping's answer")

    def _release(self, state: WebhookState, early: _Early) -> None:
        """No ping claimed a held delivery: count it as what it turned out to be."""
        if early in state.held:
            state.held.remove(early)
            refused = self._unclaimed(state, early)
            state.rejected[refused.reason] += 1
            log.info(
                "webhook not counted",
                extra={**_fields(state), "reason": refused.reason.value, "detail": refused.detail},
            )

    @staticmethod
    def _unclaimed(state: WebhookState, early: _Early) -> Refused:
        """An event id says it all (a retry of an event delivered meanwhile is a
        duplicate); a delivery without one is judged by the latest ping sent before it arrived
        (already delivered: a duplicate; missed: late)."""
        if early.event_id is not None:
            closed = state.closed.get(early.event_id)
            if closed is not None:
                return _closed_refusal(state, closed, early.event_id)
        else:
            before = [c for c in state.closed.values() if c.sent_at <= early.received_at]
            if before:
                latest = max(before, key=lambda closed: closed.sent_at)
                return _closed_refusal(state, latest, "the latest ping")
        return Refused(Reason.UNMATCHED, "no ping of this pingmon awaits it")

    def _deliver(self, state: WebhookState, key: str, received_at: float) -> Delivered:
        pending = state.pending.pop(key)
        if pending.deadline is not None:
            pending.deadline.cancel()
        roundtrip = max(0.0, received_at - pending.sent_at)
        self._close(state, key, _Closed(True, pending.sent_at))
        state.delivered_total += 1
        state.last_received_at = received_at
        state.roundtrip_counts[bisect.bisect_left(ROUNDTRIP_BUCKETS, roundtrip)] += 1
        state.roundtrip_sum += roundtrip
        if pending.sequence > state.decided_sequence:
            if state.last_delivered is not True:
                log.info(
                    "webhook round trip works",
                    extra={**_fields(state), "roundtrip_seconds": round(roundtrip, 4)},
                )
            state.decided_sequence = pending.sequence
            state.last_delivered = True
            state.last_roundtrip = roundtrip
            state.consecutive_misses = 0
        return Delivered(roundtrip)

    def _expire(self, state: WebhookState, key: str) -> None:
        pending = state.pending.pop(key, None)
        if pending is None:
            return
        self._close(state, key, _Closed(False, pending.sent_at))
        state.missed_total += 1
        if pending.sequence <= state.decided_sequence:
            return
        state.decided_sequence = pending.sequence
        state.last_delivered = False
        state.consecutive_misses += 1
        if state.consecutive_misses == 1:  # a line when the state changes, not every ping
            log.warning(
                "webhook did not arrive within its timeout",
                extra={**_fields(state), "timeout_seconds": state.target.settings.timeout},
            )

    @staticmethod
    def _close(state: WebhookState, key: str, closed: _Closed) -> None:
        state.closed[key] = closed
        while len(state.closed) > MEMORY:
            state.closed.popitem(last=False)

    def _remember_signature(self, state: WebhookState, signature: tuple[str, int]) -> None:
        """Keep accepted signatures while they are inside the tolerance: after it, a replay
        is refused as stale before it gets here."""
        state.signatures[signature] = None
        oldest = self._clock() - state.target.settings.replay_window()
        while state.signatures and (
            len(state.signatures) > MEMORY or next(iter(state.signatures))[1] < oldest
        ):
            state.signatures.popitem(last=False)


def _closed_refusal(state: WebhookState, closed: _Closed, what: str) -> Refused:
    if closed.delivered:
        return Refused(Reason.DUPLICATE, f"{what} was already delivered")
    timeout = state.target.settings.timeout
    return Refused(Reason.LATE, f"{what} arrived after its {timeout:g}s timeout")


def _fields(state: WebhookState) -> dict[str, object]:
    return {"target": state.target.name, "provider": state.target.provider}
