"""docs/kubernetes.md and docs/alerts.md, walked through: every code block runs or is checked.

Commands run as written, in a copy of the repository, with a stand-in for the cluster
(tests/helm/docwalk.py); shell scripts run whole with bash; values files render and validate;
the YAML the docs quote is compared with what it quotes, and the output they show with what
helm prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.helm import CHART, RULES, kinds
from tests.helm.docwalk import (
    DOCS,
    SCRAPE_KINDS,
    Block,
    Walk,
    as_template,
    blocks,
    commands,
    install_problems,
    kind,
    run_script,
    secret_files,
)
from tests.tools import require_tool

BLOCKS: Final = [block for doc in DOCS for block in blocks(doc)]
ALERTS_MD: Final = DOCS[1]

# What a script's programs print when they pass.
SCRIPT_MARKERS: Final = {
    "helm lint": "0 chart(s) failed",
    "promtool check rules": "SUCCESS",
    "pingmon config validate": ": ok (",
}
# The command that prints each output block the docs show: a marker of the block -> --set's.
OUTPUT_COMMANDS: Final = {
    "additional properties 'enabeld' not allowed": ["serviceMonitor.enabeld=true"],
    "/config/providers/stripe/api_key": [
        "config.providers.stripe.type=stripe",
        "config.providers.stripe.api_key=sk_live_literal",
    ],
}


def of_kind(name: str) -> list[Any]:
    return [pytest.param(block, id=block.id) for block in BLOCKS if kind(block) == name]


def unavailable(message: str) -> None:
    """Fail in CI, where the suite runs as root; skip on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walk]:
    running = Walk.create(tmp_path / "work")
    try:
        yield running
    finally:
        running.stop()


def walk_commands(walk: Walk, block: Block) -> None:
    walk.write_values(block.doc)
    for line in commands(block.text):
        walk.command(line)


def test_every_code_block_of_both_docs_has_a_walker() -> None:
    unknown = [f"{block.id}: {block.text[:60]!r}" for block in BLOCKS if kind(block) is None]
    assert unknown == []
    assert {kind(block) for block in BLOCKS} >= {"commands", "script", "values", "output"}


def alerts_md_install(block: Block) -> bool:
    return block.doc == ALERTS_MD and kind(block) == "commands" and "helm " in block.text


def standalone_install(block: Block) -> bool:
    return block.doc == DOCS[0] and kind(block) == "commands" and "port-forward" in block.text


def one_block(predicate: Callable[[Block], bool]) -> Block:
    (block,) = [block for block in BLOCKS if predicate(block)]
    return block


@pytest.mark.parametrize(
    "block",
    [
        block
        for block in of_kind("commands")
        if not (alerts_md_install(block.values[0]) or standalone_install(block.values[0]))
    ],
)
def test_each_other_command_block_runs_as_written(walk: Walk, block: Block) -> None:
    walk_commands(walk, block)


def test_the_alerts_md_install_renders_the_scrape_with_the_rules_and_keeps_values(
    walk: Walk,
) -> None:
    walk_commands(walk, one_block(alerts_md_install))
    ((argv, manifests),) = walk.rendered
    assert argv[1] in ("install", "upgrade")
    assert {"-f", "my-values.yaml"} <= set(argv)
    assert [len(kinds(manifests, k)) for k in ("ServiceMonitor", "PrometheusRule")] == [1, 1]


def test_the_old_alerts_md_snippet_is_refused_for_both_of_its_faults(walk: Walk) -> None:
    argv = [
        "helm", "upgrade", "--install", "pingmon", "helm/pingmon",
        "--set", "prometheusRule.enabled=true",
        "--set", "prometheusRule.labels.release=kube-prometheus-stack",
    ]  # fmt: skip
    manifests = [doc for doc in yaml.safe_load_all(walk.ok(as_template(argv)).stdout) if doc]
    problems = install_problems(argv, manifests)
    assert len(problems) == 2
    assert "PingmonAbsent" in problems[0]
    assert "--reuse-values" in problems[1]


