"""The benchmarks' pure parts: what they read from /metrics, and the configurations they write.

No benchmark runs here (nor nginx, nor blackbox_exporter): timings are never asserted.
"""

from __future__ import annotations

import argparse
import mmap
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from pingmon.config import Settings, load_config
from pingmon.loading import MAX_FILE_BYTES

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_ceiling
import bench_daemon
import exposition
import lag_probe
import processes
import vs_blackbox
import wakeup_cost

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


def scrape_at(
    ended: float, wall: float, cpu_gross: float, cpu_at_end: float, checks: float
) -> bench_daemon.Scrape:
    """A scrape ending at ``ended`` (s) that saw ``checks`` checks in all."""
    reading = exposition.Reading({"none": checks}, {float("inf"): checks}, 0, 0)
    cpu_at_start = cpu_at_end - cpu_gross
    return bench_daemon.Scrape(
        ended - wall, ended, cpu_gross, cpu_at_end, cpu_at_start, 0, 0, "gzip", reading
    )


def test_scrape_cpu_is_what_the_scrape_added_above_the_windows_baseline() -> None:
    # 10 s window, 1 s scrape that took 0.6 s of CPU; 9 s outside at 0.2 CPU-s/s.
    scrapes = [scrape_at(0.0, 0.0, 0.0, 0.0, 0), scrape_at(10.0, 1.0, 0.6, 2.4, 1000)]

    found = bench_daemon.figures(100, 1.0, scrapes, 50.0, 60.0, 1.0)

    assert found["scrape_cpu_ms_net_median"] == pytest.approx(400.0)
    # Checks are counted from one scrape's sending to the last's: 9 s at 0.2 CPU-s/s.
    assert found["cpu_us_per_check"] == pytest.approx(1800.0)
    assert found["cpu_us_per_check_without_scrapes"] == pytest.approx(1800.0)


def test_checks_per_second_run_between_the_scrapes_sending_not_their_ends() -> None:
    # The daemon takes a scrape's counts when it reads the request: a last scrape that
    # takes 8 s to arrive must not stretch the time the checks were counted over.
    scrapes = [scrape_at(0.0, 0.0, 0.0, 0.0, 0), scrape_at(18.0, 8.0, 8.0, 10.0, 1000)]

    found = bench_daemon.figures(100, 1.0, scrapes, 50.0, 60.0, 1.0)

    assert found["checks_per_second"] == pytest.approx(100.0)
    assert found["cpu_percent"] == pytest.approx(20.0)


def test_scrape_cpu_has_no_net_figure_when_scrapes_fill_the_window() -> None:
    scrapes = [scrape_at(0.0, 0.1, 0.0, 0.0, 0), scrape_at(10.0, 9.0, 3.0, 3.2, 1000)]

    found = bench_daemon.figures(100, 1.0, scrapes, 50.0, 60.0, 1.0)

    assert found["scrape_cpu_ms_net_median"] is None
    assert found["scrape_wall_ms_median"] == pytest.approx(9000.0)


def test_ceiling_cpu_per_check_is_the_core_share_over_the_rate_reached() -> None:
    reach = bench_ceiling.Reach("aiohttp-uvloop", checks_per_second=2000.0, core_share=0.99)

    assert reach.cpu_us_per_check == pytest.approx(495.0)
    assert bench_ceiling.Reach("x", 0.0, 0.5).cpu_us_per_check is None


def test_ceiling_medians_are_taken_per_variant_over_rounds() -> None:
    rounds = [
        [bench_ceiling.Reach("a", 100.0, 0.5, 1.0, 9.0), bench_ceiling.Reach("b", 10.0, 1.0)],
        [bench_ceiling.Reach("a", 300.0, 0.7, 3.0, None), bench_ceiling.Reach("b", 30.0, 1.0)],
    ]

    medians = {r.variant: r for r in bench_ceiling.median_of(rounds)}

    assert medians["a"].checks_per_second == pytest.approx(200.0)
    assert medians["a"].lag_p99_ms == pytest.approx(9.0)
    assert medians["b"].lag_p50_ms is None


def test_ceiling_pins_the_measured_process_to_its_own_core() -> None:
    argv = bench_ceiling.pinned(["pingmon", "run"])

    assert argv == ["taskset", "-c", str(bench_ceiling.MEASURED_CPU), "pingmon", "run"]
    assert bench_ceiling.MEASURED_CPU != bench_ceiling.TARGET_CPU


