"""The exported metrics: names, labels and values, and the fast writer against the generic one."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Iterator

from hypothesis import given, settings, strategies as st
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families as parse_text

from pingmon.errors import ErrorClass
from pingmon.metrics import (
    FAMILIES,
    LAG_BUCKETS,
    Metrics,
    PlainHistogram,
    generate_openmetrics,
)
from pingmon.results import CheckResult, ResultStore, TargetInfo
from tests.tools import require_tool

CREDENTIAL = "c0ffee"


def parse_om(text: str) -> Iterator[Metric]:
    """prometheus-client's OpenMetrics parser (untyped upstream)."""
    parse: Callable[[str], Iterator[Metric]] = openmetrics_parser.text_string_to_metric_families
    return parse(text)


def result(
    target: str, error_class: ErrorClass, duration: float = 0.2, at: float = 1e9
) -> CheckResult:
    statuses = {ErrorClass.NONE: 200, ErrorClass.RATE_LIMITED: 429}
    status = statuses.get(error_class, 500)
    return CheckResult(target, "prov", error_class, status, duration, 1, "", at)


def make_metrics(backoff: dict[str, float] | None = None, histogram: bool = True) -> Metrics:
    store = ResultStore()
    store.configure(
        [
            TargetInfo("alpha", "prov", "http", 30.0, CREDENTIAL),
            TargetInfo("beta", "prov", "http", 60.0, "other"),
        ]
    )
    return Metrics(store, lambda: backoff or {}, latency_histogram=histogram)


def labels(target: str, **extra: str) -> dict[str, str]:
    return {"provider": "prov", "target": target, **extra}


def test_success_sets_gauges_and_counts_the_none_class() -> None:
    metrics = make_metrics()
    metrics.store.record(result("alpha", ErrorClass.NONE, duration=0.3, at=1234.5))
    get = metrics.registry.get_sample_value
    assert get("pingmon_check_success", labels("alpha")) == 1
    assert get("pingmon_check_duration_seconds", labels("alpha")) == 0.3
    assert get("pingmon_check_http_status", labels("alpha")) == 200
    assert get("pingmon_check_last_run_timestamp_seconds", labels("alpha")) == 1234.5
    assert get("pingmon_check_last_success_timestamp_seconds", labels("alpha")) == 1234.5
    assert get("pingmon_checks_total", labels("alpha", error_class="none")) == 1
    assert get("pingmon_check_interval_seconds", labels("alpha")) == 30
    assert get("pingmon_check_latency_seconds_bucket", labels("alpha", le="0.25")) == 0
    assert get("pingmon_check_latency_seconds_bucket", labels("alpha", le="0.5")) == 1


def test_error_class_is_a_state_set_with_every_class_present() -> None:
    metrics = make_metrics()
    metrics.store.record(result("alpha", ErrorClass.SERVER_ERROR))
    get = metrics.registry.get_sample_value
    values = {
        c.value: get("pingmon_check_error_class", labels("alpha", error_class=c.value))
        for c in ErrorClass
    }
    assert values == {c.value: (1.0 if c is ErrorClass.SERVER_ERROR else 0.0) for c in ErrorClass}
    assert get("pingmon_check_success", labels("alpha")) == 0


def test_checks_total_gains_a_class_series_only_when_it_occurs() -> None:
    metrics = make_metrics()
    get = metrics.registry.get_sample_value
    assert get("pingmon_checks_total", labels("alpha", error_class="none")) == 0
    assert get("pingmon_checks_total", labels("alpha", error_class="timeout")) is None
    metrics.store.record(result("alpha", ErrorClass.TIMEOUT))
    metrics.store.record(result("alpha", ErrorClass.TIMEOUT))
    assert get("pingmon_checks_total", labels("alpha", error_class="timeout")) == 2


def test_consecutive_failures_count_up_and_reset_on_success() -> None:
    metrics = make_metrics()
    get = metrics.registry.get_sample_value
    for _ in range(3):
        metrics.store.record(result("alpha", ErrorClass.CONNECT))
    assert get("pingmon_check_consecutive_failures", labels("alpha")) == 3
    metrics.store.record(result("alpha", ErrorClass.NONE))
    assert get("pingmon_check_consecutive_failures", labels("alpha")) == 0


def test_a_429_neither_counts_as_a_consecutive_failure_nor_resets_the_count() -> None:
    metrics = make_metrics()
    get = metrics.registry.get_sample_value
    metrics.store.record(result("alpha", ErrorClass.TIMEOUT))
    for _ in range(5):
        metrics.store.record(result("alpha", ErrorClass.RATE_LIMITED))
    assert get("pingmon_check_consecutive_failures", labels("alpha")) == 1
    metrics.store.record(result("alpha", ErrorClass.TIMEOUT))
    assert get("pingmon_check_consecutive_failures", labels("alpha")) == 2


def test_result_gauges_are_absent_before_the_first_check() -> None:
    metrics = make_metrics()
    get = metrics.registry.get_sample_value
    assert get("pingmon_check_success", labels("beta")) is None
    assert get("pingmon_check_interval_seconds", labels("beta")) == 60
    assert get("pingmon_backoff_seconds", labels("beta")) == 0


