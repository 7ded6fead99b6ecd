"""The webhook families as Prometheus reads them: names, labels and values from the contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families as parse_text

from pingmon.metrics import Metrics
from pingmon.results import ResultStore
from pingmon.webhooks.metrics import WebhookCollector
from pingmon.webhooks.reasons import Reason
from pingmon.webhooks.simotel import SimotelWebhookSettings
from pingmon.webhooks.stripe import StripeWebhookSettings
from pingmon.webhooks.tracker import WebhookTarget, WebhookTracker
from pingmon.webhooks.verify import Authentic
from tests.tools import require_tool

T0 = 1_800_000_000.0
TIMEOUT = 0.05
PING = "v2.core.event_destination.ping"
# Written out from the contract rather than taken from the code, so that a drift shows.
TARGET_REASONS = {
    "forbidden_source",
    "too_large",
    "unsigned",
    "bad_signature",
    "stale",
    "replayed",
    "bad_payload",
    "duplicate",
    "late",
    "unmatched",
}
BUCKETS = [0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, float("inf")]
# Every family and its type, as Prometheus' text format names them.
FAMILIES = {
    "pingmon_webhook_delivered": "gauge",
    "pingmon_webhook_roundtrip_seconds": "gauge",
    "pingmon_webhook_roundtrip_latency_seconds": "histogram",
    "pingmon_webhook_last_received_timestamp_seconds": "gauge",
    "pingmon_webhook_consecutive_misses": "gauge",
    "pingmon_webhooks": "counter",
    "pingmon_webhook_rejected": "counter",
    "pingmon_webhook_timeout_seconds": "gauge",
}
ORDERS = {"provider": "stripe-live", "target": "orders"}
PBX = {"provider": "pbx", "target": "pbx"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def targets(timeout: float = TIMEOUT, simotel_timeout: float = 30) -> list[WebhookTarget]:
    stripe = StripeWebhookSettings.model_validate(
        {"signing_secret": "whsec_metric-test-secret", "timeout": timeout}
    )
    simotel = SimotelWebhookSettings.model_validate(
        {"username": "metric-user", "password": "metric-password", "timeout": simotel_timeout}
    )
    return [
        WebhookTarget("orders", "stripe-live", "stripe", stripe),
        WebhookTarget("pbx", "pbx", "simotel", simotel),
    ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def tracker(clock: Clock) -> AsyncIterator[WebhookTracker]:
    tracker = WebhookTracker(clock)
    tracker.configure(targets())
    yield tracker
    tracker.close()


@pytest.fixture
def registry(tracker: WebhookTracker) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(WebhookCollector(tracker))
    return registry


def getter(registry: CollectorRegistry) -> Callable[..., float | None]:
    def get(name: str, labels: dict[str, str], **extra: str) -> float | None:
        return registry.get_sample_value(name, {**labels, **extra})

    return get


def families(registry: CollectorRegistry) -> dict[str, Metric]:
    return {family.name: family for family in parse_text(generate_latest(registry).decode())}


def parse_om(text: str) -> Iterator[Metric]:
    """prometheus-client's OpenMetrics parser (untyped upstream)."""
    parse: Callable[[str], Iterator[Metric]] = openmetrics_parser.text_string_to_metric_families
    return parse(text)


