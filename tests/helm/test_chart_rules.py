"""The chart's PrometheusRule carries exactly the groups of config/alerts/pingmon.rules.yml."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import (
    CHART,
    CHART_RULES,
    RULES,
    STAND_IN_RULES,
    Helm,
    Manifest,
    chart_copy,
    helm_in,
    one,
)
from tests.tools import require_tool

ENABLE_RULE = ["prometheusRule.enabled=true"]


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return helm_in(tmp_path / "helm-home")


def rule_groups(manifests: list[Manifest]) -> list[Any]:
    groups = one(manifests, "PrometheusRule")["spec"]["groups"]
    assert isinstance(groups, list)
    return groups


def source_groups(text: str) -> list[Any]:
    groups = yaml.safe_load(text)["groups"]
    assert isinstance(groups, list)
    return groups


def drift(chart_groups: list[Any], rules_text: str) -> bool:
    """True when the chart's groups are not exactly the rule file's."""
    return chart_groups != source_groups(rules_text)


def test_the_chart_reads_the_rules_through_a_symlink_to_config_alerts() -> None:
    link = CHART / CHART_RULES
    assert link.is_symlink()
    assert link.resolve() == RULES.resolve()


def test_the_prometheus_rule_groups_equal_config_alerts_rules(helm: Helm) -> None:
    assert RULES.exists(), f"{RULES} is missing: the chart's PrometheusRule has no source"
    rendered = rule_groups(helm.template(CHART, sets=ENABLE_RULE))
    assert not drift(rendered, RULES.read_text())


def test_a_modified_copy_of_the_rules_in_the_chart_is_detected_as_drift(
    helm: Helm, tmp_path: Path
) -> None:
    source = RULES.read_text() if RULES.exists() else STAND_IN_RULES
    first_rule = source_groups(source)[0]["rules"][0]
    field = "record" if "record" in first_rule else "alert"
    name = first_rule[field]
    altered = source.replace(f"{field}: {name}", f"{field}: {name}Renamed", 1)
    assert altered != source
    chart = chart_copy(tmp_path, rules=altered)
    rendered = rule_groups(helm.template(chart, sets=ENABLE_RULE))
    assert drift(rendered, source)
    assert not drift(rendered, altered)


def test_prometheus_templates_in_annotations_come_out_verbatim(helm: Helm, tmp_path: Path) -> None:
    chart = chart_copy(tmp_path, rules=STAND_IN_RULES)
    rule = rule_groups(helm.template(chart, sets=ENABLE_RULE))[0]["rules"][0]
    assert (
        rule["annotations"]["summary"] == "{{ $labels.provider }}/{{ $labels.target }} is failing"
    )
    assert (
        rule["annotations"]["description"]
        == "{{ $labels.target }} failed {{ $value }} checks in a row."
    )


def promtool_check_rules(rules: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_rendered_rule_groups_pass_promtool_check_rules(helm: Helm, tmp_path: Path) -> None:
    chart = chart_copy(tmp_path)
    rules = tmp_path / "chart-rules.yml"
    groups = rule_groups(helm.template(chart, sets=ENABLE_RULE))
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    done = promtool_check_rules(rules)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_check_rules_fails_on_a_broken_expression(tmp_path: Path) -> None:
    rules = tmp_path / "broken.yml"
    rules.write_text("groups: [{name: g, rules: [{alert: A, expr: 'rate(x[5m]'}]}]\n")
    done = promtool_check_rules(rules)
    assert done.returncode == 1


def test_the_prometheus_rule_takes_extra_labels_for_the_prometheus_selector(
    helm: Helm, tmp_path: Path
) -> None:
    chart = chart_copy(tmp_path)
    sets = [*ENABLE_RULE, "prometheusRule.labels.release=kube-prometheus-stack"]
    labels = one(helm.template(chart, sets=sets), "PrometheusRule")["metadata"]["labels"]
    assert labels["release"] == "kube-prometheus-stack"
    assert labels["app.kubernetes.io/name"] == "pingmon"


def test_a_rules_file_without_groups_fails_the_render_with_its_name(
    helm: Helm, tmp_path: Path
) -> None:
    chart = chart_copy(tmp_path, rules="not: rules\n")
    done = helm.run(
        "template",
        "rel",
        chart,
        "--api-versions",
        "monitoring.coreos.com/v1",
        "--set",
        ENABLE_RULE[0],
        check=False,
    )
    assert done.returncode == 1
    assert "config/alerts/pingmon.rules.yml) has no rule groups" in done.stderr


def test_helm_package_stores_the_rules_content_not_a_link(helm: Helm, tmp_path: Path) -> None:
    assert RULES.exists(), f"{RULES} is missing"
    helm.run("package", CHART, "--destination", tmp_path)
    with tarfile.open(tmp_path / "pingmon-0.1.0.tgz") as archive:
        member = archive.getmember(f"pingmon/{CHART_RULES}")
        assert member.isfile()
        stored = archive.extractfile(member)
        assert stored is not None
        assert stored.read().decode() == RULES.read_text()
