"""helm/pingmon's webhook receiver: a port of its own, an Ingress for the webhook path only, and
one receiver per target (docs/webhooks.md)."""

from __future__ import annotations

from pathlib import Path

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
    one,
    render_doc_values,
    run_validate,
    with_local_secret_files,
)

WEBHOOKS = CHART / "ci" / "webhooks.yaml"
ENABLED = ("webhooks.enabled=true",)
PBX_TARGET = (
    "config.providers.pbx.type=simotel",
    "config.providers.pbx.base_url=http://192.168.51.20",
    "config.targets[0].name=pbx-main",
    "config.targets[0].provider=pbx",
    "config.targets[0].webhook.timeout=30s",
    "config.targets[0].webhook.username.env=SIMOTEL_WEBHOOK_USER",
    "config.targets[0].webhook.password.env=SIMOTEL_WEBHOOK_PASSWORD",
)


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return helm_in(tmp_path / "helm-home")


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    return chart_copy(tmp_path)


def pod_spec(manifests: list[Manifest]) -> Manifest:
    spec = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def service_port(manifests: list[Manifest], name: str) -> Manifest:
    ports = [p for p in one(manifests, "Service")["spec"]["ports"] if p["name"] == name]
    assert len(ports) == 1, ports
    return dict(ports[0])


def container_port(manifests: list[Manifest], name: str) -> int:
    ports = [p for p in container(pod_spec(manifests))["ports"] if p["name"] == name]
    assert len(ports) == 1, ports
    port = ports[0]["containerPort"]
    assert isinstance(port, int)
    return port


def rendered_config(manifests: list[Manifest]) -> dict[str, object]:
    config = yaml.safe_load(config_text(manifests))
    assert isinstance(config, dict)
    return config


def test_webhooks_are_off_by_default_with_no_port_no_ingress_and_no_webhook_listen(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart)
    assert [p["name"] for p in container(pod_spec(manifests))["ports"]] == ["pingmon"]
    assert [p["name"] for p in one(manifests, "Service")["spec"]["ports"]] == ["pingmon"]
    assert kinds(manifests, "Ingress") == []
    assert "strategy" not in one(manifests, "Deployment")["spec"]
    config = rendered_config(manifests)
    assert "webhook_listen" not in config
    assert "webhook_path_prefix" not in config


def test_an_ingress_without_host_class_or_tls_passes_kubernetes_validate_strict(
    helm: Helm, chart: Path
) -> None:
    # ci/webhooks.yaml itself is validated with every ci/ file by test_chart.py.
    sets = ["webhooks.ingress.host=", "webhooks.ingress.className=", "webhooks.ingress.tls=null"]
    rendered = helm.template_text(chart, WEBHOOKS, sets=sets)
    ingress = one([doc for doc in yaml.safe_load_all(rendered) if doc], "Ingress")["spec"]
    assert set(ingress) == {"rules"}
    assert set(ingress["rules"][0]) == {"http"}
    done = kubernetes_validate(rendered)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_ingress_routes_only_the_webhook_path_to_the_port_the_receiver_listens_on(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart, WEBHOOKS)
    ingress = one(manifests, "Ingress")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"secretName": "shop-tls", "hosts": ["shop.example.com"]}]
    assert ingress["rules"] == [
        {
            "host": "shop.example.com",
            "http": {
                "paths": [
                    {
                        "path": "/pingmon/webhooks",
                        "pathType": "Prefix",
                        "backend": {
                            "service": {"name": "rel-pingmon", "port": {"name": "webhooks"}}
                        },
                    }
                ]
            },
        }
    ]
    # Ingress -> Service port "webhooks" -> container port "webhooks" -> webhook_listen.
    webhooks = service_port(manifests, "webhooks")
    assert webhooks == {
        "name": "webhooks",
        "port": 9109,
        "targetPort": "webhooks",
        "protocol": "TCP",
    }
    assert container_port(manifests, "webhooks") == 9109
    assert rendered_config(manifests)["webhook_listen"] == "0.0.0.0:9109"
    # /metrics stays on the pingmon port, which the Ingress never names.
    assert container_port(manifests, "pingmon") == 9108
    assert one(manifests, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "pingmon"


@pytest.mark.parametrize(
    ("prefix", "path"),
    [
        ("/pingmon", "/pingmon/webhooks"),
        ("", "/webhooks"),
        ("/ops/pingmon", "/ops/pingmon/webhooks"),
    ],
)
def test_the_ingress_path_is_the_path_prefix_pingmon_serves_under(
    helm: Helm, chart: Path, prefix: str, path: str
) -> None:
    manifests = helm.template(chart, WEBHOOKS, sets=[f"webhooks.pathPrefix={prefix}"])
    paths = one(manifests, "Ingress")["spec"]["rules"][0]["http"]["paths"]
    assert [entry["path"] for entry in paths] == [path]
    assert rendered_config(manifests)["webhook_path_prefix"] == prefix


def test_webhook_listen_takes_the_host_of_listen_and_the_port_of_webhooks(
    helm: Helm, chart: Path
) -> None:
    sets = [*ENABLED, "config.listen=[::]:9108", "webhooks.port=9200"]
    manifests = helm.template(chart, sets=sets)
    assert rendered_config(manifests)["webhook_listen"] == "[::]:9200"
    assert container_port(manifests, "webhooks") == 9200
    assert service_port(manifests, "webhooks")["port"] == 9200


def test_the_network_policy_opens_only_the_webhooks_port_to_webhooks_from(
    helm: Helm, chart: Path
) -> None:
    rules = one(helm.template(chart, WEBHOOKS), "NetworkPolicy")["spec"]["ingress"]
    assert rules == [
        {
            "ports": [{"port": 9108, "protocol": "TCP"}],
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ],
        },
        {
            "ports": [{"port": 9109, "protocol": "TCP"}],
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                    }
                }
            ],
        },
    ]


