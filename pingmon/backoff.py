"""Back-off after a 429, shared by every target that uses the same credential."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC

from pingmon.config import BackoffSettings

# RFC 9111 section 1.2.2: a delta-seconds too large to represent is taken as 2^31.
LONGEST_DELAY = float(2**31)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP-date,
    RFC 9110 section 10.2.3); total: it returns for every string, never raises.

    ``now`` is the wall-clock time in seconds since the epoch. Garbage (a date no calendar
    holds, such as the year 99999999999, included), negative values and dates in the past
    give None, so the caller falls back to the exponential rule. A delta-seconds beyond
    2^31 is read as 2^31 (RFC 9111 section 1.2.2), and a date is at most the year 9999, so
    the result is always finite; the caller caps it at ``backoff.max``.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # str.isdigit alone accepts "²", which int() refuses
        digits = text.lstrip("0") or "0"
        if len(digits) > len(str(2**31)):  # never int() of 8,000 digits: Python refuses 4,300
            return LONGEST_DELAY
        return min(float(int(digits)), LONGEST_DELAY)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # the asctime form has no zone; every HTTP-date is GMT (RFC 9110)
        moment = moment.replace(tzinfo=UTC)
    delay = moment.timestamp() - now
    return delay if delay > 0 else None


@dataclass(frozen=True, slots=True)
class BackoffDecision:
    """The delay chosen after a 429, and why."""

    delay: float
    consecutive: int
    retry_after: float | None
    capped: bool


@dataclass(frozen=True, slots=True)
class BackoffInForce:
    """A closed gate as it stands: the delay chosen at its last 429, and the seconds left."""

    delay_seconds: float
    remaining_seconds: float


@dataclass(slots=True)
class _GateState:
    consecutive: int = 0
    until: float = 0.0
    delay: float = 0.0


class RateLimitGate:
    """One gate per credential: closed for a while after a 429, cleared by a success.

    The clock (monotonic seconds), the wall clock (for HTTP-dates) and the randomness are
    injectable so tests can drive time.
    """

    def __init__(
        self,
        policy: BackoffSettings,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rand: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._wall_clock = wall_clock
        self._rand = rand or random.Random()
        self._states: dict[str, _GateState] = {}

    def is_closed(self, credential: str) -> bool:
        state = self._states.get(credential)
        return state is not None and state.until > self._clock()

    def remaining(self, credential: str) -> float:
        """Seconds until the gate opens, 0 when it is open."""
        state = self._states.get(credential)
        return max(0.0, state.until - self._clock()) if state else 0.0

    def delay_in_force(self, credential: str) -> float:
        """The back-off delay chosen at the last 429 while the gate is closed, else 0."""
        state = self._states.get(credential)
        return state.delay if state is not None and state.until > self._clock() else 0.0

    def delays(self) -> Mapping[str, float]:
        """Every credential's delay in force: a snapshot for a scrape."""
        now = self._clock()
        return {key: s.delay for key, s in self._states.items() if s.until > now}

    def in_force(self) -> dict[str, BackoffInForce]:
        """Every closed gate by credential, read at one instant: a snapshot for /status."""
        now = self._clock()
        return {
            key: BackoffInForce(s.delay, s.until - now)
            for key, s in self._states.items()
            if s.until > now
        }

    def on_rate_limited(self, credential: str, retry_after: str | None) -> BackoffDecision:
        """Close the gate after a 429: Retry-After if usable, else exponential, with jitter."""
        state = self._states.setdefault(credential, _GateState())
        state.consecutive += 1
        asked = parse_retry_after(retry_after, self._wall_clock())
        if asked is not None:
            # Never earlier than asked; a little later so that targets do not return at once.
            wanted = asked * self._rand.uniform(1.0, 1.1)
        else:
            wanted = self._exponential(state.consecutive) * self._rand.uniform(0.9, 1.1)
        delay = min(self.policy.max, wanted)
        until = self._clock() + delay
        if until > state.until:  # a shorter 429 never shortens a wait already in force
            state.until, state.delay = until, delay
        return BackoffDecision(delay, state.consecutive, asked, capped=wanted > self.policy.max)

    def _exponential(self, consecutive: int) -> float:
        """``initial * multiplier^(n-1)``; infinite (so capped) where a float overflows,
        e.g. 10^309 after days of 429s."""
        try:
            return self.policy.initial * self.policy.multiplier ** (consecutive - 1)
        except OverflowError:
            return math.inf

    def on_success(self, credential: str) -> None:
        self._states.pop(credential, None)

    def retain(self, credentials: set[str]) -> None:
        """Forget credentials no longer configured (after a reload)."""
        for key in set(self._states) - credentials:
            del self._states[key]


class TokenBucket:
    """A request budget per credential, so pingmon itself never causes a 429.

    ``reserve`` takes a token now and says how long to wait before using it, so callers
    queue fairly without a lock.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()

    def reserve(self) -> float:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
