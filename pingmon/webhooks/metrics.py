"""The webhook families, from the tracker's state at scrape time (few targets: the generic
prometheus-client renderer is fast enough here)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from pingmon.webhooks.reasons import Reason
from pingmon.webhooks.tracker import ROUNDTRIP_BUCKETS, WebhookState, WebhookTracker

LABELS = ["provider", "target"]
TARGET_REASONS = tuple(reason for reason in Reason if reason is not Reason.UNKNOWN_TARGET)


class WebhookCollector(Collector):
    """``pingmon_webhook_*``: one set of series per target that expects a webhook."""

    def __init__(self, tracker: WebhookTracker) -> None:
        self._tracker = tracker

    def collect(self) -> Iterator[Metric]:
        states = self._tracker.states()
        delivered = GaugeMetricFamily(
            "pingmon_webhook_delivered",
            "1 if the last decided ping's webhook arrived within the timeout, 0 if it did not.",
            labels=LABELS,
        )
        roundtrip = GaugeMetricFamily(
            "pingmon_webhook_roundtrip_seconds",
            "From the ping's request to its webhook's arrival, for the last delivery.",
            labels=LABELS,
        )
        latency = HistogramMetricFamily(
            "pingmon_webhook_roundtrip_latency_seconds",
            "From the ping's request to its webhook's arrival, for every delivery.",
            labels=LABELS,
        )
        received = GaugeMetricFamily(
            "pingmon_webhook_last_received_timestamp_seconds",
            "When the last counted delivery arrived (Unix time).",
            labels=LABELS,
        )
        misses = GaugeMetricFamily(
            "pingmon_webhook_consecutive_misses",
            "Answered pings in a row whose webhook did not arrive in time; 0 after a delivery "
            "or a failed ping.",
            labels=LABELS,
        )
        outcomes = CounterMetricFamily(
            "pingmon_webhooks",
            "Pings that expected a webhook, by outcome: delivered or missed.",
            labels=[*LABELS, "outcome"],
        )
        rejected = CounterMetricFamily(
            "pingmon_webhook_rejected",
            "Webhook requests not counted as a delivery, by reason.",
            labels=[*LABELS, "reason"],
        )
        timeout = GaugeMetricFamily(
            "pingmon_webhook_timeout_seconds",
            "How long after its ping a webhook may take.",
            labels=LABELS,
        )
        rejected.add_metric(
            ["", "", Reason.UNKNOWN_TARGET.value], self._tracker.unknown_target_total
        )
        for state in states:
            labels = [state.target.provider, state.target.name]
            if state.last_delivered is not None:
                delivered.add_metric(labels, 1.0 if state.last_delivered else 0.0)
            if state.last_roundtrip is not None:
                roundtrip.add_metric(labels, state.last_roundtrip)
            latency.add_metric(labels, _buckets(state), state.roundtrip_sum)
            if state.last_received_at is not None:
                received.add_metric(labels, state.last_received_at)
            misses.add_metric(labels, state.consecutive_misses)
            outcomes.add_metric([*labels, "delivered"], state.delivered_total)
            outcomes.add_metric([*labels, "missed"], state.missed_total)
            for reason in TARGET_REASONS:
                rejected.add_metric([*labels, reason.value], state.rejected[reason])
            timeout.add_metric(labels, state.target.settings.timeout)
        yield from (delivered, roundtrip, latency, received, misses, outcomes, rejected, timeout)


def _buckets(state: WebhookState) -> list[tuple[str, float]]:
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip(ROUNDTRIP_BUCKETS, state.roundtrip_counts, strict=False):
        cumulative += count
        buckets.append((floatToGoString(bound), float(cumulative)))  # type: ignore[no-untyped-call]
    buckets.append(("+Inf", float(sum(state.roundtrip_counts))))
    return buckets
