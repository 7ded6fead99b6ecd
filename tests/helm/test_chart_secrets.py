"""Secrets created with `kubectl create secret --from-file` end with a newline: through the
chart's secrets.env and secrets.files the value still reaches the provider without it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import Helm, chart_copy, config_text, container, helm_in, one
from tests.integration.origin import serve_origin

TOKEN = "Bearer t0ken-from-file"
MOUNT = "/var/run/secrets/status"


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return helm_in(tmp_path / "helm-home")


def values(header: dict[str, str], secrets: dict[str, Any]) -> dict[str, Any]:
    return {
        "config": {
            "listen": "0.0.0.0:9108",
            "providers": {
                "status-page": {
                    "type": "http",
                    "base_url": "https://status.example.com",
                    "headers": {"Authorization": header},
                }
            },
            "targets": [{"name": "status", "provider": "status-page", "path": "/healthz"}],
        },
        "secrets": secrets,
    }


FORMS = {
    "env": values(
        {"env": "STATUS_TOKEN"},
        {"env": [{"name": "STATUS_TOKEN", "secretName": "pingmon-status", "key": "token"}]},
    ),
    "file": values(
        {"file": f"{MOUNT}/token"},
        {"files": [{"secretName": "pingmon-status", "mountPath": MOUNT}]},
    ),
}


async def check(config: Path, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", "check", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("form", ["env", "file"])
async def test_a_secret_value_ending_in_a_newline_reaches_the_provider_without_it(
    helm: Helm, tmp_path: Path, form: str, newline: str
) -> None:
    chart_values = tmp_path / "values.yaml"
    chart_values.write_text(yaml.safe_dump(FORMS[form]))
    manifests = helm.template(chart_copy(tmp_path), chart_values)
    pingmon = container(one(manifests, "Deployment")["spec"]["template"]["spec"])
    config = yaml.safe_load(config_text(manifests))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGMON_", "STATUS_"))}
    secret_value = TOKEN + newline  # what `kubectl create secret --from-file` stores
    if form == "env":
        assert pingmon["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "pingmon-status"
        env["STATUS_TOKEN"] = secret_value
    else:
        mounted = {m["mountPath"] for m in pingmon["volumeMounts"]}
        assert MOUNT in mounted
        local = tmp_path / "secret" / "token"  # the pod's MOUNT, here
        local.parent.mkdir()
        local.write_bytes(secret_value.encode())
        config["providers"]["status-page"]["headers"]["Authorization"] = {"file": str(local)}
    async with serve_origin() as origin:
        config["providers"]["status-page"]["base_url"] = origin.url
        path = tmp_path / "pingmon.yaml"
        path.write_text(yaml.safe_dump(config))
        code, output = await check(path, env)
        assert code == 0, output
        assert [seen.header("Authorization") for seen in origin.requests] == [TOKEN]
