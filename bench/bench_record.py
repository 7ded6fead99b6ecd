"""CPU per recorded result, in this process: ``ResultStore.record`` with the metrics watching
the store (both profiles), and the bare store, over N targets in the steady state (every
target has results already).

Run it with each build's Python, side by side, to compare a branch with main::

    /work/main/.venv/bin/python bench/bench_record.py
    .venv/bin/python bench/bench_record.py

(a script's directory comes first on ``sys.path``, so each imports its own venv's pingmon).
Prints one JSON line: µs per record, the min of ``--rounds`` runs, and the watched cost less
the bare one (what the metrics add to a check).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Sequence

import pingmon
from pingmon.errors import ErrorClass
from pingmon.metrics import Metrics
from pingmon.results import CheckResult, ResultStore, TargetInfo


def results(targets: int, records: int, failures: float, seed: int = 1) -> list[CheckResult]:
    """Realistic results: durations with a full float's digits (most under 50 ms), wall-clock
    timestamps, ``failures`` of them timeouts; the targets in a shuffled round robin."""
    rng = random.Random(seed)
    now = 1.764e9 + rng.random()
    made = []
    for i in range(records):
        failed = rng.random() < failures
        name = f"target-{i % targets:06d}"
        made.append(
            CheckResult(
                name,
                "loop",
                ErrorClass.TIMEOUT if failed else ErrorClass.NONE,
                None if failed else 200,
                rng.expovariate(1 / 0.03),
                1,
                "timed out" if failed else "",
                now + i * 0.0004 + rng.random() * 1e-4,
            )
        )
    return made


def cost(infos: Sequence[TargetInfo], batch: Sequence[CheckResult], profile: str | None) -> float:
    """CPU-µs per ``store.record`` of the batch (after one warm-up pass over it)."""
    store = ResultStore()
    store.configure(list(infos))
    if profile is not None:
        Metrics(store, dict, profile=profile)
    for result in batch:
        store.record(result)
    gc.collect()
    started = time.process_time()
    for result in batch:
        store.record(result)
    return (time.process_time() - started) / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--failures", type=float, default=0.02, help="share of timeouts")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    infos = [TargetInfo(f"target-{i:06d}", "loop", "http", 10.0, "c") for i in range(args.targets)]
    batch = results(args.targets, args.records, args.failures)
    row: dict[str, object] = {"pingmon": str(pingmon.__file__).rsplit("/", 2)[0]}
    for name, profile in (("bare", None), ("default", "default"), ("lean", "lean")):
        row[name] = round(min(cost(infos, batch, profile) for _ in range(args.rounds)), 2)
    for name in ("default", "lean"):
        row[f"{name}_over_bare"] = round(float(row[name]) - float(row["bare"]), 2)  # type: ignore[arg-type]
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
