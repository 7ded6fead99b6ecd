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
    "PingmonErrorBudgetBurnFast",
    "PingmonErrorBudgetBurnSlow",
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
