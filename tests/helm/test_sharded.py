"""helm/pingmon in mode: sharded: a StatefulSet of sharding.shards pods, each taking its shard
from its pod index, a headless Service, a monitor and a PDB over every pod, the standalone pod.

Helm only renders: the shard each pod takes is pinned on the rendered downward API field, and
pingmon's reading of it (a pod name or an index) is run through `pingmon config validate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import (
    CHART,
    Helm,
    Manifest,
    chart_copy,
    config_text,
    container,
    helm_in,
    kinds,
    kubernetes_validate,
    names,
    one,
    run_validate,
    with_local_secret_files,
)
from tests.helm.test_webhooks import PBX_TARGET

SHARDED = CHART / "ci" / "sharded.yaml"
POD_INDEX = "metadata.labels['apps.kubernetes.io/pod-index']"
POD_NAME = "metadata.name"
SHARDING_ENV = ("PINGMON_SHARDING__SHARDS", "PINGMON_SHARDING__SHARD", "PINGMON_SHARDING__BY")


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return helm_in(tmp_path / "helm-home")


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    return chart_copy(tmp_path)


def statefulset(manifests: list[Manifest]) -> Manifest:
    return one(manifests, "StatefulSet")


def pod_template(manifests: list[Manifest]) -> Manifest:
    template: Manifest = statefulset(manifests)["spec"]["template"]
    return template


def env_of(manifests: list[Manifest]) -> dict[str, Any]:
    """The pingmon container's environment: name -> value, or the valueFrom mapping."""
    pingmon = container(pod_template(manifests)["spec"])
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in pingmon["env"]}


def shard_field(manifests: list[Manifest]) -> str:
    source = env_of(manifests)["PINGMON_SHARDING__SHARD"]
    field: str = source["fieldRef"]["fieldPath"]
    return field


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_sharded_values_render_a_statefulset_headless_service_pdb_and_no_deployment(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart, SHARDED)
    assert names(manifests) == [
        "ConfigMap/rel-pingmon",
        "NetworkPolicy/rel-pingmon",
        "PodDisruptionBudget/rel-pingmon",
        "PrometheusRule/rel-pingmon",
        "Service/rel-pingmon",
        "ServiceMonitor/rel-pingmon",
        "StatefulSet/rel-pingmon",
    ]


@pytest.mark.parametrize("shards", [1, 3, 5])
def test_the_statefulset_runs_one_pod_per_shard_and_tells_each_how_many(
    helm: Helm, chart: Path, shards: int
) -> None:
    manifests = helm.template(chart, SHARDED, sets=[f"sharding.shards={shards}"])
    spec = statefulset(manifests)["spec"]
    assert spec["replicas"] == shards
    assert env_of(manifests)["PINGMON_SHARDING__SHARDS"] == str(shards)
    assert env_of(manifests)["PINGMON_SHARDING__BY"] == "credential"
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}


def test_sharding_by_target_reaches_the_pods(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart, SHARDED, sets=["sharding.by=target"])
    assert env_of(manifests)["PINGMON_SHARDING__BY"] == "target"


@pytest.mark.parametrize(
    ("kube_version", "ordinal_from", "field"),
    [
        ("1.30.0", "auto", POD_INDEX),
        ("1.28.0", "auto", POD_INDEX),
        ("1.27.9", "auto", POD_NAME),
        ("1.25.0", "auto", POD_NAME),
        ("1.30.0", "podName", POD_NAME),
        ("1.27.9", "podIndexLabel", POD_INDEX),
    ],
)
def test_each_pod_takes_its_shard_from_the_pod_index_label_from_1_28_else_its_name(
    helm: Helm, chart: Path, kube_version: str, ordinal_from: str, field: str
) -> None:
    sets = [f"sharding.ordinalFrom={ordinal_from}"]
    manifests = helm.template(chart, SHARDED, sets=sets, kube_version=kube_version)
    assert shard_field(manifests) == field


@pytest.mark.parametrize("binary", ["helm", "helm3"])
@pytest.mark.parametrize("kube_version", ["1.27.0", "1.28.0", "1.30.0"])
def test_sharded_manifests_pass_kubernetes_validate_strict_with_helm_4_and_3(
    tmp_path: Path, chart: Path, binary: str, kube_version: str
) -> None:
    helm = helm_in(tmp_path / "home", binary)
    rendered = helm.template_text(chart, SHARDED, kube_version=kube_version)
    done = kubernetes_validate(rendered, kube_version)
    assert done.returncode == 0, done.stdout + done.stderr
    manifests = [doc for doc in yaml.safe_load_all(rendered) if doc]
    expected = POD_NAME if kube_version == "1.27.0" else POD_INDEX
    assert shard_field(manifests) == expected


