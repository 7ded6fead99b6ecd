"""The benchmarks' pure parts: what they read from /metrics, and the configurations they write.

No benchmark runs here (nor nginx, nor blackbox_exporter): timings are never asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from pingmon.config import load_config
from pingmon.loading import MAX_FILE_BYTES

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_daemon
import exposition

EXPOSITION = """\
# HELP pingmon_checks_total Checks by error class (none = success).
# TYPE pingmon_checks_total counter
pingmon_checks_total{target="a",provider="p",error_class="none"} 10.0
pingmon_checks_total{target="a",provider="p",error_class="timeout"} 2.0
pingmon_checks_total{target="b",provider="p",error_class="none"} 5.0
pingmon_scheduler_lag_seconds_bucket{le="0.01"} 90.0
pingmon_scheduler_lag_seconds_bucket{le="0.05"} 99.0
pingmon_scheduler_lag_seconds_bucket{le="+Inf"} 100.0
pingmon_up 1.0
# EOF
"""


def test_reading_sums_checks_over_targets_and_counts_failures_apart() -> None:
    reading = exposition.read(EXPOSITION)

    assert reading.checks == 17
    assert reading.failures == 2
    assert reading.checks_by_class == {"none": 15.0, "timeout": 2.0}


def test_reading_counts_sample_lines_and_those_of_targets() -> None:
    reading = exposition.read(EXPOSITION)

    assert (reading.series, reading.target_series) == (7, 3)


def test_lag_quantile_interpolates_within_the_bucket_of_the_window_deltas() -> None:
    before = {0.01: 50.0, 0.05: 50.0, float("inf"): 50.0}
    after = exposition.read(EXPOSITION).lag_buckets

    # 50 observations in the window: 40 up to 10 ms, 9 in (10, 50] ms, 1 above.
    assert exposition.lag_quantile(before, after, 0.5) == pytest.approx(0.01 * 25 / 40)
    assert exposition.lag_quantile(before, after, 0.9) == pytest.approx(0.01 + 0.04 * 5 / 9)
    assert exposition.share_above(before, after, 0.05) == pytest.approx(1 / 50)
    assert exposition.lag_quantile(after, after, 0.99) is None


def bench_args() -> argparse.Namespace:
    return bench_daemon.parse_args([])


def test_scale_config_loads_with_every_target_on_the_server(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    bench_daemon.write_config(200, 10.0, None, "http://127.0.0.1:9", bench_args(), path)

    config = load_config(path)

    assert [t.name for t in config.targets] == [f"t{i:06d}" for i in range(200)]


def test_config_of_100000_targets_fits_pingmons_file_limit(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    bench_daemon.write_config(100_000, 60.0, "lean", "http://127.0.0.1:9", bench_args(), path)

    assert path.stat().st_size < MAX_FILE_BYTES
    assert '"metrics":{"profile":"lean"}' in path.read_text(encoding="utf-8")