def test_backoff_gauge_follows_the_targets_credential() -> None:
    metrics = make_metrics(backoff={CREDENTIAL: 42.0})
    metrics.store.record(result("alpha", ErrorClass.RATE_LIMITED))
    get = metrics.registry.get_sample_value
    assert get("pingmon_backoff_seconds", labels("alpha")) == 42
    assert get("pingmon_backoff_seconds", labels("beta")) == 0
    assert get("pingmon_rate_limited_total", labels("alpha")) == 1


def test_removed_target_series_disappear() -> None:
    metrics = make_metrics()
    metrics.store.record(result("beta", ErrorClass.NONE))
    metrics.store.configure([TargetInfo("alpha", "prov", "http", 30.0, CREDENTIAL)])
    assert metrics.registry.get_sample_value("pingmon_check_success", labels("beta")) is None
    assert b'target="beta"' not in metrics.render(openmetrics=False)


def test_self_metrics_are_on_the_same_registry() -> None:
    metrics = make_metrics()
    metrics.config_loaded(True, at=99.0)
    get = metrics.registry.get_sample_value
    assert get("pingmon_config_last_reload_successful") == 1
    assert get("pingmon_config_last_reload_success_timestamp_seconds") == 99
    assert get("pingmon_scheduler_lag_seconds_count") == 0
    assert get("pingmon_internal_errors_total") == 0  # present from the start, so rate() works
    build = [m for m in metrics.registry.collect() if m.name == "pingmon_build_info"]
    assert build[0].samples[0].value == 1


def test_series_per_target_stay_within_the_budget() -> None:
    metrics = make_metrics()
    for error_class in (ErrorClass.NONE, ErrorClass.TIMEOUT):
        metrics.store.record(result("alpha", error_class))
    per_target = sum(
        1 for line in metrics.render(False).decode().splitlines() if 'target="alpha"' in line
    )
    assert per_target <= 35


def test_switching_the_histogram_off_drops_its_series() -> None:
    metrics = make_metrics(histogram=False)
    metrics.store.record(result("alpha", ErrorClass.NONE))
    assert b"pingmon_check_latency_seconds" not in metrics.render(False)


def _samples(families: Iterable[Metric]) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in families
        for s in family.samples
        if s.labels.get("target")
    }


def _busy_metrics() -> Metrics:
    metrics = make_metrics(backoff={CREDENTIAL: 5.0})
    for error_class, duration in (
        (ErrorClass.NONE, 0.01),
        (ErrorClass.AUTH, 3.0),
        (ErrorClass.RATE_LIMITED, 0.7),
    ):
        metrics.store.record(result("alpha", error_class, duration))
    metrics.store.record(result("beta", ErrorClass.NONE, 11.0))
    return metrics


def test_fast_writer_matches_the_generic_collector_in_text_format() -> None:
    metrics = _busy_metrics()
    fast = metrics.render(openmetrics=False).decode()
    generic = generate_latest(metrics.registry).decode()
    assert _samples(parse_text(fast)) == _samples(parse_text(generic))
    assert len(_samples(parse_text(fast))) > 50


def test_fast_writer_output_parses_as_openmetrics() -> None:
    metrics = _busy_metrics()
    body = metrics.render(openmetrics=True).decode()
    assert body.endswith("# EOF\n")
    families = {f.name: f for f in parse_om(body)}
    assert families["pingmon_checks"].type == "counter"
    assert families["pingmon_check_latency_seconds"].type == "histogram"
    assert _samples(families.values()) == _samples(
        parse_text(metrics.render(openmetrics=False).decode())
    )


def test_every_family_has_help_and_a_documented_type() -> None:
    for family in FAMILIES:
        assert family.name.startswith("pingmon_")
        assert family.help
        assert family.type in {"gauge", "counter", "histogram"}
        assert family.name.endswith("_total") == (family.type == "counter")


def test_promtool_check_metrics_is_clean() -> None:
    promtool = require_tool("promtool")
    metrics = _busy_metrics()
    body = metrics.render(openmetrics=False)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stderr.decode() + checked.stdout.decode()


LAG_AMOUNTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([*LAG_BUCKETS, 0.0, -0.0, 1e-9]),
    st.integers(min_value=-3, max_value=20),
)


@settings(deadline=None)  # a busy machine: no wall-clock bound
@given(amounts=st.lists(LAG_AMOUNTS, max_size=40))
def test_the_plain_histogram_shows_what_prometheus_clients_histogram_shows(
    amounts: list[float],
) -> None:
    """The scheduler lag's histogram: the same bytes, in both text formats, as
    prometheus-client's ``Histogram`` observing the same amounts (bounds met exactly,
    below every bound, past the last, NaN, infinities, ints)."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # as Metrics does
    plain_registry, reference_registry = CollectorRegistry(), CollectorRegistry()
    plain = PlainHistogram("lag_seconds", "How late.", LAG_BUCKETS)
    plain_registry.register(plain)
    reference = Histogram("lag_seconds", "How late.", buckets=LAG_BUCKETS,
                          registry=reference_registry)  # fmt: skip
    for amount in amounts:
        plain.observe(amount)
        reference.observe(amount)
    assert generate_latest(plain_registry) == generate_latest(reference_registry)
    assert generate_openmetrics(plain_registry) == generate_openmetrics(reference_registry)
