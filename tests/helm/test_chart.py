"""helm/pingmon: lint, validation for Kubernetes 1.30, the pod's safety, secrets by reference."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import (
    CHART,
    CI_VALUES,
    CRD_API,
    Helm,
    chart_copy,
    config_text,
    container,
    helm_in,
    kinds,
    kubernetes_validate,
    names,
    one,
    render_doc_values,
    run_validate,
    secret_refs,
    with_local_secret_files,
)

CI_IDS = [path.stem for path in CI_VALUES]
STANDALONE_FULL = CHART / "ci" / "standalone-full.yaml"
OPERATOR_KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return helm_in(tmp_path / "helm-home")


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    return chart_copy(tmp_path)


def test_the_ci_values_files_cover_minimal_standalone_full_and_sidecar() -> None:
    assert {"minimal", "standalone-full", "sidecar"} <= set(CI_IDS)


def test_helm_lint_strict_passes_on_the_chart_itself(helm: Helm) -> None:
    done = helm.run("lint", "--strict", CHART, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_helm_lint_strict_passes_with_each_ci_values_file(
    helm: Helm, chart: Path, values: Path
) -> None:
    done = helm.run("lint", "--strict", chart, "--values", values, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kube_version", ["1.28.0", "1.30.0"])
@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=["defaults", *CI_IDS])
def test_rendered_manifests_pass_kubernetes_validate_strict_for_1_28_and_1_30(
    helm: Helm, chart: Path, values: Path | None, kube_version: str
) -> None:
    rendered = helm.template_text(chart, *([values] if values else []), kube_version=kube_version)
    done = kubernetes_validate(rendered, kube_version)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_validate_rejects_a_broken_manifest_so_the_check_can_fail() -> None:
    broken = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{name: a}]}\n"
    done = kubernetes_validate(broken)
    assert done.returncode == 1
    assert "'port' is a required property" in done.stdout + done.stderr


def test_defaults_render_the_standalone_deployment_service_and_configmap_only(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart)
    assert names(manifests) == [
        "ConfigMap/rel-pingmon",
        "Deployment/rel-pingmon",
        "Service/rel-pingmon",
    ]


def test_standalone_full_renders_every_optional_object(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart, STANDALONE_FULL)
    assert {doc["kind"] for doc in manifests} == {
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "PrometheusRule",
    }
    assert len(kinds(manifests, "ConfigMap")) == 2  # the configuration and the dashboard
    monitor = one(manifests, "ServiceMonitor")
    service = one(manifests, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_the_pingmon_container_is_non_root_read_only_without_capabilities(
    helm: Helm, chart: Path
) -> None:
    pod = one(helm.template(chart), "Deployment")["spec"]["template"]["spec"]
    context = container(pod)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["runAsGroup"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False


def test_probes_hit_healthy_and_ready_on_the_port_of_config_listen(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart, sets=["config.listen=0.0.0.0:9200"])
    pingmon = container(one(manifests, "Deployment")["spec"]["template"]["spec"])
    assert pingmon["ports"] == [{"name": "pingmon", "containerPort": 9200, "protocol": "TCP"}]
    assert pingmon["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "pingmon"}
    assert pingmon["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "pingmon"}
    assert one(manifests, "Service")["spec"]["ports"][0]["targetPort"] == "pingmon"
    assert yaml.safe_load(config_text(manifests))["listen"] == "0.0.0.0:9200"


def test_the_container_has_requests_and_a_memory_limit(helm: Helm, chart: Path) -> None:
    pod = one(helm.template(chart), "Deployment")["spec"]["template"]["spec"]
    resources = container(pod)["resources"]
    assert resources["requests"] == {"cpu": "50m", "memory": "64Mi"}
    assert resources["limits"] == {"memory": "256Mi"}


def test_the_image_defaults_to_the_app_version_and_runs_the_mounted_config(
    helm: Helm, chart: Path
) -> None:
    pod = one(helm.template(chart), "Deployment")["spec"]["template"]["spec"]
    pingmon = container(pod)
    assert pingmon["image"] == "ghcr.io/pingmon/pingmon:0.1.0"
    assert pingmon["args"][-2:] == ["run", "--config=/etc/pingmon/pingmon.yaml"]
    mount = pingmon["volumeMounts"][0]
    assert mount == {"name": "pingmon-config", "mountPath": "/etc/pingmon", "readOnly": True}
    assert "subPath" not in mount  # a subPath mount would never see a ConfigMap update
    assert pod["volumes"][0] == {"name": "pingmon-config", "configMap": {"name": "rel-pingmon"}}


def test_a_digest_pins_the_image(helm: Helm, chart: Path) -> None:
    digest = "sha256:" + "ab" * 32
    pod = one(helm.template(chart, sets=[f"image.digest={digest}"]), "Deployment")
    image = container(pod["spec"]["template"]["spec"])["image"]
    assert image == f"ghcr.io/pingmon/pingmon@{digest}"


def test_secrets_reach_the_container_only_as_secret_key_refs_and_file_mounts(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart, STANDALONE_FULL)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    pingmon = container(pod)
    assert pingmon["env"][0] == {
        "name": "STRIPE_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "pingmon-stripe", "key": "api-key"}},
    }
    assert all(set(var) == {"name", "valueFrom"} for var in pingmon["env"])
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["pingmon-secret-0"]["secret"] == {
        "secretName": "pingmon-simotel",
        "items": [
            {"key": "username", "path": "username"},
            {"key": "password", "path": "password"},
        ],
    }
    assert {
        "name": "pingmon-secret-1",
        "mountPath": "/var/run/secrets/status",
        "readOnly": True,
    } in (pingmon["volumeMounts"])
    assert kinds(manifests, "Secret") == []


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=["defaults", *CI_IDS])
def test_every_secret_reference_in_the_config_resolves_inside_the_pod(
    helm: Helm, chart: Path, values: Path | None
) -> None:
    manifests = helm.template(chart, *([values] if values else []))
    refs = list(secret_refs(yaml.safe_load(config_text(manifests))))
    for workload in workloads(manifests):
        pod = workload["spec"]["template"]["spec"]
        pingmon = container(pod)
        env = {
            var["name"]
            for var in pingmon.get("env", [])
            if "secretKeyRef" in var.get("valueFrom", {})
        }
        files = secret_files(pod, pingmon)
        for where, kind, value in refs:
            if kind == "env":
                assert value in env, f"{where}: {value} is not set from a Secret"
            else:
                assert any(allowed(value) for allowed in files), f"{where}: {value} is not mounted"


def workloads(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects whose pods run pingmon: the standalone Deployment, the sharded StatefulSet."""
    return [*kinds(manifests, "Deployment"), *kinds(manifests, "StatefulSet")]


