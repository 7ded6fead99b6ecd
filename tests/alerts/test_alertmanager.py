"""The example Alertmanager configuration is valid, routes each alert to its team, and inhibits."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests.processes import Process, eventually, free_port, http_ok
from tests.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
AM_CONFIG = REPO / "config" / "alertmanager.example.yaml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("amtool"), *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_example_config_passes_amtool_check_config() -> None:
    done = amtool("check-config", str(AM_CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    assert " - 4 inhibit rules" in done.stdout


# Labels as the rules in config/alerts/pingmon.rules.yml produce them -> the receiver.
TARGET = ("job=pingmon", "instance=10.0.0.1:9108", "provider=stripe-live", "target=orders-webhook")
ROUTES = [
    pytest.param(
        ("alertname=PingmonCredentialRejected", "severity=critical", "error_class=auth", *TARGET),
        "credential-owners-page",
        id="401-pages-the-key-owners",
    ),
    pytest.param(
        ("alertname=PingmonCredentialRejected", "severity=critical", "error_class=forbidden"),
        "credential-owners-page",
        id="403-pages-the-key-owners",
    ),
    pytest.param(
        ("alertname=PingmonErrorBudgetBurnSlow", "severity=warning", "error_class=auth", *TARGET),
        "credential-owners-ticket",
        id="burn-with-last-class-auth-tickets-the-key-owners",
    ),
    pytest.param(
        ("alertname=PingmonTargetNotFound", "severity=warning", "error_class=not_found", *TARGET),
        "pingmon-config-ticket",
        id="404-tickets-the-config-owners",
    ),
    *(
        pytest.param(
            ("alertname=PingmonTargetFailing", "severity=critical", f"error_class={cls}", *TARGET),
            "provider-watchers-page",
            id=f"{cls}-outage-pages-the-provider-watchers",
        )
        for cls in ("timeout", "dns", "connect", "tls", "server_error", "bad_response")
    ),
    pytest.param(
        ("alertname=PingmonRateLimited", "severity=warning", "error_class=rate_limited", *TARGET),
        "provider-watchers-ticket",
        id="429-tickets-the-provider-watchers-never-pages",
    ),
    pytest.param(
        ("alertname=PingmonErrorBudgetBurnFast", "severity=critical", "error_class=none", *TARGET),
        "provider-watchers-page",
        id="fast-burn-pages-the-provider-watchers",
    ),
    pytest.param(
        (
            "alertname=PingmonErrorBudgetBurnSlow",
            "severity=warning",
            "error_class=timeout",
            *TARGET,
        ),
        "provider-watchers-ticket",
        id="slow-burn-tickets-the-provider-watchers",
    ),
    pytest.param(
        ("alertname=PingmonDown", "severity=critical", "job=pingmon", "instance=10.0.0.1:9108"),
        "platform-page",
        id="down-pages-the-platform",
    ),
    pytest.param(
        ("alertname=PingmonAbsent", "severity=critical"),
        "platform-page",
        id="absent-pages-the-platform",
    ),
    pytest.param(
        ("alertname=PingmonConfigReloadFailed", "severity=warning", "job=pingmon"),
        "platform-ticket",
        id="reload-failed-tickets-the-platform",
    ),
    pytest.param(
        ("alertname=PingmonSchedulerLagging", "severity=warning", "job=pingmon"),
        "platform-ticket",
        id="lag-tickets-the-platform",
    ),
    pytest.param(
        ("alertname=PingmonInternalErrors", "severity=warning", "job=pingmon"),
        "platform-ticket",
        id="internal-errors-ticket-the-platform",
    ),
    *(
        pytest.param(
            (
                "alertname=PingmonResourceExhausted",
                "severity=critical",
                "job=pingmon",
                f"errno={e}",
            ),
            "platform-page",
            id=f"{e}-exhaustion-pages-the-platform",
        )
        for e in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM")
    ),
    pytest.param(
        ("alertname=PingmonCheckStale", "severity=warning", *TARGET),
        "platform-ticket",
        id="stale-target-tickets-the-platform-not-the-provider-watchers",
    ),
    pytest.param(
        ("alertname=PingmonWebhookNotDelivered", "severity=critical", *TARGET),
        "platform-page",
        id="webhooks-not-arriving-page-the-platform-that-runs-the-way-in",
    ),
    *(
        pytest.param(
            ("alertname=PingmonWebhookRejected", "severity=warning", f"reason={reason}", *TARGET),
            "credential-owners-ticket",
            id=f"webhooks-refused-as-{reason}-ticket-the-secret-owners",
        )
        for reason in ("bad_signature", "unsigned", "stale")
    ),
    pytest.param(
        ("alertname=SomethingElse", "severity=critical"),
        "platform-ticket",
        id="unknown-alert-falls-back-to-a-platform-ticket",
    ),
]


@pytest.mark.parametrize(("labels", "receiver"), ROUTES)
def test_alert_routes_to_its_receiver(labels: tuple[str, ...], receiver: str) -> None:
    done = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={AM_CONFIG}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == receiver


# --- Inhibition, against a real Alertmanager running the example configuration ------------------


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an Alertmanager on 127.0.0.1 with the example configuration (no clustering)."""
    folder = tmp_path_factory.mktemp("alertmanager")
    url = f"http://127.0.0.1:{free_port()}"
    process = Process(
        "alertmanager",
        [
            require_tool("prometheus-alertmanager"),
            f"--config.file={AM_CONFIG}",
            f"--storage.path={folder}",
            f"--web.listen-address={url.removeprefix('http://')}",
            "--cluster.listen-address=",
        ],
        folder / "alertmanager.log",
    )
    process.start()
    try:
        eventually(lambda: http_ok(f"{url}/-/ready"), "Alertmanager ready", process.tail)
        yield url
    finally:
        process.stop()


