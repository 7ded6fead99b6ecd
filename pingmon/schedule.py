"""A target's schedule and limits, resolved once, and the rules its values satisfy together."""

from __future__ import annotations

from dataclasses import dataclass

from pingmon.errors import Problem
from pingmon.fields import format_duration


@dataclass(frozen=True, slots=True)
class Schedule:
    """How often and how patiently one target is checked: the defaults overlaid with the
    target's own values, the only place a reader finds them.

    Seconds between checks, seconds a check may take, +-fraction of jitter on every run,
    seconds between checks while it fails (None: as when it passes), in-check retries, and
    the most body bytes read.
    """

    interval: float
    timeout: float
    jitter: float
    failure_interval: float | None
    retries: int
    max_body_bytes: int


def schedule_problems(
    schedule: Schedule, webhook_timeout: float | None, where: str
) -> list[Problem]:
    """What the schedule's values (and the webhook's wait, if the ping sends one) break
    together, each named at ``where`` plus the key to change: a check must end before the
    next starts, a failing target is not rechecked later than a passing one, and a webhook
    may take at most one interval (past it, the next ping's webhook could be taken for this
    one's)."""
    interval, timeout, failure_interval = (
        schedule.interval,
        schedule.timeout,
        schedule.failure_interval,
    )
    problems = []
    if timeout >= interval:
        problems.append(Problem(f"{where}.timeout", _not_below(timeout, "the interval", interval)))
    if failure_interval is not None:
        if failure_interval > interval:
            message = _not_above(failure_interval, "the interval", interval)
            problems.append(Problem(f"{where}.failure_interval", message))
        if timeout >= failure_interval:
            message = _not_below(timeout, "failure_interval", failure_interval)
            problems.append(Problem(f"{where}.timeout", message))
    if webhook_timeout is not None and webhook_timeout > interval:
        message = _not_above(webhook_timeout, "the target's interval", interval)
        problems.append(Problem(f"{where}.webhook.timeout", message))
    return problems


def _not_below(value: float, what: str, limit: float) -> str:
    return f"must be below {what} ({format_duration(value)} >= {format_duration(limit)})"


def _not_above(value: float, what: str, limit: float) -> str:
    return f"must not exceed {what} ({format_duration(value)} > {format_duration(limit)})"
