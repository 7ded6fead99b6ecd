"""CPU per check of `pingmon run`, beside a bare aiohttp client at the same rate; run by hand.

    python bench/bench_percheck.py --pingmon .venv/bin/pingmon
    python bench/bench_percheck.py --pingmon /work/main/.venv/bin/pingmon \
        --pingmon .venv/bin/pingmon --rounds 3
    python bench/bench_percheck.py --pingmon .venv/bin/pingmon --profile flame.svg

nginx (Debian ``nginx-light``; one worker, keep-alive, ``200 {"status":"ok"}``) listens on
127.0.0.1 and logs every request it answers (``$msec $status``). In each round, every variant
runs in turn as a child process, on the same target, for a warm-up and then a window:

- each ``--pingmon`` executable: ``pingmon run`` with ``rate * interval`` ``http`` targets
  (``expect: {status: [200], json: {status: ok}}``), once for each ``--loop`` (the
  ``PINGMON_EVENT_LOOP`` setting; a build without the switch ignores it and says nothing);
- the bare client (this script with ``--bare-client``), once on asyncio and once on uvloop
  (``--bare``): one aiohttp ``ClientSession`` with keep-alive connections sends the same GETs
  at the same rate, reads each body and checks its status and JSON, nothing else.

Each variant's CPU is its process's user + system time from ``/proc/PID/stat`` (all threads)
over the window; its checks are the requests nginx logged within the window, so nothing is
asked of the process while it is measured. It prints, per round and variant, checks/s and
CPU µs per check, then the medians and pingmon's overhead over the bare client on the same
loop. ``--profile OUT.svg`` instead records the first pingmon variant with py-spy over the
window (a flame graph), then over a second window as collapsed stacks (``OUT.txt``).
Every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from processes import cpu_seconds, free_port

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    client_body_temp_path {dir}/tmp;
    log_format stamp '$msec $status';
    access_log {dir}/access.log stamp;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{{"status":"ok"}}';
        }}
    }}
}}
"""


# --- the bare client (a child process) --------------------------------------------------


async def bare_client(url: str, targets: int, rate: float) -> None:
    """GET ``url/t<i>`` for i in turn at ``rate`` per second on one keep-alive session, until
    SIGTERM; then print ``{"sent", "failed"}``. A 10 ms tick starts the requests due."""
    import aiohttp

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    counts = {"sent": 0, "failed": 0}
    pending: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=5)
    connector = aiohttp.TCPConnector(limit=0)

    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def one(index: int) -> None:
            try:
                async with session.get(f"{url}/t{index}", allow_redirects=False) as response:
                    body = await response.read()
                ok = response.status == 200 and json.loads(body).get("status") == "ok"
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                ok = False
            counts["failed"] += not ok

        started = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate) - counts["sent"]
            for _ in range(due):
                task = asyncio.create_task(one(counts["sent"] % targets))
                pending.add(task)
                task.add_done_callback(pending.discard)
                counts["sent"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.01)
        if pending:
            await asyncio.wait(pending, timeout=5)
    print(json.dumps(counts), flush=True)


def run_bare_client(args: argparse.Namespace) -> int:
    if args.bare_client == "uvloop":
        import uvloop

        uvloop.run(bare_client(args.url, args.targets, args.rate))
    else:
        asyncio.run(bare_client(args.url, args.targets, args.rate))
    return 0


# --- processes --------------------------------------------------------------------------


NICENESS = 0  # --nice: every child runs at it, so that a shared machine serves it first