@pytest.mark.parametrize(
    ("argv", "rendered", "faults"),
    [
        (["helm", "install", "p", "c"], ["PrometheusRule", "PodMonitor"], 0),
        (["helm", "upgrade", "p", "c", "--values", "v.yaml"], ["PrometheusRule"], 1),
        (["helm", "upgrade", "--install", "p", "c", "--reuse-values"], ["Deployment"], 0),
        (["helm", "upgrade", "p", "c", "--set", "a=b"], ["ServiceMonitor"], 1),
        (["helm", "install", "p", "c"], ["PrometheusRule", "Deployment"], 1),
    ],
)
def test_install_problems_name_rules_without_a_scrape_and_upgrades_that_drop_values(
    argv: list[str], rendered: list[str], faults: int
) -> None:
    manifests = [{"kind": name, "metadata": {"name": "x"}} for name in rendered]
    assert len(install_problems(argv, manifests)) == faults


def test_the_standalone_install_serves_status_for_the_configured_targets(walk: Walk) -> None:
    """kubernetes.md "Install standalone": Secrets, install, port-forward and curl, in turn."""
    walk_commands(walk, one_block(standalone_install))
    ((_, manifests),) = walk.rendered
    assert {k for k in SCRAPE_KINDS if kinds(manifests, k)} == {"ServiceMonitor"}
    assert kinds(manifests, "PrometheusRule")
    config = yaml.safe_load((walk.root / "my-values.yaml").read_text())["config"]
    status = json.loads(walk.outputs[-1])
    assert [t["target"] for t in status["targets"]] == [t["name"] for t in config["targets"]]


@pytest.mark.parametrize("block", of_kind("script"))
def test_each_shell_script_block_runs_as_written_with_bash(walk: Walk, block: Block) -> None:
    if os.geteuid() != 0:
        unavailable("scripts run in a private mount namespace, which needs root")
    walk.write_values(block.doc)
    files = sorted(
        {
            path
            for values in blocks(block.doc)
            if values.values_name
            for path in secret_files(yaml.safe_load(values.text))
        }
    )
    done = run_script(walk, block, files)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    for program, marker in SCRIPT_MARKERS.items():
        if program in block.text:
            assert marker in output, f"{program}: no {marker!r} in\n{output[-6000:]}"


@pytest.mark.parametrize("block", of_kind("values"))
def test_each_values_block_renders_valid_manifests(walk: Walk, block: Block) -> None:
    walk.write_values(block.doc)
    assert block.values_name is not None
    documented = ["helm", "template", "pingmon", "./helm/pingmon", "-f", block.values_name]
    walk.render(documented, as_template(["helm", "install", *documented[2:]]))


@pytest.mark.parametrize("block", of_kind("output"))
def test_each_output_block_is_what_helm_prints(walk: Walk, block: Block) -> None:
    sets = [args for marker, args in OUTPUT_COMMANDS.items() if marker in block.text]
    assert len(sets) == 1, f"{block.id}: no command known to print {block.text!r}"
    argv = ["helm", "template", "pingmon", "./helm/pingmon"]
    done = walk.run([*argv, *(arg for value in sets[0] for arg in ("--set", value))])
    assert done.returncode == 1
    missing = [line for line in block.text.splitlines() if line not in done.stderr.splitlines()]
    assert missing == [], done.stderr


@pytest.mark.parametrize("block", of_kind("prometheus-config"))
def test_the_prometheus_config_block_passes_promtool_next_to_the_rules(
    tmp_path: Path, block: Block
) -> None:
    (tmp_path / "prometheus.yml").write_text(block.text)
    shutil.copyfile(RULES, tmp_path / "pingmon.rules.yml")
    done = subprocess.run(
        [require_tool("promtool"), "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout + done.stderr


@pytest.mark.parametrize("block", of_kind("rule-quote"))
def test_each_quoted_rule_is_a_rule_of_the_shipped_file(block: Block) -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    shipped = [rule for group in groups for rule in group["rules"]]
    for rule in yaml.safe_load(block.text):
        assert rule in shipped


@pytest.mark.parametrize("block", of_kind("security-context-quote"))
def test_the_quoted_security_context_is_what_the_chart_renders(walk: Walk, block: Block) -> None:
    rendered = walk.ok(["helm", "template", "pingmon", str(CHART)]).stdout
    (deployment,) = kinds([d for d in yaml.safe_load_all(rendered) if d], "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"] == yaml.safe_load(block.text)["securityContext"]
