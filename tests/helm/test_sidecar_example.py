"""docs/examples/app-chart: an application chart with pingmon as its sidecar, rendered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.helm import (
    REPO,
    Helm,
    Manifest,
    chart_copy,
    container,
    helm_in,
    kinds,
    kubernetes_validate,
    one,
)

EXAMPLE = REPO / "docs" / "examples" / "app-chart"
DOC = REPO / "docs" / "kubernetes.md"
EXAMPLE_FILES = sorted(
    path.relative_to(EXAMPLE).as_posix() for path in EXAMPLE.rglob("*") if path.is_file()
)


@pytest.fixture(params=["helm", "helm3"])
def helm(request: pytest.FixtureRequest, tmp_path: Path) -> Helm:
    """Application charts are installed with Helm 4 and, in most clusters still, Helm 3."""
    binary: str = request.param
    return helm_in(tmp_path / "helm-home", binary)


@pytest.fixture
def app_chart(helm: Helm, tmp_path: Path) -> Path:
    """The example chart with pingmon vendored into charts/, as `helm dependency build` does."""
    app = tmp_path / "app-chart"
    shutil.copytree(EXAMPLE, app)
    helm.run("package", chart_copy(tmp_path / "vendor"), "--destination", app / "charts")
    return app


def render(helm: Helm, app: Path, kube_version: str) -> tuple[str, list[Manifest]]:
    text = helm.template_text(app, kube_version=kube_version, release="shop")
    return text, [doc for doc in yaml.safe_load_all(text) if doc]


def pod_spec(manifests: list[Manifest]) -> Manifest:
    deployment = one(manifests, "Deployment")
    assert deployment["metadata"]["name"] == "shop-shop"
    spec = deployment["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def test_the_example_declares_pingmon_as_a_file_dependency_of_the_chart_in_this_repo() -> None:
    chart = yaml.safe_load((EXAMPLE / "Chart.yaml").read_text())
    (dependency,) = chart["dependencies"]
    assert dependency["name"] == "pingmon"
    assert dependency["repository"] == "file://../../../helm/pingmon"
    target = (EXAMPLE / dependency["repository"].removeprefix("file://")).resolve()
    assert target == (REPO / "helm" / "pingmon").resolve()


def test_helm_dependency_build_vendors_pingmon_offline(helm: Helm, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLE, docs / "examples" / "app-chart")
    chart_copy(tmp_path / "helm")  # ../../../helm/pingmon as seen from the copy
    done = helm.run("dependency", "build", docs / "examples" / "app-chart")
    assert "Saving 1 charts" in done.stdout + done.stderr
    assert (docs / "examples" / "app-chart" / "charts" / "pingmon-0.1.0.tgz").is_file()


@pytest.mark.parametrize("kube_version", ["1.30.0", "1.28.0"])
def test_the_example_passes_lint_and_kubernetes_validate(
    helm: Helm, app_chart: Path, kube_version: str
) -> None:
    linted = helm.run("lint", "--strict", app_chart, "--kube-version", kube_version, check=False)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    text = render(helm, app_chart, kube_version)[0]
    done = kubernetes_validate(text, kube_version)
    assert done.returncode == 0, done.stdout + done.stderr


def test_native_true_on_1_30_makes_pingmon_a_native_sidecar_init_container(
    helm: Helm, app_chart: Path
) -> None:
    text = helm.template_text(app_chart, sets=["pingmon.sidecar.native=true"], release="shop")
    spec = pod_spec([doc for doc in yaml.safe_load_all(text) if doc])
    assert [c["name"] for c in spec["containers"]] == ["shop"]
    pingmon = container(spec, init=True)
    assert pingmon["restartPolicy"] == "Always"


@pytest.mark.parametrize("kube_version", ["1.28.0", "1.30.0"])
def test_by_default_pingmon_is_a_regular_container_beside_the_app_on_any_version(
    helm: Helm, app_chart: Path, kube_version: str
) -> None:
    spec = pod_spec(render(helm, app_chart, kube_version)[1])
    assert [c["name"] for c in spec["containers"]] == ["shop", "pingmon"]
    assert "initContainers" not in spec
    assert "restartPolicy" not in container(spec)


def test_native_true_for_a_cluster_older_than_1_29_fails_the_render_saying_so(
    helm: Helm, app_chart: Path
) -> None:
    done = helm.run(
        "template", "shop", app_chart, "--kube-version", "1.28.0", "--api-versions",
        "monitoring.coreos.com/v1", "--set", "pingmon.sidecar.native=true", check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "sidecar.native: true needs Kubernetes 1.29 or later" in done.stderr
    assert "set sidecar.native: false" in done.stderr


def test_native_auto_is_refused_by_the_schema_so_the_form_is_never_guessed(
    helm: Helm, app_chart: Path
) -> None:
    done = helm.run("template", "shop", app_chart, "--set", "pingmon.sidecar.native=auto",
                    check=False)  # fmt: skip
    assert done.returncode == 1
    helm4, helm3 = "/sidecar/native': got string, want boolean", "native: Invalid type"
    assert helm4 in done.stderr or helm3 in done.stderr, done.stderr


@pytest.mark.parametrize(("kube_version", "init"), [("1.30.0", True), ("1.28.0", False)])
def test_the_sidecar_mounts_its_configmap_and_secrets_with_liveness_and_a_safe_context(
    helm: Helm, app_chart: Path, kube_version: str, init: bool
) -> None:
    native = [f"pingmon.sidecar.native={str(init).lower()}"]
    text = helm.template_text(app_chart, sets=native, kube_version=kube_version, release="shop")
    manifests = [doc for doc in yaml.safe_load_all(text) if doc]
    spec = pod_spec(manifests)
    pingmon = container(spec, init=init)
    configmap = one(manifests, "ConfigMap")
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["pingmon-config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert volumes["pingmon-secret-0"]["secret"]["secretName"] == "shop-simotel"
    mounts = {mount["name"]: mount["mountPath"] for mount in pingmon["volumeMounts"]}
    assert mounts == {
        "pingmon-config": "/etc/pingmon",
        "pingmon-secret-0": "/var/run/secrets/simotel",
    }
    assert pingmon["env"][0]["valueFrom"]["secretKeyRef"] == {
        "name": "shop-stripe",
        "key": "api-key",
        "optional": True,
    }
    assert pingmon["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "pingmon"}
    assert "readinessProbe" not in pingmon  # the sidecar never gates the app's readiness
    context = pingmon["securityContext"]
    assert context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_pod_monitor_selects_the_app_pods_by_the_sidecar_label(
    helm: Helm, app_chart: Path
) -> None:
    manifests = render(helm, app_chart, "1.30.0")[1]
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    monitor = one(manifests, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "pingmon"
    assert len(kinds(manifests, "PrometheusRule")) == 1
    assert kinds(manifests, "Service") == []  # no standalone pingmon beside the sidecar


def test_the_sidecar_templates_refuse_a_dependency_left_in_standalone_mode(
    helm: Helm, app_chart: Path
) -> None:
    done = helm.run(
        "template", "shop", app_chart, "--api-versions", "monitoring.coreos.com/v1",
        "--set", "pingmon.mode=standalone", check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "need pingmon's mode: sidecar" in done.stderr


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_docs_kubernetes_md_embeds_each_example_file_verbatim(name: str) -> None:
    content = (EXAMPLE / name).read_text()
    doc = DOC.read_text()
    assert f"`{name}`" in doc
    assert f"```yaml\n{content}```\n" in doc, f"{name} differs from its copy in {DOC.name}"