def under(prefix: str, path: str) -> bool:
    return path.startswith(prefix)


def secret_files(pod: dict[str, Any], pingmon: dict[str, Any]) -> list[Callable[[str], bool]]:
    """For each mounted Secret, a test of whether a path is one of its files."""
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    tests: list[Callable[[str], bool]] = []
    for mount in pingmon["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        root = mount["mountPath"]
        if "items" in secret:
            paths = {f"{root}/{item['path']}" for item in secret["items"]}
            tests.append(paths.__contains__)
        else:
            tests.append(partial(under, f"{root}/"))
    return tests


def test_a_literal_secret_in_values_config_is_refused_by_the_schema(
    helm: Helm, chart: Path
) -> None:
    done = helm.run(
        "template",
        "rel",
        chart,
        "--set",
        "config.providers.stripe.type=stripe",
        "--set",
        "config.providers.stripe.api_key=sk_live_do_not_ship",
        check=False,
    )
    assert done.returncode == 1
    assert "at '/config/providers/stripe/api_key': got string, want object" in done.stderr
    assert "sk_live_do_not_ship" not in done.stdout


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=["defaults", *CI_IDS])
def test_no_rendered_object_carries_a_literal_secret(
    helm: Helm, chart: Path, values: Path | None
) -> None:
    manifests = helm.template(chart, *([values] if values else []))
    assert kinds(manifests, "Secret") == []
    config = yaml.safe_load(config_text(manifests))
    for provider in (config.get("providers") or {}).values():
        for field in ("api_key", "username", "password"):
            if field in provider:
                assert isinstance(provider[field], dict), field
        for header in (provider.get("headers") or {}).values():
            assert isinstance(header, dict)
    for workload in workloads(manifests):
        for var in container(workload["spec"]["template"]["spec"]).get("env", []):
            # The sharding settings are the one literal: counts and a word, no secret.
            assert "value" not in var or var["name"].startswith("PINGMON_SHARDING__"), var


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("serviceMonitor.enabeld=true", "at '/serviceMonitor': additional properties 'enabeld'"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
        (
            "mode=daemonset",
            "at '/mode': value must be one of 'standalone', 'sidecar', 'sharded'",
        ),
        ("config.listen=localhost", "at '/config/listen': 'localhost' does not match pattern"),
        ("sidecar.native=auto", "at '/sidecar/native': got string, want boolean"),
    ],
)
def test_a_mistyped_value_is_refused_with_its_path_by_template_and_lint(
    helm: Helm, chart: Path, assignment: str, message: str
) -> None:
    rendered = helm.run("template", "rel", chart, "--set", assignment, check=False)
    assert rendered.returncode == 1
    assert message in rendered.stderr
    linted = helm.run("lint", "--strict", chart, "--set", assignment, check=False)
    assert linted.returncode == 1
    assert message in linted.stdout + linted.stderr


