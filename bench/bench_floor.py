"""Where the floor of a scheduled check goes: the bare client against the same GETs started
by pingmon's scheduler, by instructions and wake-ups a check; run by hand.

    python bench/bench_floor.py --cachegrind --python /work/main/.venv/bin/python \
        --python .venv/bin/python                    # instructions a check, both loops
    python bench/bench_floor.py --native --rate 3000 # CPU, wake-ups, loop turns a check
    python bench/bench_floor.py --native --profile /tmp/floor  # and py-spy raw profiles

nginx (``processes.start_nginx``, pinned to CPU 0) answers every GET. Each measurement is a
child process (this script with ``--child MODE``, pinned to CPU 1) running
``vs_blackbox.py``'s driver in one of two modes, on ``--loop`` (asyncio, uvloop):

- ``bare``: the driver's launch loop (``vs_blackbox.launch``: the GETs due started every
  ``DRIVER_TICK``) on one keep-alive ``ClientSession`` of 100 connections;
- ``scheduled``: the same GETs, each started by a job of pingmon's ``CheckScheduler``
  (``vs_blackbox.scheduled_launch``: ``rate x --interval`` jobs, the grid's jitter,
  max_instances=1, coalesce, the daemon's default timer slack since the ninth session: 0
  before), the floor variant of ``bench_ceiling.py`` and ``vs_blackbox.py``.

The child stops by itself after ``--warm`` + ``--checks`` answered GETs. ``--cachegrind``
runs it under ``valgrind --tool=cachegrind`` twice (``--checks`` and 0 more after the
warm-up) and prints the difference per check: instructions a check that do not move with the
machine's load (at ``--cg-rate``, which valgrind's slowed process keeps up with).
``--native`` runs it at full speed at ``--rate`` and prints over the checks after the warm-up:
checks/s, CPU µs a check, voluntary context switches a check (the process blocked in
``epoll_wait`` and was woken: a wake-up from idle) and, on asyncio, the loop's turns
(``select`` calls) a check and how many of them waited. ``--profile DIR`` adds a py-spy raw
profile of each native child (``/work/briefs/incl.py`` or ``byfile.py`` summarise them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import processes
import vs_blackbox

MODES = ("bare", "scheduled")
CHILD_MODES = (*MODES, "scheduled-loud")
PARTS = ("run", "skip", "task", "trigger", "store", "none")
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


# --- the child: the driver, stopping after a count ------------------------------------------


def _voluntary_switches() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    return 0


class Counters:
    """The process's CPU, wake-ups and (asyncio) loop turns, read at a moment."""

    turns = 0  # select() calls: one a loop iteration
    waits = 0  # of them, with a timeout other than 0 (the loop could have slept)
    logged = 0  # APScheduler's log records (a run skipped: max_instances)
    collected = 0.0  # CPU seconds in the cyclic garbage collector
    full = 0  # full (oldest generation) collections
    _began = 0.0

    def count_collections(self) -> None:
        """Time every collection (``gc.callbacks``)."""

        def timed(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                self._began = time.process_time()
                return
            self.collected += time.process_time() - self._began
            self.full += info["generation"] == 2

        gc.callbacks.append(timed)

    def snapshot(self) -> dict[str, float]:
        return {
            "cpu": time.process_time(),
            "wall": time.monotonic(),
            "switches": _voluntary_switches(),
            "turns": self.turns,
            "waits": self.waits,
            "logged": self.logged,
            "gc": self.collected,
            "full": self.full,
        }

    def count_logs(self) -> None:
        """Count APScheduler's log records (they are still printed, as in the daemon)."""
        counters = self

        class Counting(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                counters.logged += 1

        logging.getLogger("apscheduler").addHandler(Counting())

    def count_turns(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wrap an asyncio loop's selector to count its turns (uvloop's has none to wrap)."""
        selector = getattr(loop, "_selector", None)
        if selector is None:
            return
        select = selector.select

        def counted(timeout: float | None = None) -> Any:
            self.turns += 1
            self.waits += timeout != 0
            return select(timeout)

        selector.select = counted


async def child(args: argparse.Namespace) -> None:
    """GET ``args.url`` as ``args.child`` says until warm-up + checks are answered; print the
    counters at the end of the warm-up and at the end as one JSON line."""
    counters = Counters()
    counters.count_turns(asyncio.get_running_loop())
    counters.count_logs()
    counters.count_collections()
    answered, marks = 0, []
    done = asyncio.Event()
    tally = vs_blackbox.Tally()
    total = args.warm + args.checks
    timeout = aiohttp.ClientTimeout(total=vs_blackbox.REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=vs_blackbox.CONNECTIONS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def one() -> None:
            nonlocal answered
            try:
                async with http.get(args.url) as response:
                    await response.read()
            except (aiohttp.ClientError, OSError, TimeoutError):
                tally.errors += 1
                return
            answered += 1
            if answered == args.warm or answered == total:
                marks.append(counters.snapshot())
                if answered == total:
                    done.set()

        if args.warm == 0:
            marks.append(counters.snapshot())
        stop: Callable[[], object]
        if args.child.startswith("scheduled"):
            stop = vs_blackbox.scheduled_launch(one, args.rate, args.interval, [])
            if args.child == "scheduled-loud":  # APScheduler's warnings printed, as before
                logging.getLogger("apscheduler").setLevel(logging.NOTSET)
        else:
            launcher = vs_blackbox.launch(one, args.rate, tally, vs_blackbox.DRIVER_TICK)
            stop = asyncio.create_task(launcher).cancel
        if args.gc == "pingmon":  # the daemon's collector: settled, its running thresholds
            from pingmon.heap import settle

            settle()
        await done.wait()
        stop()
    first, last = marks[0], marks[-1]
    counts = {key: last[key] - first[key] for key in first}
    print(json.dumps(counts | {"dropped": tally.dropped, "errors": tally.errors}))


async def part(args: argparse.Namespace) -> None:
    """``args.rounds`` times: every one of ``args.jobs`` jobs made due at once, then as
    ``args.part`` says: ``run``: processed by the scheduler and run to their end (a
    coroutine that does nothing); ``skip``: processed while each job's last run still goes
    (``max_instances``: skipped); ``task``: the same coroutines started by ``call_soon``
    and run to their end (the floor: a task a run); ``trigger``: each job's successor
    computed (``GridIntervalTrigger._successor``, once a run); ``store``: the due jobs
    taken out of the heap store and put back with a new time; ``none``: nothing more (what
    the rounds cost without the part)."""
    from bench_dispatch import target

    from pingmon.scheduler import CheckScheduler

    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # as pingmon's logging sets it
    loop = asyncio.get_running_loop()

    async def check(name: str) -> None:
        return None

    scheduler = CheckScheduler(check, lambda lag: None)
    scheduler.sync(target(f"t{index:06d}", 3600.0) for index in range(args.jobs))
    scheduler.start()
    inner = scheduler._scheduler
    store, executor = inner._jobstores["default"], inner._executors["default"]
    await asyncio.sleep(0.01)
    jobs, later = store.get_all_jobs(), datetime.now(UTC) + timedelta(hours=2)
    for _ in range(args.rounds):
        past = datetime.now(UTC) - timedelta(seconds=1)
        with inner._jobstores_lock:
            for job in store.get_all_jobs():
                job.next_run_time = past
                store.update_job(job)
                if args.part == "skip":
                    executor._instances[job.id] = 1
        if args.part in ("run", "skip"):
            inner._process_jobs()
        elif args.part == "trigger":
            for job in jobs:
                job.trigger._successor(past, past)
        elif args.part == "store":
            with inner._jobstores_lock:
                for job, _ in store.take_due_jobs(time.time()):
                    job.next_run_time = later
                    store.update_job(job)
        elif args.part == "task":
            for index in range(args.jobs):
                loop.call_soon(loop.create_task, check(str(index)))
        for _ in range(3):  # the tasks run and end
            await asyncio.sleep(0)
        executor._instances.clear()
    scheduler.shutdown()


def run_child(args: argparse.Namespace) -> None:
    work = part(args) if args.part else child(args)
    if args.loop[0] == "uvloop":  # the child is given one
        import uvloop

        uvloop.run(work)
    else:
        asyncio.run(work)


# --- the parent ---------------------------------------------------------------------------


def child_argv(python: str, mode: str, loop: str, url: str, rate: float, warm: int,
               checks: int, interval: float, collector: str) -> list[str]:  # fmt: skip
    return [python, __file__, "--child", mode, "--url", url, "--loop", loop, "--rate",
            str(rate), "--warm", str(warm), "--checks", str(checks),
            "--interval", str(interval), "--gc", collector]  # fmt: skip


def cachegrind_instructions(prefix: list[str], argv: list[str]) -> int:
    """Instructions ``argv`` ran under ``valgrind --tool=cachegrind`` (behind ``prefix``, e.g.
    taskset); RuntimeError when valgrind printed no count."""
    command = [*prefix, "valgrind", "--tool=cachegrind", "--cache-sim=no",
               "--cachegrind-out-file=/dev/null", *argv]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    found = _REFS.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {done.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def instructions(python: str, mode: str, loop: str, url: str, args: argparse.Namespace) -> float:
    """Instructions a check: two runs under cachegrind, ``--checks`` apart, differenced."""
    counts = []
    for checks in (0, args.checks):
        argv = child_argv(python, mode, loop, url, args.cg_rate, args.warm, checks,
                          args.interval, args.gc)  # fmt: skip
        counts.append(cachegrind_instructions(["taskset", "-c", "1"], argv))
    counted: int = args.checks
    return (counts[1] - counts[0]) / counted


def part_instructions(python: str, name: str, loop: str, args: argparse.Namespace) -> float:
    """Instructions a job of one round of ``name`` (1 round and 3, differenced)."""
    counts = []
    for rounds in (1, 3):
        argv = [python, __file__, "--part", name, "--jobs", str(args.jobs),
                "--rounds", str(rounds), "--loop", loop]  # fmt: skip
        counts.append(cachegrind_instructions([], argv))
    jobs: int = args.jobs
    return (counts[1] - counts[0]) / (2 * jobs)


def print_parts(args: argparse.Namespace) -> None:
    """Per build and loop: instructions a run started (above the floor: a task a run), a
    run skipped, and the floor, each net of the rounds' own cost."""
    names = args.part_name or list(PARTS)
    shown = [name for name in names if name != "none"]
    print(
        f"{'loop':>7} " + " ".join(f"{name:>8}" for name in shown) + f" {'run-task':>9}  "
        f"build ({args.jobs} jobs due at once; instructions a run, net of the rounds)"
    )
    for python in args.python:
        for loop in args.loop:
            got = {name: part_instructions(python, name, loop, args) for name in {*names, "none"}}
            net = {name: got[name] - got["none"] for name in shown}
            above = net["run"] - net["task"] if "run" in net and "task" in net else float("nan")
            cells = " ".join(f"{net[name]:8,.0f}" for name in shown)
            print(f"{loop:>7} {cells} {above:9,.0f}  {python}", flush=True)


def native(python: str, mode: str, loop: str, url: str, args: argparse.Namespace) -> str:
    """One native run's figures a check, as a table row."""
    checks = int(args.rate * args.seconds)
    argv = child_argv(python, mode, loop, url, args.rate, int(args.rate * args.warmup), checks,
                      args.interval, args.gc)  # fmt: skip
    if args.profile:
        out = Path(args.profile) / f"{Path(python).parent.parent.parent.name}-{mode}-{loop}.raw"
        argv = ["py-spy", "record", "--nonblocking", "--format", "raw", "-r", "200", "-o",
                str(out), "--", *argv]  # fmt: skip
    done = subprocess.run(["nice", "-n", str(args.nice), "taskset", "-c", "1", *argv],
                          capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
    line = [text for text in done.stdout.splitlines() if text.startswith("{")][-1]
    got = json.loads(line)
    n = checks
    turns = f"{got['turns'] / n:6.2f} {got['waits'] / n:6.2f}" if got["turns"] else "     -      -"
    collected = f"{got['gc'] / n * 1e6:6.1f} {got['full']:4d}"
    return (f"{mode:>9} {loop:>7} {n / got['wall']:8.0f} {got['cpu'] / got['wall']:6.0%} "
            f"{got['cpu'] / n * 1e6:8.1f} {got['switches'] / n:7.2f} {turns}"
            f" {collected} {got['logged'] / n:6.3f} {got['dropped']:7d} {got['errors']:6d}"
            f"  {python}")  # fmt: skip


async def parent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as name:
        directory = Path(name)
        nginx, base = await processes.start_nginx(directory)
        pin = ["taskset", "-pc", "0", str(nginx.pid)]
        await asyncio.to_thread(subprocess.run, pin, capture_output=True, check=True)
        url = base + processes.PATH
        try:
            if args.cachegrind:
                print(f"{'mode':>9} {'loop':>7} {'instr/check':>12}  build  "
                      f"(rate {args.cg_rate}/s, {args.checks} checks)")  # fmt: skip
                for python in args.python:
                    for loop in args.loop:
                        for mode in args.mode:
                            count = await asyncio.to_thread(
                                instructions, python, mode, loop, url, args
                            )
                            print(f"{mode:>9} {loop:>7} {count:12,.0f}  {python}", flush=True)
            if args.native:
                print(f"{'mode':>9} {'loop':>7} {'checks/s':>8} {'core':>6} {'CPU µs':>8} "
                      f"{'wakes':>7} {'turns':>6} {'waits':>6} {'gc µs':>6} {'full':>4} "
                      f"{'logs':>6} {'dropped':>7} {'errors':>6}  build")  # fmt: skip
                for _ in range(args.rounds):
                    for python in args.python:
                        for loop in args.loop:
                            for mode in args.mode:
                                row = await asyncio.to_thread(native, python, mode, loop, url,
                                                              args)  # fmt: skip
                                print(row, flush=True)
        finally:
            with contextlib.suppress(ProcessLookupError):
                await nginx.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--python", action="append", default=[])
    parser.add_argument("--loop", action="append", choices=("asyncio", "uvloop"))
    parser.add_argument("--cachegrind", action="store_true")
    parser.add_argument("--native", action="store_true")
    parser.add_argument("--cg-rate", type=float, default=40.0, help="checks/s under valgrind")
    parser.add_argument("--checks", type=int, default=400, help="counted (cachegrind)")
    parser.add_argument("--warm", type=int, default=100, help="warm-up checks (cachegrind)")
    parser.add_argument("--rate", type=float, default=3000.0, help="checks/s asked (native)")
    parser.add_argument("--seconds", type=float, default=10.0, help="window (native)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds (native)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between runs")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--gc",
        choices=("default", "pingmon"),
        default="default",
        help="the children's cyclic collector: CPython's thresholds (default) "
        "or pingmon's (pingmon.heap.settle: frozen, RUNNING_THRESHOLDS)",
    )
    parser.add_argument("--nice", type=int, default=-10)
    parser.add_argument("--profile", help="a directory for py-spy raw profiles (native)")
    parser.add_argument(
        "--mode",
        action="append",
        choices=CHILD_MODES,
        help="default: bare, scheduled (scheduled-loud: APScheduler's warnings printed)",
    )
    parser.add_argument(
        "--parts",
        action="store_true",
        help="instructions a run of each part of the scheduler's dispatch",
    )
    parser.add_argument("--jobs", type=int, default=3000, help="jobs due at once (--parts)")
    parser.add_argument("--part-name", action="append", choices=PARTS, help="--parts: which")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=CHILD_MODES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or args.part:
        args.loop = args.loop or ["asyncio"]
        run_child(args)
        return
    args.python = args.python or [sys.executable]
    args.loop = args.loop or ["uvloop", "asyncio"]
    args.mode = args.mode or list(MODES)
    if args.parts:
        print_parts(args)
        return
    asyncio.run(parent(args))


if __name__ == "__main__":
    main()