def niced() -> None:
    """In a child before it runs: take ``--nice``'s niceness."""
    os.setpriority(os.PRIO_PROCESS, 0, NICENESS)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def nginx(directory: Path) -> Iterator[tuple[str, Path]]:
    """A running nginx: its base URL and its access log."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        sys.exit("nginx not found: apt-get install -y nginx-light")
    port = free_port()
    (directory / "tmp").mkdir(exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, port=port), encoding="utf-8")
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(directory), "-e", str(directory / "nginx-error.log")],
        stdin=subprocess.DEVNULL,
        preexec_fn=niced,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/ready", proc)
        yield f"http://127.0.0.1:{port}", directory / "access.log"
    finally:
        stop_process(proc)


def wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!s} exited {proc.returncode}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200")


def write_config(directory: Path, url: str, args: argparse.Namespace, port: int) -> Path:
    """``rate * interval`` http targets on nginx; JSON is YAML."""
    config = {
        "listen": f"127.0.0.1:{port}",
        "watch": {"enabled": False},
        "defaults": {"interval": f"{args.interval}s", "timeout": "1s"},
        "providers": {"nginx": {"type": "http", "base_url": url}},
        "targets": [
            {
                "name": f"t{i:05d}",
                "provider": "nginx",
                "path": f"/t{i}",
                "expect": {"status": [200], "json": {"status": "ok"}},
            }
            for i in range(targets_of(args))
        ],
    }
    path = directory / "pingmon.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def targets_of(args: argparse.Namespace) -> int:
    return round(float(args.rate) * float(args.interval))


# --- variants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    label: str
    command: tuple[str, ...]
    env: dict[str, str]
    pingmon: bool


@dataclass
class Figures:
    label: str
    loop: str
    checks_per_second: float
    cpu_us_per_check: float
    cpu_percent: float
    failed: int


def variants(args: argparse.Namespace, config: Path, url: str) -> list[Variant]:
    found: list[Variant] = []
    for executable in args.pingmon:
        build = Path(executable).resolve().parent.parent.parent.name or executable
        for loop in args.loop:
            env = {} if loop == "default" else {"PINGMON_EVENT_LOOP": loop}
            found.append(
                Variant(
                    f"pingmon[{build}]",
                    (executable, "run", "--config", str(config)),
                    env,
                    pingmon=True,
                )
            )
    for loop in args.bare:
        command = (sys.executable, __file__, "--bare-client", loop, "--url", url)
        rate = ("--rate", str(args.rate), "--targets", str(targets_of(args)))
        found.append(Variant("bare aiohttp", (*command, *rate), {}, pingmon=False))
    return found


def logged_requests(log: Path, start: float, end: float) -> tuple[int, int]:
    """Requests nginx answered within [start, end) (wall clock), and those not 200."""
    count = failed = 0
    with log.open(encoding="ascii") as lines:
        for line in lines:
            stamp, _, status = line.partition(" ")
            if start <= float(stamp) < end:
                count += 1
                failed += status.strip() != "200"
    return count, failed


def event_loop_of(stderr: Path) -> str:
    """The loop the daemon says it runs on (its start log line), else asyncio."""
    for line in stderr.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and "event_loop" in record:
                return str(record["event_loop"])
    return "asyncio (no switch)"


def measure(
    variant: Variant, args: argparse.Namespace, access_log: Path, directory: Path
) -> Figures:
    stderr = directory / "variant.stderr"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            variant.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, **variant.env},
            preexec_fn=niced,
        )
    try:
        if variant.pingmon:
            wait_for(f"http://127.0.0.1:{args.listen_port}/-/ready", proc)
        time.sleep(args.warmup)
        cpu, wall = cpu_seconds(proc.pid), time.time()
        time.sleep(args.window)
        cpu, start, end = cpu_seconds(proc.pid) - cpu, wall, time.time()
    finally:
        stop_process(proc)
    checks, failed = logged_requests(access_log, start, end)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if variant.pingmon:
        loop = event_loop_of(stderr)
    else:
        loop = variant.command[3]
        failed += json.loads(out.splitlines()[-1])["failed"] if out.strip() else 0
    return Figures(
        variant.label,
        loop,
        round(checks / (end - start), 1),
        round(cpu / checks * 1e6, 1) if checks else float("nan"),
        round(cpu / (end - start) * 100, 1),
        failed,
    )


def profile(variant: Variant, args: argparse.Namespace, out: str, directory: Path) -> None:
    """Record ``variant`` with py-spy over the window (after the warm-up)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with (directory / "variant.stderr").open("wb") as err:
        proc = subprocess.Popen(
            variant.command,
            stdin=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **variant.env},
            preexec_fn=niced,
        )
    try:
        wait_for(f"http://127.0.0.1:{args.listen_port}/-/ready", proc)
        time.sleep(args.warmup)
        for path, kind in ((out, "flamegraph"), (f"{out.removesuffix('.svg')}.txt", "raw")):
            record = ["record", "-o", path, "-f", kind, "--pid", str(proc.pid), "-r", "200"]
            if args.native:
                record.append("--native")
            subprocess.run([spy, *record, "--duration", str(round(args.window))], check=True)
    finally:
        stop_process(proc)
    print(f"{variant.label} ({event_loop_of(directory / 'variant.stderr')}): {out}")