def test_vs_blackbox_runs_the_floor_of_a_scheduled_check_unless_told_not_to() -> None:
    def names(*argv: str) -> list[str]:
        return [name for name, _ in vs_blackbox.variants(vs_blackbox.parse_args(list(argv)))]

    loop = "uvloop" if "aiohttp-uvloop" in names() else "asyncio"

    assert f"aiohttp-apscheduler-{loop}" in names("--pingmon", "p")
    assert not [name for name in names("--no-floor") if "apscheduler" in name]


async def test_the_floors_scheduler_runs_a_job_a_target_on_the_daemons_slack_grid() -> None:
    slack_us = round(Settings.model_fields["timer_slack"].default * 1e6)
    scheduler = vs_blackbox.floor_scheduler(lambda: None, 10.0, 3.0, [])  # 10/s, every 3 s
    scheduler.start()
    try:
        runs = scheduler.next_runs().values()
    finally:
        scheduler.shutdown()

    assert len(runs) == 30
    assert slack_us > 0
    assert {round(run.timestamp() * 1e6) % slack_us for run in runs} == {0}


def test_the_floors_lag_quantiles_are_read_from_one_run_and_from_none() -> None:
    assert vs_blackbox.lag_quantiles_ms([]) == (None, None)
    assert vs_blackbox.lag_quantiles_ms([0.002]) == (2.0, 2.0)
    p50, p99 = vs_blackbox.lag_quantiles_ms([i / 1000 for i in range(101)])
    assert p50 == pytest.approx(50.0)
    assert p99 == pytest.approx(99.0)


def test_rounds_rotate_which_variant_runs_first() -> None:
    order = ["a", "b", "c"]

    turns = [processes.rotated(order, k) for k in range(4)]

    assert turns == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert processes.rotated([], 2) == []


def test_stat_fields_are_read_after_a_command_name_with_spaces_and_parentheses() -> None:
    line = "4242 (py (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 700 300 0 0 20 0 3\n"

    fields = processes.stat_fields(line)

    assert fields[0] == "S"
    assert (fields[7], fields[11], fields[12]) == ("1234", "700", "300")


def test_thread_cpu_tells_the_main_thread_from_the_others_and_faults_count_new_pages() -> None:
    pid = os.getpid()
    main0, others0 = processes.thread_cpu(pid)
    faults0 = processes.minor_faults(pid)
    spun, gate = threading.Event(), threading.Event()

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    def work() -> None:
        spin(0.1)
        spun.set()
        gate.wait(10)

    worker = threading.Thread(target=work)
    worker.start()
    spin(0.05)
    spun.wait(10)
    main1, others1 = processes.thread_cpu(pid)  # the worker still lives: it is listed
    gate.set()
    worker.join()
    # 16 MiB of pages new to the process (an anonymous mapping: a bytearray may get memory
    # the allocator already has), in small pages, each touched once.
    with mmap.mmap(-1, 16 << 20) as fresh:
        if hasattr(mmap, "MADV_NOHUGEPAGE"):
            fresh.madvise(mmap.MADV_NOHUGEPAGE)
        for offset in range(0, len(fresh), mmap.PAGESIZE):
            fresh[offset] = 1
        faults1 = processes.minor_faults(pid)

    assert main1 - main0 >= 0.04
    assert others1 - others0 >= 0.09
    assert faults1 - faults0 >= (16 << 20) // mmap.PAGESIZE // 2  # most of the pages


def test_process_usage_counts_every_live_threads_sleeps_as_wake_ups() -> None:
    napped, gate = threading.Event(), threading.Event()

    def nap() -> None:
        for _ in range(30):
            time.sleep(0.001)
        napped.set()
        gate.wait(10)

    before = processes.process_usage(os.getpid())
    napper = threading.Thread(target=nap)
    napper.start()
    napped.wait(10)
    after = processes.process_usage(os.getpid())  # the napper still lives: it is read
    gate.set()
    napper.join()

    used = after - before
    assert used.wakeups >= 30
    assert used.cpu >= used.system >= 0


def used(loop: float, threads: float, faults: int, checks: int | None) -> bench_daemon.Usage:
    return bench_daemon.Usage(loop, threads, faults, checks)


