"""Instructions per recorded and judged result, counted by valgrind's cachegrind: a figure
that does not move with the load of a shared machine, for a build against another.

    python bench/record_instructions.py --python /work/main/.venv/bin/python \
        --python .venv/bin/python

For each ``--python`` (each imports its own venv's pingmon: this script's directory comes
first on ``sys.path``, and it runs itself as the child) and each part, two runs under
``valgrind --tool=cachegrind --cache-sim=no``: one that makes the inputs and does a warm pass
over them, one that then does ``--records`` more; the difference over ``--records`` is the
part's instructions per result. Parts:

- ``bare``, ``default``, ``lean``: ``ResultStore.record`` (``bench_record.results``, 5,000
  targets, 2 % timeouts), bare and with each metrics profile's exposition watching the store;
- ``daemon``: ``Daemon._record`` of the same results (default profile, nothing scheduled);
- ``lag``: the scheduler lag histogram's ``observe`` of a realistic lag;
- ``judge``: ``HttpProvider.assess`` of a ``200 {"status":"ok"}`` answer expected to hold
  ``{"status": "ok"}`` (what bench_percheck.py's targets ask);
- ``result``: making a ``CheckResult``.

Prints one JSON line per build: instructions per result, by part.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pingmon.results import CheckResult

PARTS = ("bare", "default", "lean", "daemon", "lag", "judge", "result")
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _work(part: str, records: int) -> Callable[[], object]:
    """The part's inputs made and warmed; the returned call does ``records`` more."""
    from bench_record import results

    from pingmon.results import CheckResult, ResultStore, TargetInfo

    targets = 5000
    infos = [TargetInfo(f"target-{i:06d}", "loop", "http", 10.0, "c") for i in range(targets)]
    batch = results(targets, max(records, targets), 0.02)[: max(records, 1)]
    if part in ("bare", "default", "lean"):
        from pingmon.metrics import Metrics

        store = ResultStore()
        store.configure(infos)
        if part != "bare":
            Metrics(store, dict, profile=part)
        for result in results(targets, targets, 0.02, seed=2):
            store.record(result)
        return lambda: [store.record(result) for result in batch]
    if part == "daemon":
        return _daemon(targets, batch)
    if part == "lag":
        from pingmon.metrics import Metrics

        observe = Metrics(ResultStore(), dict).scheduler_lag.observe
        lags = [(i % 97) * 0.0001 for i in range(records)]
        return lambda: [observe(lag) for lag in lags]
    if part == "judge":
        return _judge(records)
    made = [(r.target, r.error_class, r.duration_seconds, r.finished_at) for r in batch]
    return lambda: [CheckResult(t, "loop", e, 200, d, 1, "", f) for t, e, d, f in made]


def _daemon(targets: int, batch: list[CheckResult]) -> Callable[[], object]:
    import tempfile

    from bench_record import results

    from pingmon.config import load_config
    from pingmon.daemon import Daemon, prepare

    lines = ["providers:", "  loop: {type: http, base_url: 'http://127.0.0.1:9'}", "targets:"]
    lines += [f"  - {{name: target-{i:06d}, provider: loop}}" for i in range(targets)]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        file.write("\n".join(lines))
        file.flush()
        daemon = Daemon(load_config(file.name))
    daemon._commit(prepare(daemon.config))  # what start adopts, without the timers
    record: Callable[[CheckResult], object] = daemon._record
    for result in results(targets, targets, 0.02, seed=2):
        record(result)
    return lambda: [record(result) for result in batch]


def _judge(records: int) -> Callable[[], object]:
    from pingmon.providers.base import HttpResponse
    from pingmon.providers.http import HttpParams, HttpProvider, HttpSettings

    provider = HttpProvider(HttpSettings(base_url="http://127.0.0.1:9"))
    params = HttpParams.model_validate({"expect": {"json": {"status": "ok"}}})
    request = provider.request(params, "")
    response = HttpResponse(200, {"Content-Type": "application/json"}, b'{"status":"ok"}')
    assert provider.assess(params, request, response).success
    return lambda: [provider.assess(params, request, response) for _ in range(records)]


def child(part: str, records: int, run: bool) -> None:
    quiet = logging.getLogger("pingmon")  # the daemon's transitions: made, not printed
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    work = _work(part, records)
    if run:
        work()


def instructions(python: str, part: str, records: int) -> float:
    """Instructions per result of ``part`` in ``python``'s build."""
    counts = []
    for run in (False, True):
        command = [
            "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
            python, __file__, "--child", part, "--records", str(records),
        ]  # fmt: skip
        if run:
            command.append("--run")
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        found = _REFS.search(done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count from valgrind: {done.stderr[-500:]}")
        counts.append(int(found.group(1).replace(",", "")))
    return (counts[1] - counts[0]) / records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", default=[], help="a build's python")
    parser.add_argument("--part", action="append", choices=PARTS, help="default: all")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.records, args.run)
        return
    for python in args.python or [sys.executable]:
        row: dict[str, object] = {"python": python}
        for part in args.part or PARTS:
            row[part] = round(instructions(python, part, args.records))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