def test_the_headless_service_is_the_statefulsets_and_selects_its_pods(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart, SHARDED)
    service = one(manifests, "Service")
    assert service["spec"]["clusterIP"] == "None"
    assert "type" not in service["spec"]
    assert statefulset(manifests)["spec"]["serviceName"] == service["metadata"]["name"]
    labels = pod_template(manifests)["metadata"]["labels"]
    assert selects(service["spec"]["selector"], labels)
    assert selects(statefulset(manifests)["spec"]["selector"]["matchLabels"], labels)
    assert service["spec"]["ports"] == [
        {"name": "pingmon", "port": 9108, "targetPort": "pingmon", "protocol": "TCP"}
    ]


def test_the_service_monitor_scrapes_every_pod_through_the_headless_service(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart, SHARDED)
    monitor = one(manifests, "ServiceMonitor")["spec"]
    service = one(manifests, "Service")
    # Endpoints of a headless Service are the pods themselves: one scrape target per shard.
    assert selects(monitor["selector"]["matchLabels"], service["metadata"]["labels"])
    assert monitor["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    ports = container(pod_template(manifests)["spec"])["ports"]
    assert service["spec"]["ports"][0]["targetPort"] in [port["name"] for port in ports]


def test_a_pod_monitor_instead_selects_the_sharded_pods(helm: Helm, chart: Path) -> None:
    sets = ["serviceMonitor.enabled=false", "podMonitor.enabled=true"]
    manifests = helm.template(chart, SHARDED, sets=sets)
    monitor = one(manifests, "PodMonitor")["spec"]
    assert kinds(manifests, "ServiceMonitor") == []
    assert selects(
        monitor["selector"]["matchLabels"], pod_template(manifests)["metadata"]["labels"]
    )
    assert monitor["podMetricsEndpoints"][0]["port"] == "pingmon"


def test_the_pod_disruption_budget_lets_one_shard_go_at_a_time(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart, SHARDED)
    budget = one(manifests, "PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1
    assert selects(
        budget["selector"]["matchLabels"], pod_template(manifests)["metadata"]["labels"]
    )
    off = helm.template(chart, SHARDED, sets=["podDisruptionBudget.enabled=false"])
    assert kinds(off, "PodDisruptionBudget") == []


def test_the_budget_stays_off_by_default_in_standalone_mode(helm: Helm, chart: Path) -> None:
    assert (
        kinds(helm.template(chart, SHARDED, sets=["mode=standalone"]), "PodDisruptionBudget") == []
    )


def without_sharding_env(pod: Manifest) -> Manifest:
    spec = dict(pod["spec"])
    pingmon = container(spec)
    pingmon["env"] = [var for var in pingmon["env"] if var["name"] not in SHARDING_ENV]
    spec["containers"] = [pingmon]
    return {"metadata": pod["metadata"], "spec": spec}


def test_the_sharded_pod_is_the_standalone_pod_plus_the_sharding_environment(
    helm: Helm, chart: Path
) -> None:
    """The same ConfigMap, Secrets, security contexts, web config, probes and resources."""
    sets = ["web.tls.secretName=pingmon-tls", "restartOnConfigChange=true"]
    sharded = helm.template(chart, SHARDED, sets=sets)
    standalone = helm.template(chart, SHARDED, sets=[*sets, "mode=standalone"])
    deployment_pod = one(standalone, "Deployment")["spec"]["template"]
    assert without_sharding_env(pod_template(sharded)) == deployment_pod
    assert one(sharded, "ConfigMap")["data"] == one(standalone, "ConfigMap")["data"]
    pingmon = container(pod_template(sharded)["spec"])
    assert pingmon["securityContext"]["readOnlyRootFilesystem"] is True
    assert pingmon["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert [var for var in pingmon["env"] if var["name"] in SHARDING_ENV] != []


def differences(before: object, after: object, path: str = "") -> list[str]:
    """The paths where two parsed documents differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            found
            for key in sorted(set(before) | set(after))
            for found in differences(before.get(key), after.get(key), f"{path}.{key}")
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            found
            for index, (one_before, one_after) in enumerate(zip(before, after, strict=True))
            for found in differences(one_before, one_after, f"{path}[{index}]")
        ]
    return [] if before == after else [path]


def by_name(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in manifests}


def test_an_upgrade_to_four_shards_changes_only_the_replicas_and_the_shards_variable(
    helm: Helm, chart: Path
) -> None:
    """`helm upgrade --set sharding.shards=4` over a release of three: the StatefulSet gets a
    fourth pod and a new pod template (so the controller replaces the three old pods, one at a
    time); the ConfigMap, the Service and the rest stay as they were."""
    before = by_name(helm.template(chart, SHARDED))
    after = by_name(helm.template(chart, SHARDED, sets=["sharding.shards=4"]))
    assert before.keys() == after.keys()
    changed = {
        name: differences(before[name], after[name])
        for name in before
        if differences(before[name], after[name])
    }
    env = container(before["StatefulSet/rel-pingmon"]["spec"]["template"]["spec"])["env"]
    index = [var["name"] for var in env].index("PINGMON_SHARDING__SHARDS")
    assert changed == {
        "StatefulSet/rel-pingmon": [
            ".spec.replicas",
            f".spec.template.spec.containers[0].env[{index}].value",
        ]
    }
    assert env_of(list(after.values()))["PINGMON_SHARDING__SHARDS"] == "4"
    assert after["StatefulSet/rel-pingmon"]["spec"]["replicas"] == 4


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["mode=sharded", "webhooks.enabled=true"],
            "webhooks.enabled: webhooks need mode: standalone. In sharded mode",
        ),
        (
            ["mode=sharded", *PBX_TARGET],
            "config.targets[0] (pbx-main): webhooks need mode: standalone. In sharded mode",
        ),
    ],
    ids=["webhooks-enabled", "a-target-with-webhook"],
)
def test_webhooks_in_sharded_mode_are_refused_pointing_to_a_standalone_release(
    helm: Helm, chart: Path, sets: list[str], message: str
) -> None:
    args: list[str | Path] = ["template", "rel", chart]
    for assignment in sets:
        args += ["--set", assignment]
    done = helm.run(*args, check=False)
    assert done.returncode == 1
    assert message in done.stderr
    assert "in a standalone pingmon release" in done.stderr


def test_the_release_notes_name_the_shards_pods_and_how_to_reshard(
    helm: Helm, chart: Path
) -> None:
    done = helm.run(
        "install", "rel", chart, "--dry-run=client", "--namespace", "apps", "--values", SHARDED,
        "--set", "prometheusOperator.assumeCRDs=true",
    )  # fmt: skip
    notes = done.stdout[done.stdout.index("NOTES:") :]
    assert "3 pods, rel-pingmon-0 to rel-pingmon-2" in notes
    assert "kubectl -n apps port-forward pod/rel-pingmon-0 9108" in notes
    assert "--set sharding.shards=N" in notes


def pod_overrides(manifests: list[Manifest], ordinal: int) -> dict[str, str]:
    """The PINGMON_SHARDING__* a pod of this ordinal gets, as the kubelet would resolve them."""
    name = f"{statefulset(manifests)['metadata']['name']}-{ordinal}"
    resolved = {POD_INDEX: str(ordinal), POD_NAME: name}
    env: dict[str, str] = {}
    for key, value in env_of(manifests).items():
        if key in SHARDING_ENV:
            env[key] = (
                value if isinstance(value, str) else resolved[value["fieldRef"]["fieldPath"]]
            )
    return env


@pytest.mark.parametrize("kube_version", ["1.27.0", "1.30.0"])
def test_pingmon_config_validate_accepts_each_pods_configmap_and_sharding_environment(
    helm: Helm, chart: Path, tmp_path: Path, kube_version: str
) -> None:
    """The pod's name (before 1.28) or its index (1.28+) as pingmon reads it."""
    manifests = helm.template(chart, SHARDED, kube_version=kube_version)
    config, env_names = with_local_secret_files(config_text(manifests), tmp_path)
    for ordinal in range(3):
        done = run_validate(config, tmp_path, env_names, pod_overrides(manifests, ordinal))
        assert done.returncode == 0, done.stdout + done.stderr
        assert ": ok (" in done.stdout + done.stderr
    wrong = {**pod_overrides(manifests, 0), "PINGMON_SHARDING__SHARD": "3"}
    refused = run_validate(config, tmp_path, env_names, wrong)
    assert refused.returncode != 0, refused.stdout + refused.stderr


@pytest.mark.parametrize("mode", ["sharded", "standalone", "sidecar"])
def test_sharding_settings_in_config_are_refused_the_chart_sets_them(
    helm: Helm, chart: Path, mode: str
) -> None:
    done = helm.run(
        "template", "rel", chart, "--set", f"mode={mode}",
        "--set", "config.sharding.shards=3", "--set", "config.sharding.shard=0",
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "config.sharding is set by the chart: use mode: sharded" in done.stderr
