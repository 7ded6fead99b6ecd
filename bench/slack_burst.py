"""How long one wake-up holds the loop when a large timer slack gathers many runs.

    python bench/slack_burst.py --targets 10000 --interval 20 --slack 0,0.01,0.1,1

Runs ``--targets`` targets every ``--interval`` seconds in a ``CheckScheduler`` on uvloop
(each check ~50 us of Python, then one await) with each slack in turn for ``--seconds``, and
prints the slack the scheduler used (``effective_slack``), how long ``_process_jobs`` took a
wake-up (p50/p99/max, ms) and how late a probe sleeping 5 ms woke (p50/p99/max, ms).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import time

import uvloop

from pingmon.providers.http import HttpParams, HttpSettings
from pingmon.schedule import Schedule
from pingmon.scheduler import CheckScheduler
from pingmon.targets import Target


def _target(name: str, interval: float) -> Target:
    schedule = Schedule(interval=interval, timeout=1.0, jitter=0.0, failure_interval=None,
                        retries=0, max_body_bytes=1024)  # fmt: skip
    return Target(name=name, provider_name="p", params=HttpParams(), schedule=schedule,
                  provider=HttpSettings(base_url="http://127.0.0.1:9"))  # fmt: skip


async def _work(name: str) -> None:
    """About 50 us of Python, as a check's first step, then a turn of the loop."""
    start = time.perf_counter()
    while time.perf_counter() - start < 50e-6:
        pass
    await asyncio.sleep(0)


def _quantiles(values: list[float]) -> str:
    values = sorted(values)
    picked = (values[len(values) // 2], values[int(0.99 * len(values))], values[-1])
    return "/".join(f"{value * 1e3:.2f}" for value in picked)


async def _measure(slack: float, targets: int, interval: float, seconds: float) -> None:
    scheduler = CheckScheduler(_work, lambda lag: None, timer_slack=slack)
    inner = scheduler._scheduler
    process_jobs = inner._process_jobs
    holds: list[float] = []

    def timed() -> float | None:
        start = time.perf_counter()
        wait: float | None = process_jobs()
        holds.append(time.perf_counter() - start)
        return wait

    inner._process_jobs = timed  # type: ignore[method-assign]
    scheduler.sync([_target(f"t{index}", interval) for index in range(targets)])
    gc.collect()
    gc.freeze()  # as the daemon does after a load (pingmon.heap)
    scheduler.start()
    lates: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        await asyncio.sleep(0.005)
        lates.append(time.monotonic() - start - 0.005)
    scheduler.shutdown()
    print(
        f"slack {slack:g} s (used {inner.timer_slack:.4g} s): wake-ups {len(holds)}, "
        f"in _process_jobs {_quantiles(holds)} ms, probe late {_quantiles(lates)} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--slack", default="0,0.01,0.1,1")
    args = parser.parse_args()
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)  # runs cancelled at the end
    for slack in (float(value) for value in args.slack.split(",")):
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_measure(slack, args.targets, args.interval, args.seconds))


if __name__ == "__main__":
    main()
