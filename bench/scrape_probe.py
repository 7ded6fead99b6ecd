"""One build's ``/metrics`` scrape measured directly, in process: no checks, so nothing to
subtract; run by hand, under each build's interpreter in turn.

    python bench/scrape_probe.py --targets 10000 --rounds 8
    /work/main/.venv/bin/python bench/scrape_probe.py --targets 10000 --rounds 8

``Metrics`` (default profile) over N targets; before each scrape every target records a new
result (as at 10 s intervals scraped every 15 s: every target changed), then the collector
runs and the process idles for a moment. The scrape is served by ``pingmon.server.metrics``
on a real aiohttp server to ``curl`` (another process) with Prometheus' headers (gzip; or
``--plain``). Per scrape, medians printed:

- CPU of the event loop's thread (``time.thread_time``) and of the whole process (the
  worker threads: ``time.process_time``) from the request's sending to curl's exit;
- minor page faults (``getrusage``);
- the longest turn of the loop the scrape held, in CPU (a heartbeat every millisecond reads
  ``time.thread_time``: the largest gap, less the heartbeat's own) and in wall time;
- ``--churn``: the heartbeat leaves 300 reference cycles every millisecond (as checks leave
  theirs), so that the collector runs during the scrape as in a daemon: the count and the
  pauses of those collections (ms), which the CPU figures include.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import statistics
import subprocess
import time
from typing import Any

from aiohttp import web

from pingmon import server
from pingmon.errors import ErrorClass
from pingmon.metrics import Metrics
from pingmon.results import CheckResult, ResultStore, TargetInfo

PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


class Model:
    """The read model's ``exposition``, all ``server.metrics`` asks of it."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def exposition(self, openmetrics: bool, gzip: bool = False) -> tuple[bytes, ...]:
        return await self.metrics.exposition(openmetrics, gzip)


class Probe:
    """Heartbeat, collector pauses and the churn, while ``on``."""

    def __init__(self, churn: bool) -> None:
        self.churn = churn
        self.on = False
        self.turns: list[tuple[float, float]] = []  # (CPU, wall) between heartbeats
        self.pauses: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.on:
            self.pauses.append(time.perf_counter() - self._started)

    async def beat(self) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            if self.churn:
                for _ in range(300):  # reference cycles: freed by the collector only
                    cycle: list[object] = []
                    cycle.append(cycle)
            now_cpu, now_wall = time.thread_time(), time.perf_counter()
            if self.on:
                self.turns.append((now_cpu - cpu, now_wall - wall - 0.001))
            cpu, wall = now_cpu, now_wall


def record_all(store: ResultStore, infos: list[TargetInfo], round_: int) -> None:
    """A new result for every target: a new duration; one target in eight failing."""
    for i, info in enumerate(infos):
        failed = ErrorClass.TIMEOUT if i % 8 == 7 else ErrorClass.NONE
        duration = 0.0001 * ((i + round_) % 3000) + 1e-5 * round_
        store.record(CheckResult(info.name, "p", failed, 200, duration, 1, "", 1.7e9 + round_))


async def main_async(args: argparse.Namespace) -> None:
    infos = [TargetInfo(f"target-{i:05d}", "p", "http", 10.0, "c") for i in range(args.targets)]
    store = ResultStore()
    store.configure(infos)
    metrics = Metrics(store, dict, profile="default")
    app = web.Application()
    app[server.READ_MODEL] = Model(metrics)  # type: ignore[misc]
    app.router.add_get("/metrics", server.metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    headers = ["-H", f"Accept: {PROMETHEUS_ACCEPT}"]
    if not args.plain:
        headers += ["-H", "Accept-Encoding: gzip"]
    probe = Probe(args.churn)
    beat = asyncio.create_task(probe.beat())
    rows = []
    for round_ in range(args.rounds + 1):  # the first renders the templates: not counted
        record_all(store, infos, round_)
        gc.collect()
        await asyncio.sleep(0.2)
        probe.turns.clear()
        probe.pauses.clear()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        loop, process, wall = time.thread_time(), time.process_time(), time.perf_counter()
        probe.on = True
        curl = await asyncio.create_subprocess_exec(
            "curl", "-sf", "-o", "/dev/null", "-w", "%{size_download}", *headers,
            f"http://127.0.0.1:{port}/metrics", stdout=subprocess.PIPE,
        )  # fmt: skip
        out, _ = await curl.communicate()
        probe.on = False
        row = {
            "loop_ms": (time.thread_time() - loop) * 1e3,
            "cpu_ms": (time.process_time() - process) * 1e3,
            "wall_ms": (time.perf_counter() - wall) * 1e3,
            "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
            "longest_turn_cpu_ms": max(cpu for cpu, _ in probe.turns) * 1e3,
            "longest_turn_wall_ms": max(w for _, w in probe.turns) * 1e3,
            "collections": len(probe.pauses),
            "collection_ms": sum(probe.pauses) * 1e3,
            "bytes": int(out or 0),
        }
        if round_:
            rows.append(row)
    beat.cancel()
    await runner.cleanup()
    print(
        {k: round(statistics.median(r[k] for r in rows), 1) for k in rows[0]}
        | {"longest_turn_cpu_ms_max": round(max(r["longest_turn_cpu_ms"] for r in rows), 1)}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--plain", action="store_true", help="no Accept-Encoding: gzip")
    parser.add_argument("--churn", action="store_true", help="allocate as checks do")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
