"""CPU per check of the check's shell, layer by layer, in this process; run by hand.

    python bench/bench_shell.py                       # this build's pingmon
    /work/main/.venv/bin/python bench/bench_shell.py  # main's, with the same script
    python bench/bench_shell.py --python /work/main/.venv/bin/python --python .venv/bin/python

nginx (as in ``bench_percheck.py``) on 127.0.0.1 answers ``200 {"status":"ok"}``. On one
event loop (uvloop by default), ``--in-flight`` calls of one layer run at a time on keep-alive
connections, for ``--calls`` calls a batch; the layers take turns batch by batch, ``--batches``
times, and each batch's process CPU time (``time.process_time``) per call is kept:

- ``bare``: a plain ``aiohttp.ClientSession`` (``ClientTimeout(total=5)``, ``limit=0``), as
  ``bench_percheck.py``'s bare client: ``session.get`` + ``read`` + the status and JSON checked;
- ``session``: the same on pingmon's session (``daemon.new_session``) with the target's
  prepared request (its headers, ``allow_redirects=False``);
- ``send``: ``client.send`` (the time box, the keep-alive re-send, the bounded body read);
- ``run``: ``Runner.run`` (slots, attempts, judging, the result), what ``Daemon.check``
  awaits before recording.

It prints each layer's median and minimum µs per call and each layer above ``bare``. With
``--python`` (repeatable) it runs itself under each interpreter in turn, ``--rounds`` times,
and prints the medians side by side: a build against another, on the same nginx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import yaml
from bench_percheck import nginx

LAYERS = ("bare", "session", "send", "run")


def write_config(directory: Path, url: str, targets: int, timeout: float) -> Path:
    document = {
        "listen": "127.0.0.1:0",
        "defaults": {"interval": f"{max(2.0, 2 * timeout):g}s", "timeout": f"{timeout:g}s"},
        "providers": {"nginx": {"type": "http", "base_url": url}},
        "targets": [
            {
                "name": f"t{i:05d}",
                "provider": "nginx",
                "path": f"/t{i}",
                "expect": {"status": [200], "json": {"status": "ok"}},
            }
            for i in range(targets)
        ],
    }
    path = directory / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


async def batch(call: Callable[[int], Awaitable[object]], calls: int, in_flight: int) -> float:
    """CPU seconds per call for ``calls`` calls, ``in_flight`` at a time."""
    counter = iter(range(calls))

    async def worker() -> None:
        for index in counter:
            await call(index)

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return (time.process_time() - started) / calls


def expect_ok(status: int, body: bytes) -> bytes:
    """``body``, when the answer is nginx's ``200 {"status":"ok"}``; else RuntimeError."""
    if status != 200 or json.loads(body).get("status") != "ok":
        raise RuntimeError(f"unexpected answer: {status} {body[:100]!r}")
    return body


async def layers(url: str, args: argparse.Namespace, directory: Path) -> dict[str, list[float]]:
    from pingmon.backoff import RateLimitGate
    from pingmon.client import send
    from pingmon.config import load_config
    from pingmon.daemon import new_sessions
    from pingmon.heap import settle
    from pingmon.runner import Runner, build_plans
    from pingmon.timebox import Deadlines

    config = load_config(write_config(directory, url, args.targets, args.timeout))
    plans = list(build_plans(config).values())
    requests = [plan.provider.request(plan.target.params, "x") for plan in plans]
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    bare = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0))
    sessions = new_sessions()
    runner = Runner(sessions, RateLimitGate(config.settings.backoff), args.in_flight * 2)
    deadlines = Deadlines()
    count = len(plans)

    async def bare_call(index: int) -> object:
        async with bare.get(f"{url}/t{index % count}", allow_redirects=False) as response:
            body = await response.read()
        return expect_ok(response.status, body)

    async def session_call(index: int) -> object:
        request = requests[index % count]
        async with sessions.pooled.request(
            request.method, request.url, headers=request.headers, allow_redirects=False
        ) as response:
            body = await response.read()
        return expect_ok(response.status, body)

    async def send_call(index: int) -> object:
        plan = plans[index % count]
        response = await send(
            sessions,
            requests[index % count],
            timeout=args.timeout,
            max_body_bytes=65536,
            transport=plan.transport,
            url=plan.url(requests[index % count].url),
            deadlines=deadlines,
        )
        return expect_ok(response.status, response.body)

    async def run_call(index: int) -> object:
        result = await runner.run(plans[index % count])
        if result is None or not result.success:
            raise RuntimeError(f"a check failed: {result}")
        return result

    calls = {"bare": bare_call, "session": session_call, "send": send_call, "run": run_call}
    figures: dict[str, list[float]] = {name: [] for name in LAYERS}
    try:
        for name in args.only or LAYERS:  # warm-up: connections opened, caches filled
            await batch(calls[name], args.calls, args.in_flight)
        settle()  # the daemon's collector settings, as after its start
        profiler = None
        if args.count:  # exactly this many calls of each layer, untimed (for cachegrind)
            for name in args.only or LAYERS:
                await batch(calls[name], args.count, args.in_flight)
            return figures
        if args.cprofile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        order = list(args.only or LAYERS)
        for _ in range(args.batches):
            random.shuffle(order)
            for name in order:
                figures[name].append(await batch(calls[name], args.calls, args.in_flight))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
    finally:
        await bare.close()
        await sessions.close()
    return figures


