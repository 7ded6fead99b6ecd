"""The values users of the prometheus-community charts reach for, under those names, each
rendered where it belongs: serviceAccount, extraEnv/extraVolumes/extraVolumeMounts,
topologySpreadConstraints, priorityClassName, podAnnotations, commonLabels,
global.imageRegistry, monitor relabelings/metricRelabelings/jobLabel/namespace, the Grafana
dashboard ConfigMap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helm import (
    CHART,
    CRD_API,
    REPO,
    Helm,
    Manifest,
    chart_copy,
    container,
    helm_in,
    kinds,
    one,
)

FULL = CHART / "ci" / "standalone-full.yaml"
SIDECAR = CHART / "ci" / "sidecar.yaml"
DASHBOARD = REPO / "config" / "grafana" / "pingmon.json"


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return helm_in(tmp_path / "helm-home")


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    return chart_copy(tmp_path)


def pod(manifests: list[Manifest]) -> Manifest:
    template: Manifest = one(manifests, "Deployment")["spec"]["template"]
    return template


def test_a_created_service_account_is_the_pods_and_holds_no_token(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart, FULL)
    account = one(manifests, "ServiceAccount")
    assert account["metadata"]["name"] == "rel-pingmon"
    assert account["metadata"]["annotations"] == {"example.com/identity": "pingmon@example.iam"}
    assert account["automountServiceAccountToken"] is False
    spec = pod(manifests)["spec"]
    assert spec["serviceAccountName"] == "rel-pingmon"
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    ("sets", "name"),
    [([], "default"), (["serviceAccount.name=shared"], "shared"),
     (["serviceAccount.create=true", "serviceAccount.name=own"], "own")],
)  # fmt: skip
def test_the_service_account_name_follows_create_and_name(
    helm: Helm, chart: Path, sets: list[str], name: str
) -> None:
    manifests = helm.template(chart, sets=sets)
    assert pod(manifests)["spec"]["serviceAccountName"] == name
    created = [doc["metadata"]["name"] for doc in kinds(manifests, "ServiceAccount")]
    assert created == ([name] if "serviceAccount.create=true" in sets else [])


def test_extra_env_volumes_and_mounts_reach_the_standalone_pod(helm: Helm, chart: Path) -> None:
    spec = pod(helm.template(chart, FULL))["spec"]
    pingmon = container(spec)
    proxy = {"configMapKeyRef": {"name": "proxy-settings", "key": "https-proxy"}}
    assert {"name": "HTTPS_PROXY", "valueFrom": proxy} in pingmon["env"]
    assert pingmon["env"][0]["name"] == "STRIPE_API_KEY"  # the secrets first
    assert {"name": "corp-ca", "mountPath": "/etc/pingmon-ca", "readOnly": True} in pingmon[
        "volumeMounts"
    ]
    assert {"name": "corp-ca", "configMap": {"name": "corp-ca-bundle"}} in spec["volumes"]


def test_a_ca_bundle_from_a_configmap_serves_a_providers_tls_ca_file(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    values = tmp_path / "ca.yaml"
    values.write_text(
        json.dumps(
            {
                "mode": "sidecar",
                "extraVolumes": [{"name": "corp-ca", "configMap": {"name": "corp-ca-bundle"}}],
                "extraVolumeMounts": [{"name": "corp-ca", "mountPath": "/etc/pingmon-ca"}],
                "config": {
                    "listen": "0.0.0.0:9108",
                    "providers": {
                        "status": {
                            "type": "http",
                            "base_url": "https://status.internal",
                            "tls": {"ca_file": "/etc/pingmon-ca/ca.crt"},
                        }
                    },
                    "targets": [{"name": "status", "provider": "status"}],
                },
            }
        )
    )
    app = tmp_path / "app"
    (app / "templates").mkdir(parents=True)
    (app / "Chart.yaml").write_text(
        "apiVersion: v2\nname: app\nversion: 0.1.0\n"
        "dependencies: [{name: pingmon, version: 0.1.0, repository: file://../pingmon}]\n"
    )
    (app / "templates" / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n"
        '    {{- include "pingmon.sidecar.containers" .Subcharts.pingmon | nindent 4 }}\n'
        "  volumes:\n"
        '    {{- include "pingmon.sidecar.volumes" .Subcharts.pingmon | nindent 4 }}\n'
    )
    helm.run("package", chart, "--destination", app / "charts")
    nested = tmp_path / "nested.yaml"
    nested.write_text(json.dumps({"pingmon": json.loads(values.read_text())}))
    spec = one(helm.template(app, nested), "Pod")["spec"]
    mounts = {m["name"]: m["mountPath"] for m in container(spec)["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["corp-ca"]["configMap"] == {"name": "corp-ca-bundle"}
    assert "/etc/pingmon-ca/ca.crt".startswith(mounts["corp-ca"] + "/")


def test_pod_placement_values_reach_the_standalone_pod(helm: Helm, chart: Path) -> None:
    sets = [
        "priorityClassName=monitoring-high",
        "podAnnotations.example\\.com/scrape=no",
        "topologySpreadConstraints[0].maxSkew=1",
        "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
        "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
    ]
    template = pod(helm.template(chart, sets=sets))
    assert template["spec"]["priorityClassName"] == "monitoring-high"
    assert template["metadata"]["annotations"] == {"example.com/scrape": "no"}
    assert template["spec"]["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
        }
    ]


def test_common_labels_reach_every_object_but_never_a_selector(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart, FULL)
    assert len(manifests) >= 9
    for manifest in manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["example.com/team"] == "platform", manifest["kind"]
    deployment = one(manifests, "Deployment")
    assert "example.com/team" not in deployment["spec"]["selector"]["matchLabels"]
    assert pod(manifests)["metadata"]["labels"]["example.com/team"] == "platform"
    service = one(manifests, "Service")
    assert "example.com/team" not in service["spec"]["selector"]


@pytest.mark.parametrize(
    ("sets", "image"),
    [
        ([], "ghcr.io/pingmon/pingmon:0.1.0"),
        (["global.imageRegistry=mirror.example.com"], "mirror.example.com/pingmon/pingmon:0.1.0"),
        (["image.registry=quay.io", "image.tag=9.9.9"], "quay.io/pingmon/pingmon:9.9.9"),
        (
            ["global.imageRegistry=mirror.example.com/", "image.registry=quay.io"],
            "mirror.example.com/pingmon/pingmon:0.1.0",
        ),
        (["image.registry=", "image.repository=localhost/pingmon"], "localhost/pingmon:0.1.0"),
        (
            ["global.imageRegistry=mirror.example.com", f"image.digest=sha256:{'ab' * 32}"],
            f"mirror.example.com/pingmon/pingmon@sha256:{'ab' * 32}",
        ),
    ],
)
def test_global_image_registry_and_image_registry_make_the_image(
    helm: Helm, chart: Path, sets: list[str], image: str
) -> None:
    assert container(pod(helm.template(chart, sets=sets))["spec"])["image"] == image


def test_the_service_monitor_takes_job_label_relabelings_and_metric_relabelings(
    helm: Helm, chart: Path
) -> None:
    monitor = one(helm.template(chart, FULL), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["jobLabel"] == "app.kubernetes.io/name"
    endpoint = spec["endpoints"][0]
    assert endpoint["relabelings"] == [
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}
    ]
    assert endpoint["metricRelabelings"][0]["action"] == "drop"
    assert "namespaceSelector" not in spec


@pytest.mark.parametrize("kind", ["serviceMonitor", "podMonitor"])
def test_a_monitor_in_another_namespace_selects_the_release_namespace(
    helm: Helm, chart: Path, kind: str
) -> None:
    sets = [
        f"{kind}.enabled=true",
        f"{kind}.namespace=monitoring",
        f"{kind}.additionalLabels.release=kps",
        f"{kind}.jobLabel=app",
        f"{kind}.relabelings[0].targetLabel=cluster",
        f"{kind}.relabelings[0].replacement=prod",
    ]
    manifests = helm.template(chart, sets=sets)
    monitor = one(manifests, kind[0].upper() + kind[1:])
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["apps"]}
    assert monitor["spec"]["jobLabel"] == "app"
    endpoints = monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"]
    assert endpoints[0]["relabelings"] == [{"targetLabel": "cluster", "replacement": "prod"}]


@pytest.mark.parametrize("values", [FULL, SIDECAR], ids=["standalone", "sidecar"])
def test_the_grafana_dashboard_configmap_carries_the_dashboard_for_the_sidecar(
    helm: Helm, chart: Path, values: Path
) -> None:
    manifests = helm.template(chart, values, sets=["grafanaDashboard.enabled=true"])
    (dashboard,) = [doc for doc in kinds(manifests, "ConfigMap") if "pingmon.json" in doc["data"]]
    assert dashboard["metadata"]["name"] == "rel-pingmon-dashboard"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["pingmon.json"]) == json.loads(DASHBOARD.read_text())


def test_the_dashboard_goes_where_grafana_looks(helm: Helm, chart: Path) -> None:
    sets = [
        "grafanaDashboard.enabled=true",
        "grafanaDashboard.namespace=grafana",
        "grafanaDashboard.annotations.grafana_folder=Monitoring",
    ]
    manifests = helm.template(chart, sets=sets)
    (dashboard,) = [doc for doc in kinds(manifests, "ConfigMap") if "pingmon.json" in doc["data"]]
    assert dashboard["metadata"]["namespace"] == "grafana"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Monitoring"}


def test_no_dashboard_configmap_by_default(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart)
    assert [doc["metadata"]["name"] for doc in kinds(manifests, "ConfigMap")] == ["rel-pingmon"]


def test_a_chart_copy_without_the_dashboard_file_fails_saying_so(helm: Helm, chart: Path) -> None:
    (chart / "files" / "pingmon.json").unlink()
    done = helm.run(
        "template", "rel", chart, "--api-versions", CRD_API,
        "--set", "grafanaDashboard.enabled=true", check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "files/pingmon.json (a copy of config/grafana/pingmon.json) is missing" in done.stderr