def test_without_webhooks_from_the_webhooks_port_is_open_to_any_peer_and_metrics_are_not(
    helm: Helm, chart: Path
) -> None:
    rules = one(
        helm.template(chart, WEBHOOKS, sets=["networkPolicy.webhooksFrom=null"]), "NetworkPolicy"
    )["spec"]["ingress"]
    assert rules[1] == {"ports": [{"port": 9109, "protocol": "TCP"}]}
    assert rules[0]["ports"] == [{"port": 9108, "protocol": "TCP"}]
    assert "from" in rules[0]


def test_webhooks_replace_the_pod_instead_of_rolling_two_pingers(helm: Helm, chart: Path) -> None:
    deployment = one(helm.template(chart, WEBHOOKS), "Deployment")["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}


def test_a_new_path_prefix_replaces_the_pod_since_pingmon_reads_it_at_start(
    helm: Helm, chart: Path
) -> None:
    def pod_annotations(prefix: str) -> dict[str, str]:
        sets = [f"webhooks.pathPrefix={prefix}"]
        template = one(helm.template(chart, WEBHOOKS, sets=sets), "Deployment")["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert isinstance(annotations, dict)
        return annotations

    assert pod_annotations("/pingmon") != pod_annotations("/ops/pingmon")


def test_a_scaled_down_release_with_webhooks_renders(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart, WEBHOOKS, sets=["replicaCount=0"])
    assert one(manifests, "Deployment")["spec"]["replicas"] == 0


@pytest.mark.parametrize(
    ("sets", "messages"),
    [
        (
            ("replicaCount=2",),
            [
                "webhooks.enabled needs replicaCount: 1 (got 2)",
                "each webhook reaches only one pod",
            ],
        ),
        (
            ("mode=sidecar", "serviceMonitor.enabled=false"),
            [
                "config.targets[0] (orders-webhook), config.targets[1] (pbx-main): webhooks "
                "need mode: standalone",
                "run the targets with webhook: in a standalone pingmon release",
            ],
        ),
        (
            (
                "mode=sidecar",
                "serviceMonitor.enabled=false",
                "webhooks.ingress.enabled=false",
                "config.targets=null",
            ),
            ["webhooks.enabled: webhooks need mode: standalone"],
        ),
        (
            ("webhooks.enabled=false", "webhooks.ingress.enabled=false"),
            [
                "config.targets[0] (orders-webhook), config.targets[1] (pbx-main): webhook: "
                "needs webhooks.enabled: true"
            ],
        ),
        (
            ("webhooks.enabled=false", "config.targets=null"),
            ["webhooks.ingress.enabled needs webhooks.enabled: true"],
        ),
        (("webhooks.port=9108",), ["webhooks.port (9108) must differ from the port of config"]),
        (
            ("config.webhook_listen=0.0.0.0:9300",),
            ["config.webhook_listen is set by the chart", "set webhooks.port"],
        ),
        (
            ("config.webhook_path_prefix=/other",),
            ["config.webhook_path_prefix is set by the chart", "webhooks.pathPrefix instead"],
        ),
    ],
    ids=[
        "two-replicas",
        "sidecar-with-webhook-targets",
        "sidecar-with-webhooks-enabled",
        "webhook-targets-without-webhooks-enabled",
        "ingress-without-webhooks-enabled",
        "webhooks-port-is-the-pingmon-port",
        "webhook-listen-set-by-hand",
        "webhook-path-prefix-set-by-hand",
    ],
)
def test_what_breaks_one_receiver_per_target_is_refused_saying_what_to_do(
    helm: Helm, chart: Path, sets: tuple[str, ...], messages: list[str]
) -> None:
    args: list[str | Path] = ["template", "rel", chart, "--values", WEBHOOKS]
    for assignment in sets:
        args += ["--set", assignment]
    done = helm.run(*args, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    for message in messages:
        assert message in done.stderr


def test_sidecar_mode_refuses_a_target_with_webhook_even_with_webhooks_off(
    helm: Helm, chart: Path
) -> None:
    sets = ["mode=sidecar", *PBX_TARGET]
    done = helm.run("template", "rel", chart, *[f"--set={s}" for s in sets], check=False)
    assert done.returncode == 1
    assert "config.targets[0] (pbx-main): webhooks need mode: standalone" in done.stderr


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        (
            "config.targets[0].webhook.signing_secret=whsec_do_not_ship",
            "at '/config/targets/0/webhook/signing_secret': got string, want object",
        ),
        (
            "config.targets[0].webhook.password=do_not_ship",
            "at '/config/targets/0/webhook/password': got string, want object",
        ),
        ("webhooks.ingress.hots=shop.example.com", "additional properties 'hots' not allowed"),
        ("webhooks.pathPrefix=/pingmon/", "at '/webhooks/pathPrefix': '/pingmon/' does not match"),
        (
            "webhooks.ingress.host=https://shop.example.com",
            "at '/webhooks/ingress/host': 'https://shop.example.com' does not match",
        ),
    ],
    ids=["literal-signing-secret", "literal-password", "typo", "trailing-slash", "url-as-host"],
)
def test_a_wrong_webhooks_value_is_refused_by_the_schema_with_its_path(
    helm: Helm, chart: Path, assignment: str, message: str
) -> None:
    done = helm.run(
        "template", "rel", chart, "--values", WEBHOOKS, "--set", assignment, check=False
    )
    assert done.returncode == 1
    assert message in done.stderr
    assert "do_not_ship" not in done.stdout


def test_the_release_notes_print_each_webhook_targets_endpoint_url(
    helm: Helm, chart: Path
) -> None:
    done = helm.run(
        "install", "rel", chart, "--dry-run=client", "--namespace", "apps", "--values", WEBHOOKS
    )
    notes = done.stdout[done.stdout.index("NOTES:") :]
    assert "orders-webhook: https://shop.example.com/pingmon/webhooks/orders-webhook" in notes
    assert "pbx-main: https://shop.example.com/pingmon/webhooks/pbx-main" in notes


def test_pingmon_config_validate_accepts_what_the_chart_derives_from_other_values(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    # ci/webhooks.yaml as it is goes through pingmon with every ci/ file in test_chart.py.
    sets = ["webhooks.pathPrefix=", "config.listen=[::]:9108", "webhooks.port=9200"]
    rendered = config_text(helm.template(chart, WEBHOOKS, sets=sets))
    assert yaml.safe_load(rendered)["webhook_listen"] == "[::]:9200"
    config, env_names = with_local_secret_files(rendered, tmp_path)
    done = run_validate(config, tmp_path, env_names)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ": ok (2 providers, 2 targets)" in done.stdout + done.stderr


def test_the_webhook_values_in_docs_kubernetes_md_render_valid_manifests_and_config(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    manifests = render_doc_values(helm, chart, tmp_path, "webhook-values.yaml")
    path = one(manifests, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["path"]
    assert path == "/pingmon/webhooks"
    config, env_names = with_local_secret_files(config_text(manifests), tmp_path)
    validated = run_validate(config, tmp_path, env_names)
    assert validated.returncode == 0, validated.stdout + validated.stderr
