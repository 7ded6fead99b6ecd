"""What a daemon's scheduler lag is made of: ``bench_daemon.py`` with a probe in ``pingmon run``.

    python bench/lag_probe.py --python /work/main/.venv/bin/python -- --targets 10000 \\
        --duration 30 --nice -10
    python bench/lag_probe.py --report records.json     # records kept with --keep

Runs ``bench_daemon.py`` (the arguments after ``--``) with ``--pingmon`` set to a wrapper that
starts ``pingmon run`` under ``--python`` (a build's interpreter; default: this one) with a
probe, then prints what the probe saw from ``--skip`` seconds after the start (default 15: the
first interval and the first scrape). The probe records, in ``time.perf_counter`` seconds:

- every run's start and lag (as ``pingmon_scheduler_lag_seconds`` observes it) and its place
  in its wake-up; every scheduler wake-up (``LoopScheduler._process_jobs``): its wall time,
  CPU time (``time.thread_time``) and jobs started;
- every step of every check (``Daemon.check``'s coroutine, timed between its suspensions) and
  of every render of ``/metrics`` (``Metrics._render_yielding``): wall and CPU time;
- every garbage collection (``gc.callbacks``): its pause and generation.

For the runs later than ``--late`` (default 20 ms), it sums what overlapped the time each
waited (from its scheduled time to its start): collections, wake-ups, check steps, render
steps, and the rest (I/O callbacks, the loop's own work, time the process was not on a CPU:
compare the wall and CPU figures). The probe costs CPU itself (a few µs a step); read its
lag figures against the plain ``bench_daemon.py`` run's, not as the daemon's own.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# The probe, run as ``python -c PROBE pingmon-args...`` by the wrapper: it patches the build's
# classes before ``pingmon.cli.main`` builds the daemon, and dumps its records at exit.
PROBE = r"""
import atexit, gc, json, os, sys, time
perf, cpu = time.perf_counter, time.thread_time
rec = {"t0": perf(), "runs": [], "wakes": [], "steps": [], "gc": []}
started = [0.0, 0.0]
def on_gc(phase, info):
    if phase == "start":
        started[0], started[1] = perf(), cpu()
    else:
        rec["gc"].append(
            (started[0], perf() - started[0], info["generation"], cpu() - started[1],
             info["collected"])
        )
gc.callbacks.append(on_gc)
import pingmon.daemon as D, pingmon.metrics as M, pingmon.scheduler as S
in_wake = [0]
process_jobs = S.LoopScheduler._process_jobs
def probed_process_jobs(self):
    t, c = perf(), cpu()
    in_wake[0] = 0
    wait = process_jobs(self)
    rec["wakes"].append((t, perf() - t, cpu() - c, in_wake[0]))
    return wait
S.LoopScheduler._process_jobs = probed_process_jobs
submit = S.CheckExecutor._do_submit_job
def probed_submit(self, job, run_times):
    rec["runs"].append((perf(), time.time() - run_times[-1].timestamp(), in_wake[0]))
    in_wake[0] += 1
    return submit(self, job, run_times)
S.CheckExecutor._do_submit_job = probed_submit
class Timed:
    def __init__(self, coro, kind):
        self.coro, self.kind = coro, kind
    def __await__(self):
        value, error = None, None
        while True:
            t, c = perf(), cpu()
            try:
                yielded = self.coro.send(value) if error is None else self.coro.throw(error)
            except StopIteration as stop:
                rec["steps"].append((t, perf() - t, cpu() - c, self.kind))
                return stop.value
            except BaseException:
                rec["steps"].append((t, perf() - t, cpu() - c, self.kind))
                raise
            rec["steps"].append((t, perf() - t, cpu() - c, self.kind))
            try:
                value, error = (yield yielded), None
            except BaseException as exc:
                value, error = None, exc
check = D.Daemon.check
async def probed_check(self, name):
    return await Timed(check(self, name), "check")
D.Daemon.check = probed_check
render = M.Metrics._render_yielding
async def probed_render(self, key):
    return await Timed(render(self, key), "render")
