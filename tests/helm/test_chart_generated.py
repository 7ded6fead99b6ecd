"""The chart's generated parts are current (scripts/chart_sync.py): config is checked against
pingmon's own JSON Schema, the dashboard copy equals config/grafana's, the README lists every
value; and a typo inside config is refused by helm itself, with its path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import CHART, REPO, Helm, chart_copy, helm_in

SYNC = REPO / "scripts" / "chart_sync.py"
DASHBOARD = REPO / "config" / "grafana" / "pingmon.json"


@pytest.fixture(params=["helm", "helm3"])
def helm(request: pytest.FixtureRequest, tmp_path: Path) -> Helm:
    binary: str = request.param
    return helm_in(tmp_path / "helm-home", binary)


def sync(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SYNC), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def walk(node: Any) -> list[Any]:
    """Every dict and list inside a JSON document."""
    found = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found += walk(child)
    return found


def test_the_generated_parts_of_the_chart_are_current() -> None:
    done = sync("--check")
    assert done.returncode == 0, f"{done.stderr}run: python scripts/chart_sync.py"


def test_the_config_schema_is_pingmon_config_schema_as_printed_by_the_cli() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "pingmon", "config", "schema"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    pingmon = json.loads(printed)
    chart = json.loads((CHART / "values.schema.json").read_text())
    config = chart["properties"]["config"]
    assert set(config["properties"]) == set(pingmon["properties"])
    assert {f"config.{name}" for name in pingmon["$defs"]} == set(chart["definitions"])
    assert config["additionalProperties"] is False
    refs = {n["$ref"] for n in walk(chart) if isinstance(n, dict) and "$ref" in n}
    assert refs
    assert all(ref.startswith("#/definitions/config.") for ref in refs)
    assert all(ref.removeprefix("#/definitions/") in chart["definitions"] for ref in refs)


def test_secrets_in_the_config_schema_are_references_only() -> None:
    chart = json.loads((CHART / "values.schema.json").read_text())
    for node in walk(chart):
        if isinstance(node, dict) and "anyOf" in node:
            branches = node["anyOf"]
            if any(set(b.get("properties", {})) in ({"env"}, {"file"}) for b in branches):
                assert all(b.get("type") == "object" for b in branches), branches


def test_check_names_stale_files_and_a_sync_rewrites_them(tmp_path: Path) -> None:
    chart = tmp_path / "pingmon"
    shutil.copytree(CHART, chart, symlinks=True)
    (chart / "README.md").write_text("# stale\n")
    (chart / "files" / "pingmon.json").write_text("{}\n")
    schema = json.loads((chart / "values.schema.json").read_text())
    del schema["properties"]["config"]["properties"]["concurrency"]
    (chart / "values.schema.json").write_text(json.dumps(schema, indent=2) + "\n")

    done = sync("--check", "--chart", chart)
    assert done.returncode == 1
    stale = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("stale: ")]
    assert sorted(Path(path).name for path in stale) == [
        "README.md",
        "pingmon.json",
        "values.schema.json",
    ]

    assert sync("--chart", chart).returncode == 0
    assert sync("--check", "--chart", chart).returncode == 0
    assert (chart / "files" / "pingmon.json").read_text() == DASHBOARD.read_text()


def test_the_readme_has_a_row_for_every_value_in_values_yaml() -> None:
    """A row for the value, for the free-form object holding it (resources, ...), or for the
    keys an empty object may take (web.config)."""
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def keys(node: object, path: str) -> list[str]:
        if path == "config" or not isinstance(node, dict) or not node:
            return [path]
        return [key for name, child in node.items() for key in keys(child, f"{path}.{name}")]

    leaves = [key.removeprefix(".") for name, v in values.items() for key in keys(v, name)]
    leaves = [key for key in leaves if not key.startswith(".")]

    def listed(key: str) -> bool:
        parts = key.split(".")
        prefixes = (".".join(parts[:end]) for end in range(len(parts), 0, -1))
        described = any(f"| `{prefix}` |" in readme for prefix in prefixes)
        return described or f"| `{key}." in readme  # an empty object whose keys have rows

    missing = [key for key in leaves if not listed(key)]
    assert not missing, f"not in helm/pingmon/README.md: {missing}"


def test_a_changed_value_description_makes_the_readme_stale(tmp_path: Path) -> None:
    chart = tmp_path / "pingmon"
    shutil.copytree(CHART, chart, symlinks=True)
    schema = json.loads((chart / "values.schema.json").read_text())
    schema["properties"]["replicaCount"]["description"] = "Changed."
    (chart / "values.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    done = sync("--check", "--chart", chart)
    assert done.returncode == 1
    assert "README.md" in done.stderr


CONFIG_TYPOS = [
    ("config.defaults.intervl=60s", "/config/defaults", "'intervl'"),
    ("config.concurrncy=5", "/config", "'concurrncy'"),
    ("config.targets[0].timeot=5s", "/config/targets/0", "'timeot'"),
    ("config.providers.status-page.api_ke.env=X", "/config/providers/status-page", "'api_ke'"),
    ("config.backoff.multiplier=ten", "/config/backoff/multiplier", ""),
]
HELM3_PATH = {"/config": "config", "/config/defaults": "config.defaults"}


@pytest.mark.parametrize(("assignment", "where", "what"), CONFIG_TYPOS)
def test_a_typo_inside_config_is_refused_by_helm_with_its_path(
    helm: Helm, tmp_path: Path, assignment: str, where: str, what: str
) -> None:
    base = [
        "config.providers.status-page.type=http",
        "config.providers.status-page.base_url=https://status.example.com",
        "config.targets[0].name=status",
        "config.targets[0].provider=status-page",
    ]
    sets = [arg for assign in [*base, assignment] for arg in ("--set", assign)]
    done = helm.run("template", "rel", chart_copy(tmp_path), *sets, check=False)
    assert done.returncode == 1
    helm3_where = HELM3_PATH.get(where, where.strip("/").replace("/", "."))
    assert f"at '{where}'" in done.stderr or f"- {helm3_where}" in done.stderr, done.stderr
    assert what.strip("'") in done.stderr


def test_the_same_values_without_the_typo_render(helm: Helm, tmp_path: Path) -> None:
    sets = [
        "config.providers.status-page.type=http",
        "config.providers.status-page.base_url=https://status.example.com",
        "config.targets[0].name=status",
        "config.targets[0].provider=status-page",
        "config.targets[0].timeout=5s",
        "config.defaults.interval=60s",
    ]
    helm.run("template", "rel", chart_copy(tmp_path), *[a for s in sets for a in ("--set", s)])
