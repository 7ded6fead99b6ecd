"""tls.server_name: a provider reached by IP address whose certificate names another host
(a Simotel PBX behind NAT) is verified against, and asked for by SNI, that name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from pingmon.backoff import RateLimitGate
from pingmon.config import BackoffSettings, load_config
from pingmon.daemon import new_sessions
from pingmon.errors import ErrorClass
from pingmon.oneshot import check_once
from pingmon.results import CheckResult
from pingmon.runner import Runner, build_plans
from tests.integration.origin import Origin, serve_origin

NAME = "pbx.internal"


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(tmp_path: Path, certificate_authority: trustme.CA) -> str:
    path = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
async def pbx(certificate_authority: trustme.CA) -> AsyncIterator[Origin]:
    """An https server on 127.0.0.1 whose certificate names pbx.internal only."""
    async with serve_origin(certificate_authority.issue_cert(NAME)) as running:
        yield running


PROVIDERS = {
    "http": ({"type": "http"}, {"path": "/healthz"}),
    "simotel": ({"type": "simotel", "auth": "token", "api_key": "simotel-key"}, {}),
}


async def check(
    tmp_path: Path, origin: Origin, tls: dict[str, Any], provider_type: str = "http"
) -> CheckResult:
    provider, target = PROVIDERS[provider_type]
    document = {
        "defaults": {"timeout": "5s"},
        "providers": {"p": {**provider, "base_url": origin.url, "tls": tls}},
        "targets": [{"name": "t", "provider": "p", **target}],
    }
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    (result,) = await check_once(load_config(path), [])
    return result


@pytest.mark.parametrize("provider_type", list(PROVIDERS))
async def test_a_server_reached_by_ip_whose_certificate_names_another_host_fails_as_tls(
    tmp_path: Path, pbx: Origin, ca_file: str, provider_type: str
) -> None:
    result = await check(tmp_path, pbx, {"ca_file": ca_file}, provider_type)
    assert result.error_class is ErrorClass.TLS
    assert pbx.requests == []


@pytest.mark.parametrize("provider_type", list(PROVIDERS))
async def test_server_name_verifies_the_certificate_against_that_name_and_sends_it_as_sni(
    tmp_path: Path, pbx: Origin, ca_file: str, provider_type: str
) -> None:
    result = await check(tmp_path, pbx, {"ca_file": ca_file, "server_name": NAME}, provider_type)
    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200)
    assert pbx.server_names == [NAME]
    assert len(pbx.requests) == 1


async def test_the_host_header_still_names_base_urls_host(
    tmp_path: Path, pbx: Origin, ca_file: str
) -> None:
    """As in blackbox_exporter and Prometheus, server_name is for TLS only."""
    await check(tmp_path, pbx, {"ca_file": ca_file, "server_name": NAME})
    assert pbx.requests[0].header("Host") == pbx.url.removeprefix("https://")


@pytest.mark.parametrize("wrong", ["other.internal", "internal", "127.0.0.1"])
async def test_a_server_name_the_certificate_does_not_carry_fails_as_tls(
    tmp_path: Path, pbx: Origin, ca_file: str, wrong: str
) -> None:
    result = await check(tmp_path, pbx, {"ca_file": ca_file, "server_name": wrong})
    assert result.error_class is ErrorClass.TLS
    assert pbx.requests == []


async def test_server_name_without_the_ca_still_fails_as_tls(tmp_path: Path, pbx: Origin) -> None:
    assert (await check(tmp_path, pbx, {"server_name": NAME})).error_class is ErrorClass.TLS


async def test_server_name_with_insecure_skip_verify_still_sends_sni(
    tmp_path: Path, pbx: Origin
) -> None:
    result = await check(tmp_path, pbx, {"insecure_skip_verify": True, "server_name": NAME})
    assert result.error_class is ErrorClass.NONE
    assert pbx.server_names == [NAME]


async def test_providers_sharing_an_address_never_share_a_connection_across_server_names(
    tmp_path: Path, certificate_authority: trustme.CA, ca_file: str
) -> None:
    """aiohttp pools keep-alive connections by host, port and server name: each provider's
    requests go over a handshake for its own name, however they alternate."""
    certificate = certificate_authority.issue_cert("pbx.internal", "pbx2.internal")
    names = {"one": "pbx.internal", "two": "pbx2.internal"}
    async with serve_origin(certificate) as origin:
        providers = {
            provider: {
                "type": "http",
                "base_url": origin.url,
                "tls": {"ca_file": ca_file, "server_name": host},
            }
            for provider, host in names.items()
        }
        targets = [
            {"name": f"{provider}-{index}", "provider": provider, "path": f"/{provider}"}
            for index in range(3)
            for provider in providers
        ]
        path = tmp_path / "pingmon.yaml"
        path.write_text(yaml.safe_dump({"providers": providers, "targets": targets}))
        plans = build_plans(load_config(path))
        async with new_sessions() as sessions:
            runner = Runner(sessions, RateLimitGate(BackoffSettings()), concurrency=1)
            results = [await runner.run(plan) for plan in plans.values()]  # one after another
    assert [result.error_class for result in results if result] == [ErrorClass.NONE] * 6
    assert [(seen.path, seen.server_name) for seen in origin.requests] == [
        (f"/{provider}", names[provider]) for _ in range(3) for provider in names
    ]
    assert sorted(map(str, origin.server_names)) == sorted(names.values())  # one each, reused
