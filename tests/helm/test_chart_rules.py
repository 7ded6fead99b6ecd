"""The chart's PrometheusRule carries exactly config/alerts/pingmon.rules.yml, from a real copy."""

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


def file_drift(copy: Path, source: Path) -> str | None:
    """Why the chart's copy of the rules is not the source, byte for byte, or None."""
    if copy.is_symlink():
        return f"{copy} is a symlink: a copied chart would not render"
    if copy.read_bytes() != source.read_bytes():
        return f"{copy} differs from {source}: run `cp {source} {copy}`"
    return None


def test_the_chart_contains_no_symlink_so_a_copy_is_self_contained() -> None:
    links = sorted(str(path.relative_to(CHART)) for path in CHART.rglob("*") if path.is_symlink())
    assert links == []


def test_the_charts_rules_file_is_a_byte_identical_copy_of_config_alerts() -> None:
    assert file_drift(CHART / CHART_RULES, RULES) is None


@pytest.mark.parametrize("change", ["edited", "symlink"])
def test_the_drift_check_refuses_an_edited_copy_and_a_symlink(tmp_path: Path, change: str) -> None:
    copy = tmp_path / "pingmon.rules.yml"
    if change == "edited":
        copy.write_bytes(RULES.read_bytes().replace(b"severity: critical", b"severity: page", 1))
    else:
        copy.symlink_to(RULES)
    assert file_drift(copy, RULES) is not None
    assert file_drift(RULES, RULES) is None


@pytest.mark.parametrize("sets", [[], ENABLE_RULE], ids=["defaults", "rules-enabled"])
def test_a_chart_copied_with_cp_r_renders(helm: Helm, tmp_path: Path, sets: list[str]) -> None:
    copied = tmp_path / "elsewhere"
    copied.mkdir()
    done = subprocess.run(
        [require_tool("cp"), "-r", str(CHART), str(copied)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    manifests = helm.template(copied / "pingmon", sets=sets)
    assert one(manifests, "Deployment")["metadata"]["name"] == "rel-pingmon"
    if sets:
        assert not drift(rule_groups(manifests), RULES.read_text())


def test_the_prometheus_rule_groups_equal_config_alerts_rules(helm: Helm) -> None:
    rendered = rule_groups(helm.template(CHART, sets=ENABLE_RULE))
    assert not drift(rendered, RULES.read_text())


def test_a_modified_copy_of_the_rules_in_the_chart_is_detected_as_drift(
    helm: Helm, tmp_path: Path
) -> None:
    source = RULES.read_text()
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
    helm.run("package", CHART, "--destination", tmp_path)
    with tarfile.open(tmp_path / "pingmon-0.1.0.tgz") as archive:
        member = archive.getmember(f"pingmon/{CHART_RULES}")
        assert member.isfile()
        stored = archive.extractfile(member)
        assert stored is not None
        assert stored.read().decode() == RULES.read_text()
