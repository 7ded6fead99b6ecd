"""A monitor never takes the application down: the sidecar as the example app chart renders
it has no readiness gate, optional Secret references and a pingmon that survives a refused
configuration (run for real here), and its NetworkPolicy names the port by number."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.helm import (
    CHART,
    REPO,
    Helm,
    Manifest,
    chart_copy,
    config_text,
    container,
    helm_in,
    one,
)
from tests.processes import Process, eventually, free_port

EXAMPLE = REPO / "docs" / "examples" / "app-chart"
SIDECAR = CHART / "ci" / "sidecar.yaml"
ALLOW_INVALID = "--config.allow-invalid-at-start"


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return helm_in(tmp_path / "helm-home")


@pytest.fixture
def app_chart(helm: Helm, tmp_path: Path) -> Path:
    """The example application chart with pingmon vendored, as `helm dependency build` does."""
    app = tmp_path / "app-chart"
    shutil.copytree(EXAMPLE, app)
    helm.run("package", chart_copy(tmp_path / "vendor"), "--destination", app / "charts")
    return app


def render(helm: Helm, app: Path, *sets: str, kube_version: str = "1.30.0") -> list[Manifest]:
    text = helm.template_text(app, sets=sets, kube_version=kube_version, release="shop")
    return [doc for doc in yaml.safe_load_all(text) if doc]


def sidecar(manifests: list[Manifest], native: bool = False) -> Manifest:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    return container(pod, init=native)


def pod_volumes(manifests: list[Manifest]) -> dict[str, Manifest]:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    return {volume["name"]: volume for volume in pod["volumes"]}


@pytest.mark.parametrize("native", [False, True])
def test_the_sidecar_has_no_readiness_probe_unless_asked(
    helm: Helm, app_chart: Path, native: bool
) -> None:
    form = f"pingmon.sidecar.native={str(native).lower()}"
    assert "readinessProbe" not in sidecar(render(helm, app_chart, form), native)
    asked = sidecar(render(helm, app_chart, form, "pingmon.sidecar.readinessProbe=true"), native)
    assert asked["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "pingmon"}
    assert asked["readinessProbe"]["periodSeconds"] == 5


def test_the_sidecar_keeps_its_liveness_probe(helm: Helm, app_chart: Path) -> None:
    """A failed liveness probe restarts pingmon's container only, never the application."""
    probe = sidecar(render(helm, app_chart))["livenessProbe"]
    assert probe["httpGet"] == {"path": "/-/healthy", "port": "pingmon"}


def test_the_sidecar_secret_references_are_optional(helm: Helm, app_chart: Path) -> None:
    manifests = render(helm, app_chart)
    env = sidecar(manifests)["env"]
    assert [var["valueFrom"]["secretKeyRef"].get("optional") for var in env] == [True, True]
    assert pod_volumes(manifests)["pingmon-secret-0"]["secret"]["optional"] is True


def test_required_secret_references_when_the_sidecar_is_told_so(
    helm: Helm, app_chart: Path
) -> None:
    manifests = render(helm, app_chart, "pingmon.sidecar.optionalSecrets=false")
    assert all(
        "optional" not in var["valueFrom"]["secretKeyRef"] for var in sidecar(manifests)["env"]
    )
    assert "optional" not in pod_volumes(manifests)["pingmon-secret-0"]["secret"]


def test_standalone_secret_references_stay_required(helm: Helm, tmp_path: Path) -> None:
    full = CHART / "ci" / "standalone-full.yaml"
    manifests = helm.template(chart_copy(tmp_path), full)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert all("optional" not in var["valueFrom"].get("secretKeyRef", {})
               for var in container(pod)["env"])  # fmt: skip
    assert all("optional" not in v.get("secret", {}) for v in pod["volumes"])
    assert ALLOW_INVALID not in container(pod)["args"]


def test_the_sidecar_runs_pingmon_with_allow_invalid_at_start_unless_told_not_to(
    helm: Helm, app_chart: Path
) -> None:
    assert sidecar(render(helm, app_chart))["args"][-1] == ALLOW_INVALID
    strict = sidecar(render(helm, app_chart, "pingmon.sidecar.allowInvalidConfig=false"))
    assert ALLOW_INVALID not in strict["args"]


@pytest.fixture
def rendered_sidecar(helm: Helm, app_chart: Path, tmp_path: Path) -> tuple[list[str], Path, int]:
    """The sidecar's command line as rendered, its ConfigMap written to a local file (listen
    moved to a free loopback port), and that port."""
    manifests = render(helm, app_chart)
    args = sidecar(manifests)["args"]
    port = free_port()
    config = yaml.safe_load(config_text(manifests))
    config["listen"] = f"127.0.0.1:{port}"
    config["watch"] = {"interval": "0.2s"}
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(config))
    local = [f"--config={path}" if arg.startswith("--config=") else arg for arg in args]
    return local, path, port


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        return str(response.read().decode())


def ready_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_rendered_sidecar_serves_metrics_while_its_secrets_are_missing(
    rendered_sidecar: tuple[list[str], Path, int], tmp_path: Path
) -> None:
    """The Secret the sidecar's env names does not exist (an optional reference: the variable
    is unset). pingmon run, with the chart's own arguments, keeps serving /metrics with the
    failure visible instead of exiting 2, which would crash-loop inside the application's pod."""
    args, _, port = rendered_sidecar
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PINGMON_", "STRIPE", "SIMOTEL"))
    }
    process = Process("pingmon", [sys.executable, "-m", "pingmon", *args], tmp_path / "log", env)
    process.start()
    try:
        eventually(lambda: "pingmon_config_last_reload_successful 0.0" in metrics(port),
                   "gauge 0 on /metrics", process.tail)  # fmt: skip
        assert ready_status(port) == 503
        assert process.running
        log = (tmp_path / "log").read_text()
        assert "environment variable STRIPE_API_KEY is not set" in log
    finally:
        assert process.stop() == 0


def test_without_allow_invalid_the_same_sidecar_would_exit_2(
    rendered_sidecar: tuple[list[str], Path, int],
) -> None:
    args, _, _ = rendered_sidecar
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PINGMON_", "STRIPE", "SIMOTEL"))
    }
    strict = [arg for arg in args if arg != ALLOW_INVALID]
    done = subprocess.run([sys.executable, "-m", "pingmon", *strict], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "STRIPE_API_KEY is not set" in done.stderr


@pytest.mark.parametrize("listen", ["0.0.0.0:9108", "0.0.0.0:9200"])
def test_the_sidecar_network_policy_names_the_port_by_number(
    helm: Helm, tmp_path: Path, listen: str
) -> None:
    manifests = helm.template(chart_copy(tmp_path), SIDECAR, sets=[f"config.listen={listen}"])
    policy = one(manifests, "NetworkPolicy")["spec"]
    port = int(listen.rsplit(":", 1)[1])
    assert [rule["ports"] for rule in policy["ingress"]] == [[{"port": port, "protocol": "TCP"}]]