def test_every_value_in_values_yaml_is_described_by_the_schema(chart: Path) -> None:
    schema = json.loads((chart / "values.schema.json").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text())

    def undescribed(node: object, part: dict[str, object], path: str) -> list[str]:
        if path == ".config":  # pingmon's own schema, kept current by scripts/chart_sync.py
            return []
        if not isinstance(node, dict) or part.get("additionalProperties") is not False:
            return []
        properties = part.get("properties")
        assert isinstance(properties, dict)
        missing = [f"{path}.{key}" for key in node if key not in properties]
        for key, value in node.items():
            if key in properties:
                child = properties[key]
                assert "description" in child or path == "", f"{path}.{key} has no description"
                missing += undescribed(value, child, f"{path}.{key}")
        return missing

    assert undescribed(values, schema, "") == []
    assert all("description" in part for part in schema["properties"].values())


# ServiceMonitor and PodMonitor are never enabled together (the chart refuses it).
OPERATOR_SETS = [
    ["serviceMonitor.enabled=true", "prometheusRule.enabled=true"],
    ["podMonitor.enabled=true", "prometheusRule.enabled=true"],
]


@pytest.mark.parametrize("enable", OPERATOR_SETS, ids=["service-monitor", "pod-monitor"])
def test_operator_objects_render_with_the_crd_api_or_assume_crds(
    helm: Helm, chart: Path, enable: list[str]
) -> None:
    wanted = sorted(assignment.split(".")[0] for assignment in enable)
    with_api = helm.template(chart, sets=enable, crd_api=True)
    rendered = sorted(doc["kind"] for doc in with_api if doc["kind"] in OPERATOR_KINDS)
    assert [kind[0].lower() + kind[1:] for kind in rendered] == wanted
    assumed = helm.template(
        chart, sets=[*enable, "prometheusOperator.assumeCRDs=true"], crd_api=False
    )
    assert len([doc for doc in assumed if doc["kind"] in OPERATOR_KINDS]) == len(enable)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("standalone", "serviceMonitor"),
        ("standalone", "podMonitor"),
        ("standalone", "prometheusRule"),
        ("sidecar", "podMonitor"),  # the warning in NOTES.txt never showed for a subchart
        ("sidecar", "prometheusRule"),
    ],
)
def test_an_enabled_operator_object_without_the_crd_api_fails_the_render_saying_how(
    helm: Helm, chart: Path, mode: str, kind: str
) -> None:
    done = helm.run(
        "template", "rel", chart, "--set", f"mode={mode}", "--set", f"{kind}.enabled=true",
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"{kind}.enabled: the Prometheus Operator API monitoring.coreos.com/v1" in done.stderr
    assert "--api-versions monitoring.coreos.com/v1" in done.stderr
    assert "prometheusOperator.assumeCRDs=true" in done.stderr


def test_service_monitor_and_pod_monitor_together_are_refused(helm: Helm, chart: Path) -> None:
    done = helm.run(
        "template", "rel", chart, "--api-versions", CRD_API,
        "--set", "serviceMonitor.enabled=true", "--set", "podMonitor.enabled=true",
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "serviceMonitor.enabled and podMonitor.enabled are both true" in done.stderr
    assert "doubling every series and every alert" in done.stderr


def test_disabled_operator_objects_stay_out_even_with_the_crd_api(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart, crd_api=True)
    assert [doc for doc in manifests if doc["apiVersion"] == CRD_API] == []


def test_a_pod_disruption_budget_takes_min_available_when_set(helm: Helm, chart: Path) -> None:
    sets = ["podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=1"]
    spec = one(helm.template(chart, sets=sets), "PodDisruptionBudget")["spec"]
    assert spec["minAvailable"] == 1
    assert "maxUnavailable" not in spec


def test_the_standalone_network_policy_admits_scrapes_and_allows_dns_and_providers(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart, STANDALONE_FULL)
    policy = one(manifests, "NetworkPolicy")["spec"]
    labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"][0]["ports"] == [{"port": 9108, "protocol": "TCP"}]
    assert policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    egress_ports = [p["port"] for rule in policy["egress"] for p in rule.get("ports", [])]
    assert egress_ports[:2] == [53, 53]
    assert 443 in egress_ports


def test_sidecar_mode_renders_configmap_pod_monitor_rule_and_ingress_only_policy(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart, CHART / "ci" / "sidecar.yaml")
    assert {doc["kind"] for doc in manifests} == {
        "ConfigMap",
        "PodMonitor",
        "PrometheusRule",
        "NetworkPolicy",
    }
    selector = {"pingmon.io/sidecar": "rel-pingmon"}
    assert one(manifests, "PodMonitor")["spec"]["selector"]["matchLabels"] == selector
    assert one(manifests, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "pingmon"
    policy = one(manifests, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"] == selector
    assert policy["policyTypes"] == ["Ingress"]
    assert "egress" not in policy


def test_a_service_monitor_in_sidecar_mode_is_refused_with_a_pointer_to_pod_monitor(
    helm: Helm, chart: Path
) -> None:
    done = helm.run(
        "template",
        "rel",
        chart,
        "--api-versions",
        CRD_API,
        "--set",
        "mode=sidecar",
        "--set",
        "serviceMonitor.enabled=true",
        check=False,
    )
    assert done.returncode == 1
    assert "serviceMonitor needs mode: standalone" in done.stderr
    assert "use podMonitor" in done.stderr


def test_config_changes_restart_pods_only_when_asked(helm: Helm, chart: Path) -> None:
    def annotations(*sets: str) -> dict[str, str]:
        pod = one(helm.template(chart, sets=sets), "Deployment")["spec"]["template"]
        found = pod["metadata"].get("annotations", {})
        assert isinstance(found, dict)
        return found

    assert "checksum/config" not in annotations()
    first = annotations("restartOnConfigChange=true")["checksum/config"]
    second = annotations("restartOnConfigChange=true", "config.concurrency=7")["checksum/config"]
    assert first != second


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=["defaults", *CI_IDS])
def test_the_rendered_configmap_passes_pingmon_config_validate(
    helm: Helm, chart: Path, tmp_path: Path, values: Path | None
) -> None:
    rendered = config_text(helm.template(chart, *([values] if values else [])))
    config, env_names = with_local_secret_files(rendered, tmp_path)
    done = run_validate(config, tmp_path, env_names)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ": ok (" in done.stdout + done.stderr


def test_what_only_pingmon_can_judge_renders_but_fails_pingmon_config_validate(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    """A target naming a provider that is not defined passes the schema (it cannot relate
    keys), so the chart's tests validate every rendered ConfigMap with pingmon itself."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "listen": "0.0.0.0:9108",
                    "providers": {"status-page": {"type": "http", "base_url": "https://x.test"}},
                    "targets": [{"name": "other", "provider": "nowhere"}],
                }
            }
        )
    )
    done = run_validate(config_text(helm.template(chart, bad)), tmp_path, set())
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).splitlines()
    assert any("targets[0].provider" in line for line in lines), lines


def test_the_standalone_values_in_docs_kubernetes_md_render_valid_manifests_and_config(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    manifests = render_doc_values(helm, chart, tmp_path, "my-values.yaml")
    assert {"ServiceMonitor", "PrometheusRule"} <= {doc["kind"] for doc in manifests}
    config, env_names = with_local_secret_files(config_text(manifests), tmp_path)
    validated = run_validate(config, tmp_path, env_names)
    assert validated.returncode == 0, validated.stdout + validated.stderr
