"""CPU per dispatch of pingmon's scheduler (APScheduler as pingmon uses it); run by hand.

    python bench/bench_dispatch.py --jobs 1000 --jobs 50000 --store heap --store memory

For each ``--jobs`` count and ``--store`` (``heap``: the build's own job store, pingmon's
``HeapJobStore`` since it has one; ``memory``: APScheduler's ``MemoryJobStore``, what pingmon
used before), a ``CheckScheduler``
runs that many jobs spread over ``jobs / --rate`` seconds (so ``--rate`` runs a second,
default 500), each a coroutine that does nothing, on the event loop ``--loop`` names
(``asyncio`` or ``uvloop``). After a warm-up of 3 s and a fifth of the interval (a first run
due within the jitter of the start moves to the next interval, so the first tenth of it has
fewer runs) it measures ``--window`` seconds
(default 8): runs per second and the process's CPU (``time.process_time``) per run, which is
what the scheduler costs a check before the check itself. A plain ``call_later`` timer per
job starting the same coroutine (``--store floor``) is the floor: what any timer costs.
Each line names the scheduler, job store and executor classes that ran.

``--burst N`` measures instead the CPU per run of N jobs all due at one wake-up (the
scheduler's per-run cost without its per-wake-up cost: the wake-up, the tasks' first steps
and their ends), as the median of ``--rounds`` bursts, beside the same N tasks started by
``call_soon`` (the floor); it is steadier than the timed window on a shared machine. It
imports only
what older builds have too, so ``OLD/.venv/bin/python bench/bench_dispatch.py`` measures
another build's dispatch (``--loop asyncio``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore

from pingmon.providers.http import HttpParams, HttpSettings
from pingmon.schedule import Schedule
from pingmon.scheduler import CheckScheduler
from pingmon.targets import Target

WARMUP_SECONDS = 3.0


def target(name: str, interval: float) -> Target:
    return Target(
        name=name,
        provider_name="p",
        provider=HttpSettings(base_url="http://127.0.0.1:9"),
        params=HttpParams(),
        schedule=Schedule(
            interval=interval,
            timeout=interval / 2,
            jitter=0.1,
            failure_interval=None,
            retries=0,
            max_body_bytes=1024,
        ),
    )


async def dispatch(jobs: int, store: str, args: argparse.Namespace) -> tuple[float, float, str]:
    """Runs a second, CPU µs per run over the window, and what dispatched them."""
    runs = 0

    async def check(name: str) -> None:
        nonlocal runs
        runs += 1

    interval = jobs / args.rate
    stop, used = _start(jobs, interval, store, check)
    try:
        await asyncio.sleep(WARMUP_SECONDS + 0.2 * interval)
        before, cpu = runs, time.process_time()
        await asyncio.sleep(args.window)
        done, cpu = runs - before, time.process_time() - cpu
    finally:
        stop()
    return done / args.window, cpu / done * 1e6 if done else float("nan"), used


def _start(
    jobs: int, interval: float, store: str, check: Callable[[str], Coroutine[Any, Any, None]]
) -> tuple[Callable[[], None], str]:
    """Start the jobs; how to stop them, and the scheduler's classes that run them."""
    if store == "floor":
        loop = asyncio.get_running_loop()
        handles: dict[int, asyncio.TimerHandle] = {}
        tasks: set[asyncio.Task[None]] = set()

        def fire(index: int) -> None:
            task = loop.create_task(check(str(index)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            handles[index] = loop.call_later(interval, fire, index)

        def cancel() -> None:
            for handle in handles.values():
                handle.cancel()

        for index in range(jobs):
            handles[index] = loop.call_later(random.random() * interval, fire, index)
        return cancel, "call_later"
    scheduler = CheckScheduler(check, lambda lag: None)
    if store == "memory":
        scheduler._scheduler.remove_jobstore("default")
        scheduler._scheduler.add_jobstore(MemoryJobStore(), "default")
    scheduler.sync(target(f"t{index}", interval) for index in range(jobs))
    scheduler.start()  # after the jobs are in, as the daemon starts it
    inner = scheduler._scheduler
    used = [type(inner), type(inner._jobstores["default"]), type(inner._executors["default"])]
    return scheduler.shutdown, "+".join(kind.__name__ for kind in used)


async def burst(jobs: int, setup_only: bool = False) -> tuple[float, float, str]:
    """CPU µs per run of ``jobs`` runs all due at one wake-up, until every run has ended, and
    of the same tasks started by ``call_soon``; and what dispatched them. ``setup_only``:
    everything but the burst and the floor (under cachegrind, what to subtract)."""
    loop = asyncio.get_running_loop()
    runs = 0

    async def check(name: str) -> None:
        nonlocal runs
        runs += 1

    scheduler = CheckScheduler(check, lambda lag: None)
    scheduler.sync(target(f"t{index}", 3600.0) for index in range(jobs))
    scheduler.start()
    inner = scheduler._scheduler
    store, executor = inner._jobstores["default"], inner._executors["default"]
    used = "+".join(type(kind).__name__ for kind in (inner, store, executor))
    await asyncio.sleep(0.01)
    past = datetime.now(UTC) - timedelta(seconds=1)
    with inner._jobstores_lock:
        for job in store.get_all_jobs():
            job.next_run_time = past
            store.update_job(job)
    if setup_only:
        scheduler.shutdown()
        return 0.0, 0.0, used
    try:
        cpu = time.process_time()
        inner.wakeup()
        await _turns_until(lambda: runs == jobs and not executor._instances)
        cpu = time.process_time() - cpu
    finally:
        scheduler.shutdown()
    tasks: set[asyncio.Task[None]] = set()

    def fire(index: int) -> None:
        task = loop.create_task(check(str(index)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    runs = 0
    floor = time.process_time()
    for index in range(jobs):
        loop.call_soon(fire, index)
    await _turns_until(lambda: runs == jobs and not tasks)
    floor = time.process_time() - floor
    return cpu / jobs * 1e6, floor / jobs * 1e6, used


async def _turns_until(condition: Callable[[], bool], turns: int = 100_000) -> None:
    """Let the loop turn until ``condition`` holds (bounded: RuntimeError after ``turns``)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise RuntimeError("the burst did not end")


async def bursts(args: argparse.Namespace) -> None:
    """Median CPU µs per run over ``--rounds`` bursts of ``--burst`` jobs, and the floor's."""
    print(f"{'jobs':>7} {'CPU µs/run':>11} {'floor':>7} {'above':>7}  dispatched by ({args.loop})")
    results = [await burst(args.burst, args.setup_only) for _ in range(args.rounds)]
    cpu = statistics.median(result[0] for result in results)
    floor = statistics.median(result[1] for result in results)
    print(f"{args.burst:7d} {cpu:11.1f} {floor:7.1f} {cpu - floor:7.1f}  {results[0][2]}")


async def main(args: argparse.Namespace) -> None:
    if args.burst:
        await bursts(args)
        return
    print(
        f"{'jobs':>7} {'store':>7} {'runs/s':>8} {'CPU µs/run':>11}  dispatched by ({args.loop})"
    )
    for jobs in args.jobs:
        for store in args.store:
            rate, cpu, used = await dispatch(jobs, store, args)
            print(f"{jobs:7d} {store:>7} {rate:8.1f} {cpu:11.1f}  {used}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, action="append", default=[])
    parser.add_argument("--store", action="append", choices=("heap", "memory", "floor"))
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    arguments = parser.parse_args()
    arguments.jobs = arguments.jobs or [1000]
    arguments.store = arguments.store or ["heap", "memory", "floor"]
    if arguments.loop == "uvloop":
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
