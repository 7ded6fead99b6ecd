"""The shipped alert rules fire, and resolve, in a real Prometheus and Alertmanager.

Prometheus evaluates a copy of config/alerts/pingmon.rules.yml in which ONLY the `for:`
durations are shortened (the shortest becomes 1s, every longer one 2s, 0 stays 0, and
`keep_firing_for` becomes 1s), so each case takes seconds; the PromQL and the labels are used
verbatim. The real `for`s are covered by the rule file's promtool unit tests. One pingmon
process checks one 9pic target per case every 200 ms; the cases run one after the other, and
the last one stops pingmon.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final

import pytest

from tests.e2e.stack import (
    JOB,
    KEY_REVOKED,
    PROVIDER_DOWN,
    STEADY,
    STORM,
    WEBHOOK,
    Case,
    Stack,
)
from tests.processes import POLL_SECONDS, eventually

# Longer than any shortened `for` plus a scrape and an evaluation: an alert that was going to
# appear has appeared, at least as pending, by the end of such a window.
OBSERVE_SECONDS: Final = 4.0
# Far above backoff.initial: the storm's back-off is "long" by any reading of the rule.
STORM_RETRY_AFTER: Final = "600"

Delays = list[tuple[str, float]]


def about(alerts: list[dict[str, Any]], case: Case) -> set[str]:
    """Names of the alerts (Alertmanager's or Prometheus's) about one case's target."""
    return {
        a["labels"]["alertname"]
        for a in alerts
        if a["labels"].get("target") == case.target
        or (a["labels"].get("provider") == case.provider and "target" not in a["labels"])
    }


def watch(stack: Stack, case: Case, seconds: float) -> set[str]:
    """Every alert Prometheus holds, pending or firing, about the case during the window."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen |= about(stack.prometheus_alerts(), case)
        time.sleep(POLL_SECONDS)
    return seen


def expected_labels(stack: Stack, alertname: str, case: Case, error_class: str) -> dict[str, str]:
    """The contract's labels, the severity as the shipped rule declares it."""
    return {
        "alertname": alertname,
        "severity": stack.rules[alertname]["labels"]["severity"],
        "provider": case.provider,
        "target": case.target,
        "error_class": error_class,
    }


def picked(labels: dict[str, str], wanted: dict[str, str]) -> dict[str, str | None]:
    return {name: labels.get(name) for name in wanted}


def receivers(alert: dict[str, Any]) -> list[str]:
    """Where config/alertmanager.example.yaml routes the alert (the stack loads its routes)."""
    return sorted(receiver["name"] for receiver in alert["receivers"])


def fire(
    stack: Stack, case: Case, scenario: str, alertname: str, delays: Delays
) -> dict[str, Any]:
    """Make the case's target fail as the scenario says; its alert once Alertmanager has it."""
    stack.set_scenario(case, scenario)
    failed_at = time.monotonic()
    alert = stack.wait_alert(alertname, target=case.target)
    delays.append((alertname, time.monotonic() - failed_at))
    return alert


@pytest.fixture(scope="module")
def failing_alert(stack: Stack, alert_delays: Delays) -> dict[str, Any]:
    """PROVIDER_DOWN's provider answers 500 to every check, until the recovery test heals it."""
    return fire(stack, PROVIDER_DOWN, "server_error", "PingmonTargetFailing", alert_delays)


def test_healthy_targets_raise_no_alert_pending_or_firing(stack: Stack) -> None:
    stack.ensure_pingmon_scraped()
    seen = watch(stack, STEADY, OBSERVE_SECONDS)
    firing = {a["labels"]["alertname"] for a in stack.active_alerts() if "target" in a["labels"]}
    assert (seen, firing) == (set(), set()), stack.diagnosis()


def test_provider_down_makes_target_failing_active_with_its_labels(
    stack: Stack, failing_alert: dict[str, Any]
) -> None:
    wanted = expected_labels(stack, "PingmonTargetFailing", PROVIDER_DOWN, "server_error")
    assert picked(failing_alert["labels"], wanted) == wanted
    assert failing_alert["status"]["state"] == "active"
    assert receivers(failing_alert) == ["provider-watchers-page"]


def test_recovery_resolves_the_target_failing_alert(
    stack: Stack, failing_alert: dict[str, Any], resolve_delays: Delays
) -> None:
    stack.heal(PROVIDER_DOWN)
    healed_at = time.monotonic()
    stack.wait_no_alert("PingmonTargetFailing", target=PROVIDER_DOWN.target)
    resolve_delays.append(("PingmonTargetFailing", time.monotonic() - healed_at))
    assert stack.query(f'pingmon_check_success{{target="{PROVIDER_DOWN.target}"}} == 1')