def scrape_with(
    started: float, ended: float, before: bench_daemon.Usage, after: bench_daemon.Usage
) -> bench_daemon.Scrape:
    reading = exposition.Reading({"none": 0.0}, {float("inf"): 0.0}, 0, 0)
    return bench_daemon.Scrape(started, ended, 0.0, 0.0, 0.0, 0, 0, "gzip", reading, before, after)


def test_scrape_cost_is_its_cpu_less_the_checks_meanwhile_at_their_cost_between_scrapes() -> None:
    # Between scrapes: 1,000 checks cost 0.5 s on the loop, 0.1 s in other threads and
    # 2,000 faults. The scrape saw 200 checks (0.1 + 0.02 s, 400 faults) and added 30 ms
    # on the loop, 10 ms in the worker and 300 faults.
    first = scrape_with(0.0, 0.1, used(0, 0, 0, 0), used(1.0, 0.2, 100, 100))
    second = scrape_with(9.0, 9.5, used(1.5, 0.3, 2100, 1100), used(1.63, 0.33, 2800, 1300))

    costs = bench_daemon.scrape_costs([first, second])

    assert costs["scrape_net_by"] == "CPU per check"
    assert costs["scrape_cpu_ms_loop_median"] == pytest.approx(30.0)
    assert costs["scrape_cpu_ms_threads_median"] == pytest.approx(10.0)
    assert costs["scrape_cpu_ms_net_median"] == pytest.approx(40.0)
    assert costs["scrape_faults_median"] == 300


def test_scrape_cost_without_a_count_of_checks_is_measured_against_cpu_per_second() -> None:
    # 10 s between scrapes at 0.5 s of loop CPU a second; a 0.2 s scrape took 0.14 s.
    first = scrape_with(0.0, 0.1, used(0, 0, 0, None), used(0, 0, 0, None))
    second = scrape_with(10.1, 10.3, used(5.0, 0, 0, None), used(5.14, 0, 0, None))

    costs = bench_daemon.scrape_costs([first, second])

    assert costs["scrape_net_by"] == "CPU per second"
    assert costs["scrape_cpu_ms_net_median"] == pytest.approx(40.0)
    assert bench_daemon.scrape_costs([first]) == {}


def test_lag_probe_overlap_counts_every_interval_in_the_window() -> None:
    """Intervals that began up to ``longest`` before the window still count, clipped to it."""
    spans = [(0.0, 2.0), (1.5, 1.6), (2.5, 4.0), (5.0, 6.0)]
    assert lag_probe.overlap(spans, 1.0, 3.0, longest=2.0) == pytest.approx(1.0 + 0.1 + 0.5)
    assert lag_probe.overlap(spans, 4.5, 4.9, longest=2.0) == 0.0


def test_lag_probe_reports_collections_by_generation(capsys: pytest.CaptureFixture[str]) -> None:
    """Records with the CPU and freed objects, and older ones with the wall time only."""
    collections = [[0.0, 0.002, 0, 0.001, 3], [1.0, 0.004, 1, 0.003, 0], [2.0, 0.006, 1]]
    lag_probe.report_collections(collections, span=2.0)
    young, middle = capsys.readouterr().out.splitlines()
    assert young.startswith("  generation 0: 0.5/s; wall ms p50 2.00")
    assert "CPU ms p50 1.00" in young
    assert "freed 3 objects" in young
    assert middle.startswith("  generation 1: 1.0/s; wall ms p50 6.00")
    assert "CPU" not in middle  # one record without it: wall only


def test_wakeup_cost_reads_the_spin_on_every_clock_and_charges_it_beyond_nothing() -> None:
    """The three clocks see a spin's CPU (stat in whole ticks), and ``measure`` subtracts
    exactly the spin it did: CPU beyond it cannot be below minus one tick."""
    before = wakeup_cost.read_clocks()
    wakeup_cost.spin(0.05)
    after = wakeup_cost.read_clocks()
    grown = [b - a for a, b in zip(before, after, strict=True)]
    tick = 1 / os.sysconf("SC_CLK_TCK")
    assert grown[1] >= 0.05
    assert grown[2] >= 0.05
    assert grown[0] >= 0.05 - 2 * tick
    wakes, extra = wakeup_cost.measure(rate=200.0, work=0.002, seconds=0.05)
    assert wakes >= 1
    assert extra.schedstat >= -1e-3
    assert extra.process_time >= -1e-3
    assert extra.stat >= -2 * tick
