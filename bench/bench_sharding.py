"""Simulated sharding at internet scale: balance, resize movement and cost; run by hand.

    python bench/bench_sharding.py                       # 100,000 targets, 2..16 shards
    python bench/bench_sharding.py --targets 500 --credentials 20 --max-shards 4   # smoke

Assigns ``--targets`` targets, one credential each, over a few hundred credentials whose
target counts are long-tailed (seeded, so every run prints the same balance figures), with
``pingmon.sharding.assign`` (the function the daemon runs), for every shard count from 2 to
``--max-shards``, by credential and by target. For each it prints:

- the load per shard as the largest shard's targets over the mean (1.00 is perfect);
- the share of targets moved by the resize from N-1 to N shards (the ideal is 1/N);
- the time to compute the whole assignment: CPU time of this process (best of ``--repeat``;
  one core; CPU rather than wall time, so that other work on the machine does not count);
- by target: how many credentials are split between shards (their rate_limit is split).

Distributions (``--credentials`` credentials):

- ``zipf``: credential k (from 1) holds targets in proportion to 1/k (Zipf, s = 1);
- ``pareto``: counts drawn from a Pareto law with alpha = 1.16 (the "80/20" tail), seeded;
- ``dominant``: one credential holds half of the targets (an integrator's own PBX account),
  the rest spread as ``zipf``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence

from pingmon.sharding import Assignment, Placed, ShardBy, assign

Weights = Callable[[int, random.Random], list[float]]


def zipf(credentials: int, rng: random.Random) -> list[float]:
    return [1.0 / rank for rank in range(1, credentials + 1)]


def pareto(credentials: int, rng: random.Random) -> list[float]:
    return sorted((rng.paretovariate(1.16) for _ in range(credentials)), reverse=True)


def dominant(credentials: int, rng: random.Random) -> list[float]:
    rest = zipf(credentials - 1, rng)
    return [sum(rest), *rest]  # the first holds as many as all the others together


DISTRIBUTIONS: dict[str, Weights] = {"zipf": zipf, "pareto": pareto, "dominant": dominant}


def counts_from(weights: Sequence[float], total: int) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder), at least 1 each."""
    scale = sum(weights)
    exact = [max(1.0, total * w / scale) for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: max(0, total - sum(counts))]:
        counts[i] += 1
    while sum(counts) > total:  # the floor of 1 may overshoot a little: trim the largest
        counts[counts.index(max(counts))] -= 1
    return counts


def fleet(kind: str, targets: int, credentials: int, seed: int) -> list[Placed]:
    """``targets`` targets over ``credentials`` credential keys (16 hex digits, as
    ``credential_key()`` makes them), long-tailed as ``kind`` says."""
    rng = random.Random(seed)
    counts = counts_from(DISTRIBUTIONS[kind](credentials, rng), targets)
    placed: list[Placed] = []
    for count in counts:
        key = f"{rng.getrandbits(64):016x}"
        placed += [Placed(f"t{len(placed) + i}", key) for i in range(count)]
    return placed


def balance(assignment: Assignment) -> float:
    counts = assignment.targets_per_shard
    return max(counts) * len(counts) / sum(counts)


def moved(before: Assignment, after: Assignment) -> float:
    old, new = before.shard_by_target, after.shard_by_target
    return sum(1 for name in old if old[name] != new[name]) / len(old)


def timed(
    targets: list[Placed], shards: int, by: ShardBy, repeat: int
) -> tuple[Assignment, float]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.process_time()
        result = assign(targets, shards, by)
        best = min(best, time.process_time() - start)
    assert result is not None
    return result, best


def report(kind: str, targets: list[Placed], max_shards: int, repeat: int) -> None:
    sizes: dict[str, int] = {}
    for target in targets:
        sizes[target.credential] = sizes.get(target.credential, 0) + 1
    largest = max(sizes.values())
    print(
        f"\n{kind}: {len(targets):,} targets, {len(sizes)} credentials; the largest holds "
        f"{largest:,} ({100 * largest / len(targets):.1f} %), the median "
        f"{sorted(sizes.values())[len(sizes) // 2]}"
    )
    print(
        f"{'':>6}  {'max/mean':^19}  {'moved':^25}  {'ms':^16}\n"
        f"{'shards':>6}  {'by cred':>9} {'by target':>9}  {'by cred':>8} {'by target':>9} "
        f"{'ideal':>6}  {'by cred':>6} {'by target':>9}  {'split creds':>11}"
    )
    previous: dict[ShardBy, Assignment] = {}
    for shards in range(1, max_shards + 1):
        row: dict[ShardBy, tuple[Assignment, float]] = {
            by: timed(targets, shards, by, repeat) for by in ShardBy
        }
        if shards > 1:
            cred, tgt = row[ShardBy.CREDENTIAL][0], row[ShardBy.TARGET][0]
            split = sum(1 for ways in tgt.spread.values() if ways > 1)
            print(
                f"{shards:>6}  {balance(cred):>9.2f} {balance(tgt):>9.2f}  "
                f"{100 * moved(previous[ShardBy.CREDENTIAL], cred):>7.1f}% "
                f"{100 * moved(previous[ShardBy.TARGET], tgt):>8.1f}% {100 / shards:>5.1f}%  "
                f"{1000 * row[ShardBy.CREDENTIAL][1]:>7.1f} {1000 * row[ShardBy.TARGET][1]:>9.1f}"
                f"  {split:>11}"
            )
        previous = {by: row[by][0] for by in ShardBy}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--credentials", type=int, default=300)
    parser.add_argument("--max-shards", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2, help="timing: best of this many")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--distribution", choices=sorted(DISTRIBUTIONS), action="append")
    args = parser.parse_args(argv)
    print(
        "max/mean: targets of the largest shard over the mean (by credential, by target); "
        "moved: targets that change shard going from N-1 to N shards (ideal 1/N); ms: CPU "
        "time to compute the whole assignment; split creds: credentials whose targets (and "
        "rate_limit) are split between shards by target"
    )
    for kind in args.distribution or list(DISTRIBUTIONS):
        targets = fleet(kind, args.targets, args.credentials, args.seed)
        report(kind, targets, args.max_shards, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
