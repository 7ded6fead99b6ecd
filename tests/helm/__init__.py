"""Drive the real helm binary over helm/pingmon: render, parse and find objects in the output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.tools import require_tool

REPO = Path(__file__).resolve().parent.parent.parent
CHART = REPO / "helm" / "pingmon"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
RULES = REPO / "config" / "alerts" / "pingmon.rules.yml"
CHART_RULES = "files/pingmon.rules.yml"
CRD_API = "monitoring.coreos.com/v1"

# A small rules file for tests that swap the chart's rules. Its annotations carry Prometheus
# template syntax on purpose: the chart must pass it through verbatim.
STAND_IN_RULES = """\
groups:
  - name: pingmon-stand-in
    rules:
      - alert: PingmonTargetFailing
        expr: pingmon_check_consecutive_failures >= 3
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.provider }}/{{ $labels.target }} is failing"
          description: "{{ $labels.target }} failed {{ $value }} checks in a row."
"""

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Helm:
    """The helm binary with its cache, config and data homes in a temporary directory."""

    binary: str
    env: dict[str, str]

    def run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.binary, *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, f"helm {' '.join(map(str, args))}:\n{done.stderr}"
        return done

    def template_text(
        self,
        chart: Path,
        *values_files: Path,
        sets: Sequence[str] = (),
        kube_version: str = "1.30.0",
        crd_api: bool = True,
        release: str = "rel",
    ) -> str:
        args: list[str | Path] = [
            "template",
            release,
            chart,
            "--namespace",
            "apps",
            "--kube-version",
            kube_version,
        ]
        if crd_api:
            args += ["--api-versions", CRD_API]
        for values in values_files:
            args += ["--values", values]
        for assignment in sets:
            args += ["--set", assignment]
        return self.run(*args).stdout

    def template(
        self,
        chart: Path,
        *values_files: Path,
        sets: Sequence[str] = (),
        kube_version: str = "1.30.0",
        crd_api: bool = True,
    ) -> list[Manifest]:
        text = self.template_text(
            chart, *values_files, sets=sets, kube_version=kube_version, crd_api=crd_api
        )
        return [doc for doc in yaml.safe_load_all(text) if doc]


def kubernetes_validate(
    manifests: str, version: str = "1.30.0"
) -> subprocess.CompletedProcess[str]:
    """kubernetes-validate --strict on these manifests (CRD kinds only warn, silenced here)."""
    return subprocess.run(
        [
            require_tool("kubernetes-validate"),
            "--strict",
            "--quiet",
            "--no-warn",
            "-k",
            version,
            "-",
        ],
        input=manifests,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def helm_in(home: Path, binary: str = "helm") -> Helm:
    """A Helm (``helm`` is v4, ``helm3`` v3) that writes nothing outside home."""
    env = dict(os.environ)
    for name in ("CACHE", "CONFIG", "DATA"):
        env[f"HELM_{name}_HOME"] = str(home / name.lower())
    return Helm(require_tool(binary), env)


def chart_copy(dest: Path, rules: str | None = None) -> Path:
    """A plain copy of the chart (symlinks copied as links, as `cp -r` does), its rules file
    replaced by `rules` if given."""
    copy = dest / "pingmon"
    shutil.copytree(CHART, copy, symlinks=True)
    if rules is not None:
        (copy / CHART_RULES).write_text(rules)
    return copy


def one(manifests: list[Manifest], kind: str) -> Manifest:
    """The only object of this kind."""
    found = kinds(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}: {names(manifests)}"
    return found[0]


def kinds(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in manifests if doc["kind"] == kind]


def names(manifests: list[Manifest]) -> list[str]:
    return sorted(f"{doc['kind']}/{doc['metadata']['name']}" for doc in manifests)


def container(pod_spec: Manifest, name: str = "pingmon", init: bool = False) -> Manifest:
    """The named container (or init container) of a pod spec."""
    listed = pod_spec.get("initContainers" if init else "containers") or []
    found = [c for c in listed if c["name"] == name]
    assert len(found) == 1, f"no {'init ' if init else ''}container {name}: {listed}"
    return dict(found[0])


def secret_refs(node: object, path: str = "config") -> Iterator[tuple[str, str, str]]:
    """Every {env: NAME} / {file: PATH} in a pingmon config: (where, "env"|"file", value)."""
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)) in ("env", "file"):
            kind, value = next(iter(node.items()))
            yield path, kind, value
            return
        for key, value in node.items():
            yield from secret_refs(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from secret_refs(value, f"{path}[{index}]")


def config_text(manifests: list[Manifest]) -> str:
    """The pingmon.yaml the ConfigMap carries (not the dashboard's ConfigMap)."""
    configs = [doc for doc in kinds(manifests, "ConfigMap") if "pingmon.yaml" in doc["data"]]
    assert len(configs) == 1, names(manifests)
    text = configs[0]["data"]["pingmon.yaml"]
    assert isinstance(text, str)
    return text


def run_validate(
    config: str, tmp_path: Path, env_names: set[str], overrides: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`pingmon config validate` on this text, with dummy values for the secrets it names and
    these ``PINGMON_*`` overrides (as a pod's environment would set them)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PINGMON_")}
    env.update({name: f"dummy-{name.lower()}" for name in env_names})
    env.update(overrides or {})
    path = tmp_path / "pingmon.yaml"
    path.write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "pingmon", "config", "validate", "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def with_local_secret_files(config: str, tmp_path: Path) -> tuple[str, set[str]]:
    """The config with each {file: PATH} moved to a dummy file here, and the env names it reads."""
    env_names: set[str] = set()
    for index, (_, kind, value) in enumerate(secret_refs(yaml.safe_load(config))):
        if kind == "env":
            env_names.add(value)
        else:
            local = tmp_path / f"secret-{index}"
            local.write_text("dummy\n")
            config = config.replace(value, str(local))
    return config, env_names


def render_doc_values(helm: Helm, chart: Path, tmp_path: Path, name: str) -> list[Manifest]:
    """The values file docs/kubernetes.md shows under ``# NAME``, rendered; the manifests,
    once they passed kubernetes-validate."""
    doc = (REPO / "docs" / "kubernetes.md").read_text()
    start = doc.index(f"# {name}\n")
    values = tmp_path / name
    values.write_text(doc[start : doc.index("```", start)])
    rendered = helm.template_text(chart, values)
    done = kubernetes_validate(rendered)
    assert done.returncode == 0, done.stdout + done.stderr
    return [manifest for manifest in yaml.safe_load_all(rendered) if manifest]
