"""`pingmon check`: every selected target checked once, as a table or JSON."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

from pingmon.backoff import RateLimitGate
from pingmon.config import Config
from pingmon.daemon import new_sessions
from pingmon.errors import ErrorClass
from pingmon.placement import own_share
from pingmon.results import CheckResult, Scalar, result_fields
from pingmon.runner import Runner, build_plans
from pingmon.targets import Target


async def check_once(config: Config, names: Sequence[str]) -> list[CheckResult]:
    """Check the named targets (all of this shard's when none are named) concurrently, once
    each. Every name must be one of this shard's targets (KeyError)."""
    own, share = own_share(config)
    plans = build_plans(own, rate_shares=share.assignment.rate_share)
    selected = [plans[name] for name in names] if names else list(plans.values())
    async with new_sessions() as sessions:
        gate = RateLimitGate(config.settings.backoff)
        runner = Runner(sessions, gate, config.settings.concurrency)
        results = await asyncio.gather(*(runner.run(plan) for plan in selected))
    return [
        result or held_back(plan.target) for plan, result in zip(selected, results, strict=True)
    ]


def held_back(target: Target) -> CheckResult:
    """A target not sent because another target of its credential just got a 429."""
    return CheckResult(
        target=target.name,
        provider=target.provider_name,
        error_class=ErrorClass.RATE_LIMITED,
        http_status=None,
        duration_seconds=0.0,
        attempts=0,
        detail="not sent: another target of this credential was rate limited (429)",
        finished_at=time.time(),
    )


def as_json(results: Sequence[CheckResult], shard: int | None = None) -> str:
    """A JSON array, an object of ``RESULT_FIELDS`` per result; sharded, each also says the
    ``shard`` that checked it (unsharded output stays as it always was)."""
    extra = {} if shard is None else {"shard": shard}
    return json.dumps([{**result_fields(result), **extra} for result in results], indent=2)


def as_table(results: Sequence[CheckResult]) -> str:
    """One row per result, its time in milliseconds (of the duration ``--json`` shows)."""
    header = ("TARGET", "PROVIDER", "RESULT", "CLASS", "HTTP", "TIME", "DETAIL")
    rows = [header] + [_row(result_fields(result)) for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    )


def _row(fields: dict[str, Scalar]) -> tuple[str, ...]:
    duration = fields["duration_seconds"]
    assert isinstance(duration, float)
    return (
        str(fields["target"]),
        str(fields["provider"]),
        "ok" if fields["success"] else "FAIL",
        str(fields["error_class"]),
        "-" if fields["http_status"] is None else str(fields["http_status"]),
        f"{duration * 1000:.0f}ms",
        str(fields["detail"]),
    )
