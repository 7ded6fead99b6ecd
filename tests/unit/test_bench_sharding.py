"""bench/bench_sharding.py in a tiny smoke mode: it runs and prints its table's shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_sharding.py"


def test_the_sharding_simulation_prints_a_row_per_shard_count_for_each_distribution() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--targets", "300", "--credentials", "12",
         "--max-shards", "4", "--repeat", "1"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    for kind in ("zipf", "pareto", "dominant"):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{kind}: 300 targets"))
        rows = [line.split() for line in lines[start + 3 : start + 6]]
        assert [row[0] for row in rows] == ["2", "3", "4"]
        assert all(float(row[1]) >= 1.0 and float(row[2]) >= 1.0 for row in rows)