def measure(args: argparse.Namespace) -> dict[str, float]:
    """Median µs per call of each layer, this process's pingmon."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if args.url:
            url = args.url
            figures = run_loop(args, url, directory)
        else:
            with nginx(directory) as (url, _):
                figures = run_loop(args, url, directory)
    kept = {name: values for name, values in figures.items() if values}
    return {name: statistics.median(values) * 1e6 for name, values in kept.items()} | {
        f"{name} min": min(values) * 1e6 for name, values in kept.items()
    }


def run_loop(args: argparse.Namespace, url: str, directory: Path) -> dict[str, list[float]]:
    if args.loop == "uvloop":
        import uvloop

        return uvloop.run(layers(url, args, directory))
    return asyncio.run(layers(url, args, directory))


def print_figures(label: str, figures: dict[str, float]) -> None:
    print(f"{label}")
    for name in LAYERS:
        if name not in figures:
            continue
        above = figures[name] - figures.get("bare", math.nan)
        print(
            f"  {name:8} {figures[name]:7.1f} µs/call median, {figures[f'{name} min']:7.1f} min,"
            f" {above:+7.1f} over bare"
        )


def compare(args: argparse.Namespace) -> None:
    """Each ``--python`` in turn, ``--rounds`` times, on one nginx; medians side by side."""
    results: dict[str, list[dict[str, float]]] = {python: [] for python in args.python}
    with tempfile.TemporaryDirectory() as tmp, nginx(Path(tmp)) as (url, _):
        for _ in range(args.rounds):
            for python in args.python:
                command = [python, __file__, "--json", "--url", url, "--loop", args.loop]
                for option in ("calls", "batches", "in_flight", "targets"):
                    command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
                out = subprocess.run(command, check=True, capture_output=True, text=True)
                figures = json.loads(out.stdout)
                results[python].append(figures)
                print_figures(python, figures)
    print("\nmedians over rounds (µs per call; over bare in brackets)")
    for python, rounds in results.items():
        medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        cells = [
            f"{name} {medians[name]:.1f} ({medians[name] - medians['bare']:+.1f})"
            for name in LAYERS
        ]
        print(f"  {python}: " + ", ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--calls", type=int, default=400, help="calls per batch")
    parser.add_argument("--batches", type=int, default=15, help="batches per layer")
    parser.add_argument("--in-flight", type=int, default=32, help="calls at a time")
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds, every layer's")
    parser.add_argument("--only", action="append", choices=LAYERS, help="only these layers")
    parser.add_argument("--count", type=int, help="only COUNT calls a layer, untimed")
    parser.add_argument("--cprofile", metavar="OUT", help="cProfile the batches into OUT")
    parser.add_argument("--python", action="append", default=[], help="an interpreter to compare")
    parser.add_argument("--rounds", type=int, default=3, help="with --python")
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.python:
        compare(args)
        return 0
    figures = measure(args)
    if args.count:
        return 0
    if args.json:
        print(json.dumps(figures))
    else:
        print_figures(f"pingmon from {sys.executable}", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
