"""helm/pingmon's web values: the web configuration and TLS Secret mounted and passed to
pingmon, probes that a kubelet can pass, and monitors that scrape with TLS and basic auth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import (
    CHART,
    CRD_API,
    Helm,
    Manifest,
    chart_copy,
    container,
    helm_in,
    kubernetes_validate,
    one,
    render_doc_values,
)
from tests.webfiles import Certs

WEB_VALUES = CHART / "ci" / "web.yaml"
TLS_DIR = "/var/run/secrets/pingmon/tls"
HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"
SCRAPE_AUTH = {
    "username": {"name": "pingmon-scrape", "key": "username"},
    "password": {"name": "pingmon-scrape", "key": "password"},
}
SCRAPE_TLS = {"ca": {"secret": {"name": "pingmon-tls", "key": "ca.crt"}}}


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return helm_in(tmp_path / "helm-home")


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    return chart_copy(tmp_path)


def render(helm: Helm, chart: Path, tmp_path: Path, values: dict[str, Any]) -> list[Manifest]:
    """The chart rendered with these values (operator objects assumed), validated for 1.30."""
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"prometheusOperator": {"assumeCRDs": True}, **values}))
    text = helm.template_text(chart, path)
    done = kubernetes_validate(text)
    assert done.returncode == 0, done.stdout + done.stderr
    return [doc for doc in yaml.safe_load_all(text) if doc]


def refusal(helm: Helm, chart: Path, tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"prometheusOperator": {"assumeCRDs": True}, **values}))
    done = helm.run("template", "rel", chart, "--values", path, check=False)
    assert done.returncode == 1, done.stdout
    return done.stderr


def pingmon_container(manifests: list[Manifest]) -> Manifest:
    return container(one(manifests, "Deployment")["spec"]["template"]["spec"])


def web_yml(manifests: list[Manifest]) -> dict[str, Any]:
    text = one(manifests, "ConfigMap")["data"]["web.yml"]
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def test_the_web_values_mount_the_tls_secret_and_pass_the_web_config_file(
    helm: Helm, chart: Path
) -> None:
    manifests = helm.template(chart, WEB_VALUES)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    pingmon = container(pod)
    assert pingmon["args"][-3:] == [
        "--config=/etc/pingmon/pingmon.yaml",
        "--web.config.file=/etc/pingmon/web.yml",
        "--web.enable-lifecycle",
    ]
    assert {"name": "pingmon-tls", "mountPath": TLS_DIR, "readOnly": True} in pingmon[
        "volumeMounts"
    ]
    assert {"name": "pingmon-tls", "secret": {"secretName": "pingmon-tls"}} in pod["volumes"]
    tls = web_yml(manifests)["tls_server_config"]
    assert tls["cert_file"] == f"{TLS_DIR}/tls.crt"
    assert tls["key_file"] == f"{TLS_DIR}/tls.key"
    assert tls["client_ca_file"] == f"{TLS_DIR}/ca.crt"  # verified client certificates


def test_without_web_values_nothing_changes(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart)
    pingmon = pingmon_container(manifests)
    assert not [arg for arg in pingmon["args"] if arg.startswith("--web.")]
    assert "web.yml" not in one(manifests, "ConfigMap")["data"]


def test_the_rendered_web_yml_passes_pingmon_config_validate(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    """The web.yml of ci/web.yaml, its Secret's files replaced by real ones, is what
    `pingmon config validate --web.config.file` accepts; a broken one it refuses."""
    certs = Certs.issue(tmp_path / "certs")
    (certs.directory / "tls.crt").write_bytes(certs.server_cert.read_bytes())
    (certs.directory / "tls.key").write_bytes(certs.server_key.read_bytes())
    text = one(helm.template(chart, WEB_VALUES), "ConfigMap")["data"]["web.yml"]
    web = tmp_path / "web.yml"
    web.write_text(text.replace(TLS_DIR, str(certs.directory)))
    config = tmp_path / "pingmon.yaml"
    config.write_text("providers: {}\ntargets: []\n")
    done = validate(config, web)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{web}: ok" in done.stdout
    web.write_text(text)  # the Secret is not mounted here: its files are missing
    done = validate(config, web)
    assert done.returncode == 2
    assert f"{web}: tls_server_config.cert_file: {TLS_DIR}/tls.crt: no such file" in done.stderr


def validate(config: Path, web: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pingmon", "config", "validate", "--config", str(config),
         "--web.config.file", str(web)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def probes(manifests: list[Manifest]) -> tuple[Manifest, Manifest]:
    pingmon = pingmon_container(manifests)
    live, ready = pingmon["livenessProbe"], pingmon["readinessProbe"]
    return (
        {k: v for k, v in live.items() if k in ("httpGet", "tcpSocket")},
        {k: v for k, v in ready.items() if k in ("httpGet", "tcpSocket")},
    )


HTTPS_HEALTHY = {"httpGet": {"path": "/-/healthy", "port": "pingmon", "scheme": "HTTPS"}}
HTTPS_READY = {"httpGet": {"path": "/-/ready", "port": "pingmon", "scheme": "HTTPS"}}
TCP = {"tcpSocket": {"port": "pingmon"}}


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        (
            {},
            (
                {"httpGet": {"path": "/-/healthy", "port": "pingmon"}},
                {"httpGet": {"path": "/-/ready", "port": "pingmon"}},
            ),
        ),
        ({"tls": {"secretName": "pingmon-tls"}}, (HTTPS_HEALTHY, HTTPS_READY)),
        (
            {"tls": {"secretName": "pingmon-tls"}, "config": {"basic_auth_users": {"p": HASH}}},
            (TCP, TCP),
        ),
        (
            {
                "tls": {"secretName": "pingmon-tls"},
                "config": {
                    "basic_auth_users": {"p": HASH},
                    "pingmon": {"basic_auth_exempt_paths": ["/-/healthy"]},
                },
            },
            (HTTPS_HEALTHY, TCP),
        ),
        (
            {
                "config": {
                    "basic_auth_users": {"p": HASH},
                    "pingmon": {"basic_auth_exempt_paths": ["/-/healthy", "/-/ready"]},
                }
            },
            (
                {"httpGet": {"path": "/-/healthy", "port": "pingmon"}},
                {"httpGet": {"path": "/-/ready", "port": "pingmon"}},
            ),
        ),
        (
            {
                "tls": {"secretName": "pingmon-tls"},
                "config": {
                    "tls_server_config": {"client_auth_type": "RequireAndVerifyClientCert"},
                    "pingmon": {"basic_auth_exempt_paths": ["/-/healthy", "/-/ready"]},
                },
            },
            (TCP, TCP),  # a kubelet has no client certificate
        ),
        (
            {
                "tls": {"secretName": "pingmon-tls"},
                "config": {"tls_server_config": {"client_auth_type": "VerifyClientCertIfGiven"}},
            },
            (HTTPS_HEALTHY, HTTPS_READY),
        ),
        (
            {"configSecret": {"name": "my-web", "basicAuth": True, "exemptPaths": ["/-/ready"]}},
            (TCP, {"httpGet": {"path": "/-/ready", "port": "pingmon"}}),
        ),
    ],
    ids=[
        "plain",
        "tls",
        "basic-auth",
        "healthy-exempt",
        "both-exempt-no-tls",
        "client-certs",
        "client-certs-if-given",
        "config-secret",
    ],
)
def test_probes_get_what_a_kubelet_can_pass_and_connect_otherwise(
    helm: Helm, chart: Path, tmp_path: Path, web: dict[str, Any], expected: tuple[Manifest, ...]
) -> None:
    assert probes(render(helm, chart, tmp_path, {"web": web})) == expected


def endpoint(manifests: list[Manifest], kind: str) -> Manifest:
    spec = one(manifests, kind)["spec"]
    found: Manifest = (spec.get("endpoints") or spec["podMetricsEndpoints"])[0]
    return found


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
def test_the_monitors_scrape_with_https_tls_config_and_basic_auth(
    helm: Helm, chart: Path, tmp_path: Path, kind: str
) -> None:
    values = {
        "serviceMonitor": {"enabled": kind == "ServiceMonitor"},
        "podMonitor": {"enabled": kind == "PodMonitor"},
        "web": {
            "tls": {"secretName": "pingmon-tls"},
            "config": {"basic_auth_users": {"prometheus": HASH}},
            "scrape": {"tlsConfig": SCRAPE_TLS, "basicAuth": SCRAPE_AUTH},
        },
    }
    found = endpoint(render(helm, chart, tmp_path, values), kind)
    assert found["scheme"] == "https"
    assert found["tlsConfig"] == SCRAPE_TLS
    assert found["basicAuth"] == SCRAPE_AUTH


def test_the_ci_web_values_scrape_with_a_client_certificate(helm: Helm, chart: Path) -> None:
    found = endpoint(helm.template(chart, WEB_VALUES), "ServiceMonitor")
    assert found["scheme"] == "https"
    assert set(found["tlsConfig"]) == {"ca", "cert", "keySecret", "serverName"}
    assert found["basicAuth"] == SCRAPE_AUTH


def test_monitors_stay_plain_without_tls_or_basic_auth(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    values = {
        "serviceMonitor": {"enabled": True},
        "web": {"config": {"http_server_config": {"headers": {"X-Frame-Options": "deny"}}}},
    }
    found = endpoint(render(helm, chart, tmp_path, values), "ServiceMonitor")
    assert found == {"port": "pingmon", "path": "/metrics"}


def test_sidecar_mode_mounts_the_tls_secret_in_the_app_pod_and_its_pod_monitor_uses_https(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    values = {
        "mode": "sidecar",
        "podMonitor": {"enabled": True},
        "web": {"tls": {"secretName": "shop-pingmon-tls"}, "scrape": {"tlsConfig": SCRAPE_TLS}},
    }
    manifests = render(helm, chart, tmp_path, values)
    assert endpoint(manifests, "PodMonitor")["scheme"] == "https"
    template = chart / "templates" / "web-sidecar-test.yaml"
    template.write_text(
        'volumes:\n{{- include "pingmon.sidecar.volumes" . | nindent 2 }}\n'
        'container:\n  {{- include "pingmon.container" . | nindent 2 }}\n'
    )
    path = tmp_path / "values.yaml"
    text = helm.run("template", "rel", chart, "--values", path, "--api-versions", CRD_API,
                    "--show-only", "templates/web-sidecar-test.yaml").stdout  # fmt: skip
    rendered = yaml.safe_load(text)
    assert {"name": "pingmon-tls", "secret": {"secretName": "shop-pingmon-tls"}} in rendered[
        "volumes"
    ]
    assert "--web.config.file=/etc/pingmon/web.yml" in rendered["container"]["args"]


def test_a_web_config_from_a_secret_is_mounted_whole_and_named_to_pingmon(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    values = {"web": {"configSecret": {"name": "pingmon-web", "tls": True}}}
    manifests = render(helm, chart, tmp_path, values)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    pingmon = container(pod)
    assert "--web.config.file=/var/run/secrets/pingmon/web/web.yml" in pingmon["args"]
    assert {
        "name": "pingmon-web-config",
        "secret": {"secretName": "pingmon-web", "items": [{"key": "web.yml", "path": "web.yml"}]},
    } in pod["volumes"]
    mount = {"name": "pingmon-web-config", "mountPath": "/var/run/secrets/pingmon/web"}
    assert {**mount, "readOnly": True} in pingmon["volumeMounts"]
    assert "web.yml" not in one(manifests, "ConfigMap")["data"]
    assert probes(manifests) == (HTTPS_HEALTHY, HTTPS_READY)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {
                "serviceMonitor": {"enabled": True},
                "web": {"config": {"basic_auth_users": {"prometheus": HASH}}},
            },
            "set web.scrape.basicAuth",
        ),
        (
            {
                "podMonitor": {"enabled": True},
                "web": {
                    "tls": {"secretName": "t"},
                    "config": {
                        "tls_server_config": {"client_auth_type": "RequireAndVerifyClientCert"}
                    },
                    "scrape": {"tlsConfig": SCRAPE_TLS},
                },
            },
            "set web.scrape.tlsConfig.cert and keySecret",
        ),
        (
            {"web": {"config": {"basic_auth_users": {}}, "configSecret": {"name": "x"}}},
            "web.config and web.configSecret.name are exclusive",
        ),
    ],
    ids=["basic-auth-without-scrape-credentials", "client-certs-without-one", "inline-and-secret"],
)
def test_a_monitor_that_could_not_scrape_is_refused_saying_what_to_set(
    helm: Helm, chart: Path, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    assert message in refusal(helm, chart, tmp_path, values)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("web.config.basic_auth_user.p=x", "additional properties 'basic_auth_user' not allowed"),
        ("web.config.pingmon.basic_auth_exempt_paths[0]=/metrics", "/web/config/pingmon"),
        ("web.tls.secret=x", "additional properties 'secret' not allowed"),
        ("web.config.basic_auth_users.p=plain-password", "/web/config/basic_auth_users/p"),
    ],
)
def test_mistyped_web_values_are_refused_by_the_schema(
    helm: Helm, chart: Path, assignment: str, message: str
) -> None:
    done = helm.run("template", "rel", chart, "--set", assignment, check=False)
    assert done.returncode == 1
    assert message in done.stderr


def test_the_secure_values_of_docs_kubernetes_md_render_and_validate(
    helm: Helm, chart: Path, tmp_path: Path
) -> None:
    manifests = render_doc_values(helm, chart, tmp_path, "secure-values.yaml")
    assert probes(manifests) == (HTTPS_HEALTHY, HTTPS_READY)
    found = endpoint(manifests, "ServiceMonitor")
    assert (found["scheme"], found["basicAuth"]) == ("https", SCRAPE_AUTH)
    assert web_yml(manifests)["tls_server_config"] == {
        "cert_file": f"{TLS_DIR}/tls.crt",
        "key_file": f"{TLS_DIR}/tls.key",
    }