def post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def states(url: str, cluster: str, expected: dict[str, str]) -> dict[str, str]:
    """alertname/target/instance -> state ("active" or "suppressed") of one case's alerts.

    Alertmanager's inhibitor learns of a source alert asynchronously: just after the POST its
    targets can still read "active". So this polls until the states are the expected ones, for
    at most 10 s, and returns the last ones seen (an alert wrongly muted or not muted never
    matches, and fails the caller's comparison).
    """
    query = urllib.parse.urlencode({"filter": f'cluster="{cluster}"'})
    deadline = time.monotonic() + 10
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/v2/alerts?{query}", timeout=5) as answer:
            alerts = cast(list[dict[str, Any]], json.load(answer))
        found = {
            "/".join(
                a["labels"][k] for k in ("alertname", "target", "instance") if k in a["labels"]
            ): a["status"]["state"]
            for a in alerts
        }
        if found == expected:
            break
        time.sleep(0.05)
    return found


def alert(cluster: str, name: str, **labels: str) -> dict[str, str]:
    severity = "critical" if name in {"PingmonDown", "PingmonAbsent"} else "warning"
    return {"alertname": name, "cluster": cluster, "severity": severity, **labels}


def per_target(cluster: str, name: str, target: str, instance: str) -> dict[str, str]:
    labels = {"job": "pingmon", "instance": instance, "provider": "p", "target": target}
    return alert(cluster, name, error_class="timeout", **labels)


def burn(cluster: str, name: str, target: str) -> dict[str, str]:
    return alert(cluster, name, job="pingmon", provider="p", target=target, error_class="auth")


def webhook(cluster: str, name: str, target: str, instance: str) -> dict[str, str]:
    """A webhook alert: a target's labels, no error_class (Rejected adds its reason)."""
    labels = {"job": "pingmon", "instance": instance, "provider": "p", "target": target}
    if name == "PingmonWebhookRejected":
        labels["reason"] = "bad_signature"
    return alert(cluster, name, **labels)


def test_pingmon_down_inhibits_the_per_target_alerts_of_its_instance_only(
    alertmanager: str,
) -> None:
    c = "down"
    post_alerts(
        alertmanager,
        [
            alert(c, "PingmonDown", job="pingmon", instance="i1"),
            per_target(c, "PingmonTargetFailing", "t", "i1"),
            per_target(c, "PingmonCheckStale", "t", "i1"),
            per_target(c, "PingmonTargetFailing", "t", "i2"),
            burn(c, "PingmonErrorBudgetBurnFast", "t"),
            webhook(c, "PingmonWebhookNotDelivered", "w", "i1"),
            webhook(c, "PingmonWebhookRejected", "w", "i1"),
            webhook(c, "PingmonWebhookNotDelivered", "w", "i2"),
        ],
    )
    expected = {
        "PingmonDown/i1": "active",
        "PingmonTargetFailing/t/i1": "suppressed",
        "PingmonCheckStale/t/i1": "suppressed",
        "PingmonTargetFailing/t/i2": "active",
        "PingmonErrorBudgetBurnFast/t": "active",
        "PingmonWebhookNotDelivered/w/i1": "suppressed",
        "PingmonWebhookRejected/w/i1": "suppressed",
        "PingmonWebhookNotDelivered/w/i2": "active",
    }
    assert states(alertmanager, c, expected) == expected


def test_pingmon_absent_inhibits_the_per_target_alerts(alertmanager: str) -> None:
    c = "absent"
    post_alerts(
        alertmanager,
        [
            alert(c, "PingmonAbsent"),
            per_target(c, "PingmonTargetFailing", "t", "i1"),
            burn(c, "PingmonErrorBudgetBurnSlow", "t"),
            webhook(c, "PingmonWebhookNotDelivered", "w", "i1"),
            webhook(c, "PingmonWebhookRejected", "w", "i1"),
        ],
    )
    expected = {
        "PingmonAbsent": "active",
        "PingmonTargetFailing/t/i1": "suppressed",
        "PingmonErrorBudgetBurnSlow/t": "suppressed",
        "PingmonWebhookNotDelivered/w/i1": "suppressed",
        "PingmonWebhookRejected/w/i1": "suppressed",
    }
    assert states(alertmanager, c, expected) == expected


def test_a_rejected_credential_inhibits_the_burn_rate_alerts_of_its_target_only(
    alertmanager: str,
) -> None:
    c = "credential"
    post_alerts(
        alertmanager,
        [
            per_target(c, "PingmonCredentialRejected", "t", "i1") | {"error_class": "auth"},
            burn(c, "PingmonErrorBudgetBurnFast", "t"),
            burn(c, "PingmonErrorBudgetBurnSlow", "t"),
            burn(c, "PingmonErrorBudgetBurnSlow", "other"),
        ],
    )
    expected = {
        "PingmonCredentialRejected/t/i1": "active",
        "PingmonErrorBudgetBurnFast/t": "suppressed",
        "PingmonErrorBudgetBurnSlow/t": "suppressed",
        "PingmonErrorBudgetBurnSlow/other": "active",
    }
    assert states(alertmanager, c, expected) == expected


def test_a_fast_burn_inhibits_the_slow_burn_ticket_of_its_target(alertmanager: str) -> None:
    c = "burn"
    post_alerts(
        alertmanager,
        [
            burn(c, "PingmonErrorBudgetBurnFast", "t") | {"error_class": "timeout"},
            burn(c, "PingmonErrorBudgetBurnSlow", "t") | {"error_class": "timeout"},
        ],
    )
    expected = {
        "PingmonErrorBudgetBurnFast/t": "active",
        "PingmonErrorBudgetBurnSlow/t": "suppressed",
    }
    assert states(alertmanager, c, expected) == expected