async def miss(tracker: WebhookTracker, event_id: str) -> None:
    orders = next(s for s in tracker.states() if s.target.name == "orders")
    before = orders.missed_total
    tracker.ping_succeeded("orders", T0, event_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while orders.missed_total == before:
        assert loop.time() < deadline, "the ping did not expire within 2 s"
        await asyncio.sleep(0.01)


def deliver(tracker: WebhookTracker, clock: Clock, event_id: str, roundtrip: float) -> None:
    tracker.ping_succeeded("orders", T0, event_id)
    clock.now = T0 + roundtrip
    tracker.accept("orders", Authentic(PING, event_id, int(T0)))


# Names, types and labels.


async def test_every_family_has_its_contract_name_and_type(registry: CollectorRegistry) -> None:
    assert {name: family.type for name, family in families(registry).items()} == FAMILIES


async def test_every_sample_carries_provider_and_target_and_only_the_documented_extra_label(
    registry: CollectorRegistry, tracker: WebhookTracker, clock: Clock
) -> None:
    deliver(tracker, clock, "evt_1", 0.4)
    extra = {
        "pingmon_webhooks_total": {"outcome"},
        "pingmon_webhook_rejected_total": {"reason"},
        "pingmon_webhook_roundtrip_latency_seconds_bucket": {"le"},
    }
    samples = [s for family in families(registry).values() for s in family.samples]
    assert len(samples) > 30
    for sample in samples:
        assert set(sample.labels) == {"provider", "target", *extra.get(sample.name, set())}


async def test_histogram_buckets_are_the_contracts(
    registry: CollectorRegistry, tracker: WebhookTracker, clock: Clock
) -> None:
    deliver(tracker, clock, "evt_1", 0.4)
    histogram = families(registry)["pingmon_webhook_roundtrip_latency_seconds"]
    bounds = [
        float(s.labels["le"])
        for s in histogram.samples
        if s.name.endswith("_bucket") and s.labels["target"] == "orders"
    ]
    assert bounds == BUCKETS


async def test_the_timeout_gauge_is_the_configured_timeout(registry: CollectorRegistry) -> None:
    get = getter(registry)
    assert get("pingmon_webhook_timeout_seconds", ORDERS) == TIMEOUT
    assert get("pingmon_webhook_timeout_seconds", PBX) == 30


# Before the first outcome.


async def test_outcome_gauges_are_absent_until_the_first_outcome(
    registry: CollectorRegistry,
) -> None:
    get = getter(registry)
    for labels in (ORDERS, PBX):
        assert get("pingmon_webhook_delivered", labels) is None
        assert get("pingmon_webhook_roundtrip_seconds", labels) is None
        assert get("pingmon_webhook_last_received_timestamp_seconds", labels) is None
        assert get("pingmon_webhook_consecutive_misses", labels) == 0
        assert get("pingmon_webhooks_total", labels, outcome="delivered") == 0
        assert get("pingmon_webhooks_total", labels, outcome="missed") == 0
        assert get("pingmon_webhook_roundtrip_latency_seconds_count", labels) == 0
        assert get("pingmon_webhook_roundtrip_latency_seconds_sum", labels) == 0


async def test_a_pending_ping_is_not_an_outcome(
    registry: CollectorRegistry, tracker: WebhookTracker
) -> None:
    tracker.ping_succeeded("orders", T0, "evt_1")
    assert getter(registry)("pingmon_webhook_delivered", ORDERS) is None


async def test_every_reason_but_unknown_target_is_there_at_zero_per_target_from_the_start(
    registry: CollectorRegistry,
) -> None:
    rejected = families(registry)["pingmon_webhook_rejected"]
    for labels in (ORDERS, PBX):
        reasons = {
            s.labels["reason"]: s.value
            for s in rejected.samples
            if s.labels["target"] == labels["target"]
        }
        assert reasons == dict.fromkeys(TARGET_REASONS, 0.0)


async def test_unknown_target_is_one_series_with_empty_provider_and_target(
    registry: CollectorRegistry, tracker: WebhookTracker
) -> None:
    rejected = families(registry)["pingmon_webhook_rejected"]
    unknown = [s for s in rejected.samples if s.labels["reason"] == "unknown_target"]
    assert [(s.labels, s.value) for s in unknown] == [
        ({"provider": "", "target": "", "reason": "unknown_target"}, 0.0)
    ]
    tracker.refuse(None, Reason.UNKNOWN_TARGET)
    tracker.refuse(None, Reason.UNKNOWN_TARGET)
    get = getter(registry)
    empty = {"provider": "", "target": ""}
    assert get("pingmon_webhook_rejected_total", empty, reason="unknown_target") == 2


async def test_unknown_target_is_there_even_without_any_webhook_target() -> None:
    registry = CollectorRegistry()
    registry.register(WebhookCollector(WebhookTracker(Clock())))
    labels = {"provider": "", "target": "", "reason": "unknown_target"}
    assert registry.get_sample_value("pingmon_webhook_rejected_total", labels) == 0


# After outcomes.


async def test_a_delivery_sets_every_gauge_and_the_histogram(
    registry: CollectorRegistry, tracker: WebhookTracker, clock: Clock
) -> None:
    deliver(tracker, clock, "evt_1", 0.4)
    get = getter(registry)
    assert get("pingmon_webhook_delivered", ORDERS) == 1
    assert get("pingmon_webhook_roundtrip_seconds", ORDERS) == pytest.approx(0.4)
    assert get("pingmon_webhook_last_received_timestamp_seconds", ORDERS) == T0 + 0.4
    assert get("pingmon_webhook_consecutive_misses", ORDERS) == 0
    assert get("pingmon_webhooks_total", ORDERS, outcome="delivered") == 1
    assert get("pingmon_webhooks_total", ORDERS, outcome="missed") == 0
    bucket = "pingmon_webhook_roundtrip_latency_seconds_bucket"
    assert get(bucket, ORDERS, le="0.25") == 0
    assert get(bucket, ORDERS, le="0.5") == 1
    assert get(bucket, ORDERS, le="300.0") == 1
    assert get(bucket, ORDERS, le="+Inf") == 1
    assert get("pingmon_webhook_roundtrip_latency_seconds_count", ORDERS) == 1
    assert get("pingmon_webhook_roundtrip_latency_seconds_sum", ORDERS) == pytest.approx(0.4)
    assert get("pingmon_webhook_delivered", PBX) is None


async def test_histogram_buckets_are_cumulative(
    registry: CollectorRegistry, tracker: WebhookTracker, clock: Clock
) -> None:
    for number, roundtrip in enumerate((0.1, 3.0, 3.0, 400.0)):
        deliver(tracker, clock, f"evt_{number}", roundtrip)
    get = getter(registry)
    bucket = "pingmon_webhook_roundtrip_latency_seconds_bucket"
    counts = [get(bucket, ORDERS, le=le) for le in ("0.25", "2.5", "5.0", "300.0", "+Inf")]
    assert counts == [1, 1, 3, 3, 4]
    assert get("pingmon_webhook_roundtrip_latency_seconds_count", ORDERS) == 4
    assert get("pingmon_webhook_roundtrip_latency_seconds_sum", ORDERS) == pytest.approx(406.1)


async def test_misses_set_delivered_to_0_and_count_up(
    registry: CollectorRegistry, tracker: WebhookTracker
) -> None:
    await miss(tracker, "evt_1")
    await miss(tracker, "evt_2")
    get = getter(registry)
    assert get("pingmon_webhook_delivered", ORDERS) == 0
    assert get("pingmon_webhook_consecutive_misses", ORDERS) == 2
    assert get("pingmon_webhooks_total", ORDERS, outcome="missed") == 2
    assert get("pingmon_webhooks_total", ORDERS, outcome="delivered") == 0
    assert get("pingmon_webhook_roundtrip_seconds", ORDERS) is None
    assert get("pingmon_webhook_last_received_timestamp_seconds", ORDERS) is None


async def test_a_delivery_after_misses_sets_delivered_to_1_and_misses_to_0(
    registry: CollectorRegistry, tracker: WebhookTracker, clock: Clock
) -> None:
    await miss(tracker, "evt_1")
    deliver(tracker, clock, "evt_2", 1.5)
    get = getter(registry)
    assert get("pingmon_webhook_delivered", ORDERS) == 1
    assert get("pingmon_webhook_consecutive_misses", ORDERS) == 0
    assert get("pingmon_webhooks_total", ORDERS, outcome="missed") == 1
    assert get("pingmon_webhooks_total", ORDERS, outcome="delivered") == 1


async def test_refusals_count_by_reason_on_their_target(
    registry: CollectorRegistry, tracker: WebhookTracker, clock: Clock
) -> None:
    tracker.configure(targets(simotel_timeout=TIMEOUT))  # so that pbx's hold ends soon
    tracker.refuse("orders", Reason.BAD_SIGNATURE)
    tracker.refuse("orders", Reason.BAD_SIGNATURE)
    deliver(tracker, clock, "evt_1", 0.2)
    tracker.accept("orders", Authentic(PING, "evt_1", int(T0) + 1))  # duplicate
    tracker.accept("pbx", Authentic("Ping"))  # held: its ping may still be being answered
    get = getter(registry)
    assert get("pingmon_webhook_rejected_total", PBX, reason="unmatched") == 0
    pbx = next(s for s in tracker.states() if s.target.name == "pbx")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while pbx.held:  # unmatched once the hold ends with no ping to claim it
        assert loop.time() < deadline, "the held Ping was not released within 2 s"
        await asyncio.sleep(0.01)
    assert get("pingmon_webhook_rejected_total", ORDERS, reason="bad_signature") == 2
    assert get("pingmon_webhook_rejected_total", ORDERS, reason="duplicate") == 1
    assert get("pingmon_webhook_rejected_total", ORDERS, reason="unmatched") == 0
    assert get("pingmon_webhook_rejected_total", PBX, reason="unmatched") == 1
    assert get("pingmon_webhook_rejected_total", PBX, reason="bad_signature") == 0
    assert get("pingmon_webhook_rejected_total", ORDERS, reason="unknown_target") is None


async def test_a_removed_targets_series_disappear(
    registry: CollectorRegistry, tracker: WebhookTracker, clock: Clock
) -> None:
    deliver(tracker, clock, "evt_1", 0.2)
    tracker.configure(targets()[1:])
    text = generate_latest(registry).decode()
    assert 'target="orders"' not in text
    assert 'target="pbx"' in text


# The whole exposition.


def full_metrics(tracker: WebhookTracker) -> Metrics:
    return Metrics(ResultStore(), lambda: {}, collectors=[WebhookCollector(tracker)])


async def test_the_families_are_part_of_the_full_exposition_in_both_formats(
    tracker: WebhookTracker, clock: Clock
) -> None:
    deliver(tracker, clock, "evt_1", 0.4)
    tracker.refuse(None, Reason.UNKNOWN_TARGET)
    metrics = full_metrics(tracker)
    text = metrics.render(openmetrics=False).decode()
    om = metrics.render(openmetrics=True).decode()
    assert om.endswith("# EOF\n")
    for body, parsed in ((text, parse_text(text)), (om, parse_om(om))):
        found = {family.name: family.type for family in parsed}
        assert FAMILIES.items() <= found.items(), body
    om_families = {family.name: family for family in parse_om(om)}
    roundtrip = om_families["pingmon_webhook_roundtrip_seconds"].samples
    assert [s.labels for s in roundtrip] == [ORDERS]
    assert roundtrip[0].value == pytest.approx(0.4)


async def test_promtool_check_metrics_is_clean_with_the_webhook_families(
    tracker: WebhookTracker, clock: Clock
) -> None:
    promtool = require_tool("promtool")
    deliver(tracker, clock, "evt_1", 0.4)
    await miss(tracker, "evt_2")
    tracker.refuse(None, Reason.UNKNOWN_TARGET)
    metrics = full_metrics(tracker)
    body = metrics.render(openmetrics=False)
    assert b"pingmon_webhook_delivered{" in body
    checked = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(checked.communicate(body), 60)
    assert checked.returncode == 0, stderr.decode() + stdout.decode()
