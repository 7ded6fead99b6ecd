"""The alert rules pass promtool lint and unit tests; every alert is tested and documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from tests.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "alerts" / "pingmon.rules.yml"
RULES_TEST = REPO / "config" / "alerts" / "pingmon.rules_test.yml"
RUNBOOKS = REPO / "docs" / "runbooks.md"
ALERTS_DOC = REPO / "docs" / "alerts.md"
RUNBOOK_BASE = "https://github.com/pingmon/pingmon/blob/main/docs/runbooks.md#"

# The names other engineers (Helm chart, end-to-end test, dashboards) code against.
CONTRACT_ALERTS = {
    "PingmonTargetFailing",
    "PingmonCredentialRejected",
    "PingmonTargetNotFound",
    "PingmonRateLimited",
    "PingmonCheckStale",
    "PingmonDown",
    "PingmonAbsent",
    "PingmonConfigReloadFailed",
    "PingmonSchedulerLagging",
    "PingmonInternalErrors",
    "PingmonResourceExhausted",
    "PingmonErrorBudgetBurnFast",
    "PingmonErrorBudgetBurnSlow",
    "PingmonWebhookNotDelivered",
    "PingmonWebhookRejected",
}
CONTRACT_RECORDS = {"pingmon:availability_objective:ratio"} | {
    f"pingmon:check_errors:ratio_rate{window}"
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
}


def load_yaml(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(path.read_text()))


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


ALERTS = {rule["alert"]: rule for rule in rules() if "alert" in rule}


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, - for space."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_rule_file_defines_exactly_the_contracted_alerts_and_recording_rules() -> None:
    records = {rule["record"] for rule in rules() if "record" in rule}
    assert set(ALERTS) == CONTRACT_ALERTS
    assert records == CONTRACT_RECORDS


def test_rule_file_passes_promtool_check_with_every_lint_fatal() -> None:
    done = run(
        require_tool("promtool"), "check", "rules", "--lint=all", "--lint-fatal", str(RULES)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    done = run(require_tool("promtool"), "test", "rules", str(RULES_TEST))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_fail_when_an_expected_label_is_altered(tmp_path: Path) -> None:
    suite = load_yaml(RULES_TEST)
    test, case = next(
        (test, case)
        for test in suite["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == "PingmonTargetFailing" and case["exp_alerts"]
    )
    case["exp_alerts"][0]["exp_labels"]["severity"] = "warning"
    suite["rule_files"] = [str(RULES)]
    suite["tests"] = [test]  # the altered test alone keeps this quick
    altered = tmp_path / "altered_test.yml"
    altered.write_text(yaml.safe_dump(suite, sort_keys=False))

    done = run(require_tool("promtool"), "test", "rules", str(altered))

    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" in done.stdout + done.stderr
    assert "alertname: PingmonTargetFailing, time: 4m" in done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(CONTRACT_ALERTS))
def test_alert_has_severity_summary_description_and_its_runbook_url(name: str) -> None:
    alert = ALERTS[name]
    assert alert["labels"]["severity"] in {"critical", "warning"}
    annotations = alert["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower()


def test_every_runbook_url_anchor_is_a_heading_of_runbooks_md() -> None:
    headings = re.findall(r"^## (.+)$", RUNBOOKS.read_text(), flags=re.MULTILINE)
    anchors = {github_anchor(heading) for heading in headings}
    missing = {
        name
        for name, alert in ALERTS.items()
        if alert["annotations"]["runbook_url"].removeprefix(RUNBOOK_BASE) not in anchors
    }
    assert not missing, f"no '## <AlertName>' section in docs/runbooks.md for {sorted(missing)}"


def test_every_alert_is_exercised_by_the_promtool_unit_tests() -> None:
    tested = {
        case["alertname"]
        for test in load_yaml(RULES_TEST)["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert tested == set(ALERTS), f"untested: {sorted(set(ALERTS) - tested)}"


def test_every_alert_fires_in_at_least_one_promtool_unit_test() -> None:
    fired = {
        case["alertname"]
        for test in load_yaml(RULES_TEST)["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert fired == set(ALERTS), f"never seen firing: {sorted(set(ALERTS) - fired)}"


def test_every_alert_is_documented_in_alerts_md() -> None:
    doc = ALERTS_DOC.read_text()
    missing = {name for name in ALERTS if f"`{name}`" not in doc}
    assert not missing, f"not in docs/alerts.md: {sorted(missing)}"


# PingmonWebhookNotDelivered requires the ping's current success: a ping answered before a failure
# can still be missed during it, and the alert must stay silent while the ping fails, from the
# first failed check. A suite of its own, evaluated every 15 s between the minute samples.
GUARD = "pingmon_check_success == 1"
FIRING = "ALERTS{alertname='PingmonWebhookNotDelivered'}"
GUARD_SUITE: dict[str, Any] = {
    "evaluation_interval": "15s",
    "tests": [
        {
            "interval": "15s",
            "input_series": [
                {
                    "series": f"{name}{{job='pingmon',provider='pbx',target='pbx-main'}}",
                    "values": v,
                }
                for name, v in (
                    # Two misses from 2m; the ping fails from 3m15s, right after a minute's sample.
                    ("pingmon_webhook_consecutive_misses", "0x7 2x12"),
                    ("pingmon_check_success", "1x12 0x6"),
                    ("pingmon_webhook_timeout_seconds", "60x18"),
                )
            ],
            "promql_expr_test": [
                {
                    "expr": FIRING,
                    "eval_time": "3m",
                    "exp_samples": [
                        {
                            "labels": "ALERTS{alertname='PingmonWebhookNotDelivered',"
                            "alertstate='firing',job='pingmon',provider='pbx',"
                            "severity='critical',target='pbx-main'}",
                            "value": 1,
                        }
                    ],
                },
                {"expr": FIRING, "eval_time": "3m15s", "exp_samples": []},
                {"expr": FIRING, "eval_time": "3m45s", "exp_samples": []},
            ],
        }
    ],
}


def run_guard_suite(tmp_path: Path, rules_text: str) -> subprocess.CompletedProcess[str]:
    rules_copy = tmp_path / "rules.yml"
    rules_copy.write_text(rules_text)
    suite = tmp_path / "guard_test.yml"
    suite.write_text(yaml.safe_dump({"rule_files": [str(rules_copy)], **GUARD_SUITE}))
    return run(require_tool("promtool"), "test", "rules", str(suite))


def test_webhook_not_delivered_is_silent_as_soon_as_the_ping_fails(tmp_path: Path) -> None:
    done = run_guard_suite(tmp_path, RULES.read_text())
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_the_ping_success_guard_the_webhook_alert_would_fire_on_a_failing_ping(
    tmp_path: Path,
) -> None:
    rules_text = RULES.read_text()
    assert rules_text.count(GUARD) == 1
    done = run_guard_suite(tmp_path, rules_text.replace(GUARD, "pingmon_check_success >= 0"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "expr: \"ALERTS{alertname='PingmonWebhookNotDelivered'}\", time: 3m15s" in (
        done.stdout + done.stderr
    )