def test_revoked_key_fires_credential_rejected_and_not_target_failing(
    stack: Stack, alert_delays: Delays
) -> None:
    try:
        alert = fire(stack, KEY_REVOKED, "forbidden", "PingmonCredentialRejected", alert_delays)
        seen = watch(stack, KEY_REVOKED, OBSERVE_SECONDS)
    finally:
        stack.heal(KEY_REVOKED)
    wanted = expected_labels(stack, "PingmonCredentialRejected", KEY_REVOKED, "forbidden")
    assert picked(alert["labels"], wanted) == wanted
    assert receivers(alert) == ["credential-owners-page"]
    assert "PingmonCredentialRejected" in seen
    assert "PingmonTargetFailing" not in seen


def test_429_storm_fires_only_the_rate_limit_alert(stack: Stack, alert_delays: Delays) -> None:
    seen: set[str] = set()

    def rate_limit_alerts() -> list[dict[str, Any]]:
        seen.update(about(stack.prometheus_alerts(), STORM))
        return stack.active_alerts(alertname="PingmonRateLimited", target=STORM.target)

    stack.set_scenario(STORM, "rate_limited", retry_after=STORM_RETRY_AFTER)
    started = time.monotonic()
    alert = eventually(rate_limit_alerts, "PingmonRateLimited active", stack.diagnosis)[0]
    alert_delays.append(("PingmonRateLimited", time.monotonic() - started))
    seen |= watch(stack, STORM, OBSERVE_SECONDS)
    window = math.ceil(time.monotonic() - started) + 2
    selector = f'ALERTS{{provider="{STORM.provider}"}} or ALERTS{{target="{STORM.target}"}}'
    history = stack.query(f"count by (alertname) (count_over_time(({selector})[{window}s:1s]))")
    ever = {series["metric"]["alertname"] for series in history}

    wanted = expected_labels(stack, "PingmonRateLimited", STORM, "rate_limited")
    assert picked(alert["labels"], wanted) == wanted
    assert wanted["severity"] == "warning"
    assert receivers(alert) == ["provider-watchers-ticket"]
    assert about(stack.active_alerts(), STORM) == {"PingmonRateLimited"}, stack.diagnosis()
    assert seen == {"PingmonRateLimited"}, "pending or firing in Prometheus during the storm"
    assert ever == {"PingmonRateLimited"}, "in Prometheus's ALERTS series since the storm began"


def test_webhooks_that_stop_arriving_fire_webhook_not_delivered_and_a_delivery_resolves_it(
    stack: Stack, alert_delays: Delays, resolve_delays: Delays
) -> None:
    stack.ensure_pingmon_scraped()
    assert stack.query(f'pingmon_webhook_delivered{{target="{WEBHOOK.target}"}} == 1')
    try:
        stack.set_webhook_scenario(WEBHOOK, "never")
        stopped_at = time.monotonic()
        alert = stack.wait_alert("PingmonWebhookNotDelivered", target=WEBHOOK.target)
        alert_delays.append(("PingmonWebhookNotDelivered", time.monotonic() - stopped_at))
    finally:
        stack.set_webhook_scenario(WEBHOOK, "delivered")
    healed_at = time.monotonic()
    stack.wait_no_alert("PingmonWebhookNotDelivered", target=WEBHOOK.target)
    resolve_delays.append(("PingmonWebhookNotDelivered", time.monotonic() - healed_at))
    wanted = {
        "alertname": "PingmonWebhookNotDelivered",
        "severity": stack.rules["PingmonWebhookNotDelivered"]["labels"]["severity"],
        "provider": WEBHOOK.provider,
        "target": WEBHOOK.target,
    }
    assert picked(alert["labels"], wanted) == wanted
    assert receivers(alert) == ["platform-page"]
    assert stack.query(f'pingmon_check_success{{target="{WEBHOOK.target}"}} == 1')


def test_stopping_pingmon_fires_pingmon_down(stack: Stack, alert_delays: Delays) -> None:
    stopped_at = time.monotonic()
    assert stack.stop_pingmon() == 0
    alert = stack.wait_alert("PingmonDown", job=JOB)
    alert_delays.append(("PingmonDown", time.monotonic() - stopped_at))
    assert picked(alert["labels"], {"alertname": "", "severity": "", "instance": ""}) == {
        "alertname": "PingmonDown",
        "severity": stack.rules["PingmonDown"]["labels"]["severity"],
        "instance": stack.pingmon_address,
    }
    assert receivers(alert) == ["platform-page"]
