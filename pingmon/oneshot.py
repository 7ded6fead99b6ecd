"""`pingmon check`: every selected target checked once, as a table or JSON."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from pingmon.backoff import RateLimitGate
from pingmon.config import Config
from pingmon.daemon import new_sessions
from pingmon.errors import ErrorClass
from pingmon.results import CheckResult
from pingmon.runner import Runner, build_plans
from pingmon.targets import Target


async def check_once(config: Config, names: Sequence[str]) -> list[CheckResult]:
    """Check the named targets (all when none are named) concurrently, once each."""
    plans = build_plans(config)
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


def as_json(results: Sequence[CheckResult]) -> str:
    return json.dumps([result_json(result) for result in results], indent=2)


def result_json(result: CheckResult) -> dict[str, Any]:
    return {
        "target": result.target,
        "provider": result.provider,
        "success": result.success,
        "error_class": result.error_class.value,
        "http_status": result.http_status,
        "duration_seconds": round(result.duration_seconds, 6),
        "attempts": result.attempts,
        "detail": result.detail,
    }


def as_table(results: Sequence[CheckResult]) -> str:
    header = ("TARGET", "PROVIDER", "RESULT", "CLASS", "HTTP", "TIME", "DETAIL")
    rows = [header] + [
        (
            r.target,
            r.provider,
            "ok" if r.success else "FAIL",
            r.error_class.value,
            "-" if r.http_status is None else str(r.http_status),
            f"{r.duration_seconds * 1000:.0f}ms",
            r.detail,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    )