M.Metrics._render_yielding = probed_render
def dump():  # json.dumps is one C call, json.dump many (a slow exit loses the records)
    if on_gc not in gc.callbacks:
        return
    gc.callbacks.remove(on_gc)
    with open(os.environ["LAG_PROBE_OUT"] + ".part", "w") as out:
        out.write(json.dumps(rec))
    os.replace(os.environ["LAG_PROBE_OUT"] + ".part", os.environ["LAG_PROBE_OUT"])
atexit.register(dump)
stop = D.Daemon.stop
async def probed_stop(self, *args, **kwargs):  # the records first: a slow stop is killed
    dump()
    return await stop(self, *args, **kwargs)
D.Daemon.stop = probed_stop
from pingmon.cli import main
sys.exit(main(sys.argv[1:]))
"""

Interval = tuple[float, float]


def overlap(intervals: list[Interval], start: float, end: float, longest: float) -> float:
    """Seconds of ``intervals`` (sorted by start, none longer than ``longest`` s) in
    [start, end]."""
    total = 0.0
    for left, right in intervals[bisect.bisect_left(intervals, (start - longest,)) :]:
        if left > end:
            break
        total += max(0.0, min(end, right) - max(start, left))
    return total


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report_collections(collections: list[list[Any]], span: float) -> None:
    """Per generation: how many collections a second, their pauses' wall and CPU quantiles
    (ms) and the objects they freed (records of builds before the CPU was kept: wall only)."""
    for generation in sorted({gc[2] for gc in collections}):
        mine = [gc for gc in collections if gc[2] == generation]
        line = f"  generation {generation}: {len(mine) / span:.1f}/s"
        for name, field in (("wall", 1), ("CPU", 3)):
            if all(len(gc) > field for gc in mine):
                ms = sorted(gc[field] * 1e3 for gc in mine)
                line += (
                    f"; {name} ms p50 {quantile(ms, 0.5):.2f}, p90 {quantile(ms, 0.9):.2f}, "
                    f"p99 {quantile(ms, 0.99):.2f}, max {ms[-1]:.1f}, sum {sum(ms) / 1e3:.2f} s"
                )
        if all(len(gc) > 4 for gc in mine):
            line += f"; freed {sum(gc[4] for gc in mine)} objects"
        print(line)


def report(rec: dict[str, Any], skip: float, late: float) -> None:
    """Print the lag's quantiles, the wake-ups, steps and collections, and what overlapped
    the waits of the runs later than ``late`` seconds."""
    since = rec["t0"] + skip
    runs = [run for run in rec["runs"] if run[0] >= since]
    if not runs:
        print("no run after --skip")
        return
    lags = sorted(run[1] for run in runs)
    span = runs[-1][0] - runs[0][0]
    print(
        f"runs {len(runs)} in {span:.1f} s; lag ms p50 {quantile(lags, 0.5) * 1e3:.2f}, "
        f"p90 {quantile(lags, 0.9) * 1e3:.2f}, p99 {quantile(lags, 0.99) * 1e3:.2f}, "
        f"max {lags[-1] * 1e3:.1f}; > {late * 1e3:.0f} ms: "
        f"{sum(lag > late for lag in lags) / len(lags) * 100:.2f} %"
    )
    wakes = [wake for wake in rec["wakes"] if wake[0] >= since]
    jobs = sorted(wake[3] for wake in wakes)
    print(
        f"wake-ups {len(wakes)} ({len(wakes) / len(runs):.2f} a run): jobs a wake-up p50 "
        f"{quantile(jobs, 0.5)}, p99 {quantile(jobs, 0.99)}, max {jobs[-1]}; wall "
        f"{sum(w[1] for w in wakes):.2f} s, CPU {sum(w[2] for w in wakes):.2f} s "
        f"({sum(w[2] for w in wakes) / len(runs) * 1e6:.1f} µs a run)"
    )
    for kind in ("check", "render"):
        steps = [step for step in rec["steps"] if step[0] >= since and step[3] == kind]
        if steps:
            walls = sorted(step[1] for step in steps)
            print(
                f"{kind} steps {len(steps)}: wall {sum(walls):.2f} s, CPU "
                f"{sum(step[2] for step in steps):.2f} s; p99 {quantile(walls, 0.99) * 1e3:.2f} "
                f"ms, max {walls[-1] * 1e3:.1f} ms"
            )
    collections = [gc for gc in rec["gc"] if gc[0] >= since]
    pauses = sorted(gc[1] for gc in collections)
    if pauses:
        print(
            f"collections {len(pauses)} (generations {sorted({gc[2] for gc in collections})}): "
            f"{sum(pauses):.2f} s, p99 {quantile(pauses, 0.99) * 1e3:.1f} ms, "
            f"max {pauses[-1] * 1e3:.1f} ms"
        )
        report_collections(collections, span)

    def intervals(records: list[list[Any]], kind: str | None = None) -> list[Interval]:
        return sorted(
            (r[0], r[0] + r[1])
            for r in records
            if r[0] >= since - 10 and (kind is None or r[3] == kind)
        )

    def collected(generation: int) -> list[Interval]:
        return sorted(
            (r[0], r[0] + r[1]) for r in rec["gc"] if r[0] >= since - 10 and r[2] == generation
        )

    sources = {
        "garbage collections (inside the steps below)": intervals(rec["gc"]),
        **{
            f"garbage collections of generation {generation}": collected(generation)
            for generation in (0, 1, 2)
        },
        "scheduler wake-ups": intervals(rec["wakes"]),
        "check steps": intervals(rec["steps"], "check"),
        "render steps": intervals(rec["steps"], "render"),
    }
    waits = [(start - lag, start, index) for start, lag, index in runs if lag > late]
    total = sum(end - start for start, end, _ in waits)
    print(f"what overlapped the waits of the {len(waits)} runs > {late * 1e3:.0f} ms late:")
    counted = 0.0
    for name, spans in sources.items():
        longest = max((right - left for left, right in spans), default=0.0)
        share = sum(overlap(spans, start, end, longest) for start, end, _ in waits)
        if not name.startswith("garbage"):
            counted += share
        print(f"  {share / total * 100:5.1f} %  {name}")
    print(
        f"  {(total - counted) / total * 100:5.1f} %  the rest (I/O callbacks, the loop, off CPU)"
    )
    # A run's wait that the wake-up starting it spent on the runs started before it.
    earlier = 0.0
    wake_start = runs[0][0]
    for start, lag, index in runs:
        if index == 0:
            wake_start = start
        if lag > late:
            earlier += start - wake_start
    print(f"  {earlier / total * 100:5.1f} %  of it: starting the runs before it in its wake-up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--python", default=sys.executable, help="the build's interpreter")
    parser.add_argument("--skip", type=float, default=15.0, help="seconds not reported")
    parser.add_argument("--late", type=float, default=0.02, help="seconds: a late run")
    parser.add_argument("--keep", help="also write the probe's records to this file")
    parser.add_argument("--report", help="only report on records kept before (--keep)")
    parser.add_argument("bench_daemon_args", nargs="*")
    args = parser.parse_args()
    if args.report:
        report(json.loads(Path(args.report).read_text()), args.skip, args.late)
        return
    with tempfile.TemporaryDirectory(prefix="lag-probe-") as folder:
        wrapper = Path(folder) / "pingmon"
        probe = Path(folder) / "probe.py"
        probe.write_text(PROBE)
        wrapper.write_text(f'#!/bin/sh\nexec {args.python} {probe} "$@"\n')
        wrapper.chmod(0o755)
        out = Path(args.keep or Path(folder) / "records.json")
        env = {**os.environ, "LAG_PROBE_OUT": str(out)}
        command = [sys.executable, str(HERE / "bench_daemon.py"), "--pingmon", str(wrapper)]
        subprocess.run([*command, *args.bench_daemon_args], env=env, check=True)
        report(json.loads(out.read_text()), args.skip, args.late)


if __name__ == "__main__":
    main()