# --- report -----------------------------------------------------------------------------


def report(rounds: list[list[Figures]]) -> None:
    print(f"\n{'variant':38} {'loop':22} {'checks/s':>9} {'CPU µs/check':>13} {'CPU %':>6}")
    keys = list(dict.fromkeys((f.label, f.loop) for figures in rounds for f in figures))
    medians: dict[tuple[str, str], float] = {}
    for key in keys:
        runs = [f for figures in rounds for f in figures if (f.label, f.loop) == key]
        medians[key] = statistics.median(f.cpu_us_per_check for f in runs)
        rate = statistics.median(f.checks_per_second for f in runs)
        cpu = statistics.median(f.cpu_percent for f in runs)
        print(f"{key[0]:38} {key[1]:22} {rate:9.1f} {medians[key]:13.1f} {cpu:6.1f}")
    bare = {loop: value for (label, loop), value in medians.items() if label == "bare aiohttp"}
    for (label, loop), value in medians.items():
        reference = bare.get(loop.split(" ")[0])
        if label != "bare aiohttp" and reference:
            print(
                f"{label} on {loop}: overhead over bare {loop.split(' ')[0]} "
                f"{value - reference:+.1f} µs/check (x{value / reference:.2f})"
            )


def main() -> int:
    args = parse_args()
    if args.bare_client:
        return run_bare_client(args)
    args.pingmon = args.pingmon or [str(Path(sys.executable).parent / "pingmon")]
    global NICENESS
    NICENESS = args.nice
    with (
        tempfile.TemporaryDirectory(prefix="pingmon-percheck-") as tmp,
        nginx(Path(tmp)) as (
            url,
            access_log,
        ),
    ):
        directory = Path(tmp)
        args.listen_port = free_port()
        config = write_config(directory, url, args, args.listen_port)
        found = variants(args, config, url)
        print(f"{targets_of(args)} targets every {args.interval} s on {url}: {args.rate}/s")
        if args.profile:
            profile(found[0], args, args.profile, directory)
            return 0
        rounds: list[list[Figures]] = []
        for number in range(1, args.rounds + 1):
            figures = []
            for variant in found:
                result = measure(variant, args, access_log, directory)
                figures.append(result)
                print(f"round {number}: {json.dumps(result.__dict__, ensure_ascii=False)}")
            rounds.append(figures)
        report(rounds)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pingmon", action="append", default=[], help="a pingmon executable")
    parser.add_argument("--loop", action="append", default=[], help="default|asyncio|uvloop")
    parser.add_argument("--bare", default="asyncio,uvloop", help="bare client loops, or ''")
    parser.add_argument("--rate", type=float, default=500.0, help="checks per second")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds, per target")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after ready")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nice", type=int, default=0, help="niceness of every child (root: <0)")
    parser.add_argument("--profile", metavar="OUT.svg", help="py-spy the first pingmon variant")
    parser.add_argument(
        "--native", action="store_true", help="with --profile: C and Cython frames too (uvloop's)"
    )
    parser.add_argument("--bare-client", choices=("asyncio", "uvloop"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--targets", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.loop = args.loop or ["default"]
    args.bare = [loop for loop in args.bare.split(",") if loop]
    return args


if __name__ == "__main__":
    sys.exit(main())
