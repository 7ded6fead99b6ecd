"""What one wake-up from idle costs a process on this machine, in CPU µs; run by hand.

    python bench/wakeup_cost.py                     # 50, 200, 500, 1,000 wake-ups/s, 5 s each
    python bench/wakeup_cost.py --rate 500 --work 300 --seconds 10

At each ``--rate``, the process sleeps between wake-ups (``time.sleep``) and, at each one,
spins for ``--work`` µs of its own CPU (``time.thread_time``). Over ``--seconds`` it reads its
CPU time three ways (``/proc/self/stat``'s utime + stime in clock ticks, ``/proc/self/schedstat``'s
run time in ns, ``time.process_time``) and prints, per wake-up, the CPU beyond the spin: what
going idle and coming back costs (the kernel's paths, and the process running on cold caches
after the CPU idled). The three clocks agreeing says the figure is CPU the process is charged,
not an accounting artefact. On the 2-vCPU VM of 2026-12-01: 92 µs a wake-up at 500/s, 150 at
200/s, 190 at 50/s. Why pingmon's ``timer_slack`` exists (docs/scheduling.md).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import NamedTuple


class Clocks(NamedTuple):
    """CPU seconds of this process by three clocks."""

    stat: float
    schedstat: float
    process_time: float


def read_clocks() -> Clocks:
    """The process's CPU seconds: /proc stat (ticks), schedstat (ns), process_time."""
    with open("/proc/self/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat(5))
    with open("/proc/self/schedstat") as schedstat:
        run_ns = int(schedstat.read().split()[0])
    return Clocks(ticks / os.sysconf("SC_CLK_TCK"), run_ns / 1e9, time.process_time())


def spin(seconds: float) -> None:
    """Use ``seconds`` of this thread's CPU."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def measure(rate: float, work: float, seconds: float) -> tuple[int, Clocks]:
    """Wake ``rate`` times a second for ``seconds``, spinning ``work`` s at each: the number of
    wake-ups and the CPU seconds beyond the spin by each clock."""
    before = read_clocks()
    started, wakes = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        spin(work)
        wakes += 1
        time.sleep(1 / rate)
    after = read_clocks()
    spun = wakes * work
    return wakes, Clocks(*(b - a - spun for a, b in zip(before, after, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, action="append", help="wake-ups/s (repeatable)")
    parser.add_argument("--work", type=float, default=300.0, help="µs of CPU at each wake-up")
    parser.add_argument("--seconds", type=float, default=5.0, help="per rate")
    args = parser.parse_args()
    print("| wake-ups/s | wake-ups | µs a wake-up beyond the spin: stat / schedstat / process |")
    print("| ---: | ---: | --- |")
    for rate in args.rate or [50.0, 200.0, 500.0, 1000.0]:
        wakes, extra = measure(rate, args.work / 1e6, args.seconds)
        per = " / ".join(f"{value / wakes * 1e6:.0f}" for value in extra)
        print(f"| {rate:g} | {wakes} | {per} |", flush=True)


if __name__ == "__main__":
    main()
