"""pingmon_shard_info: always one series, saying which shard of how many this process is."""

from __future__ import annotations

import subprocess

from prometheus_client.parser import text_string_to_metric_families

from pingmon.metrics import Metrics
from pingmon.results import ResultStore
from tests.tools import require_tool


def shard_series(metrics: Metrics) -> list[dict[str, str]]:
    body = metrics.render(metrics.snapshot(), openmetrics=False).decode()
    return [
        sample.labels
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "pingmon_shard_info" and sample.value == 1
    ]


def test_an_unsharded_process_is_shard_0_of_1() -> None:
    assert shard_series(Metrics(ResultStore(), dict)) == [{"shard": "0", "shards": "1"}]


def test_a_new_shard_replaces_the_series_rather_than_adding_one() -> None:
    metrics = Metrics(ResultStore(), dict)
    metrics.sharded(2, 3)
    metrics.sharded(1, 4)
    assert shard_series(metrics) == [{"shard": "1", "shards": "4"}]


def test_promtool_accepts_the_shard_info() -> None:
    metrics = Metrics(ResultStore(), dict)
    metrics.sharded(2, 3)
    body = metrics.render(metrics.snapshot(), openmetrics=False)
    assert b'pingmon_shard_info{shard="2",shards="3"} 1.0' in body
    checked = subprocess.run(
        [require_tool("promtool"), "check", "metrics"], input=body, capture_output=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr.decode() + checked.stdout.decode()
