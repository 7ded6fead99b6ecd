"""Checks through a real proxy (tinyproxy on loopback): the environment's HTTP(S)_PROXY and
NO_PROXY, a provider's own proxy_url, proxy_url: none, and proxy Basic auth from secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from pingmon.config import load_config
from pingmon.errors import ErrorClass
from pingmon.oneshot import check_once
from pingmon.results import CheckResult
from tests.integration.closing import StreamConnections
from tests.integration.origin import Origin, serve_origin
from tests.processes import free_port
from tests.tinyproxy import Tinyproxy

PROXY_USER = "monitor"
PROXY_PASSWORD = "proxy-pass-canary"
VIA = "tinyproxy"


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    proxy = Tinyproxy(tmp_path / "proxy").start()
    yield proxy
    proxy.stop()


@pytest.fixture
def guarded_proxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    proxy = Tinyproxy(tmp_path / "guarded", basic_auth=(PROXY_USER, PROXY_PASSWORD)).start()
    yield proxy
    proxy.stop()


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with serve_origin() as running:
        yield running


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_origin(certificate_authority: trustme.CA) -> AsyncIterator[Origin]:
    async with serve_origin(certificate_authority.issue_cert("pbx.internal")) as running:
        yield running


def write_config(tmp_path: Path, base_url: str, **provider: Any) -> Path:
    document = {
        "defaults": {"timeout": "5s"},
        "providers": {"p": {"type": "http", "base_url": base_url, **provider}},
        "targets": [{"name": "t", "provider": "p", "path": "/healthz"}],
    }
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


async def check(tmp_path: Path, base_url: str, **provider: Any) -> CheckResult:
    (result,) = await check_once(load_config(write_config(tmp_path, base_url, **provider)), [])
    return result


def via_proxy(origin: Origin) -> list[str | None]:
    return [seen.header("Via") for seen in origin.requests]


# The environment, as curl reads it.


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
async def test_an_http_proxy_from_the_environment_carries_the_check(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tinyproxy: Tinyproxy,
    origin: Origin,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, tinyproxy.url)
    result = await check(tmp_path, origin.url)
    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200)
    assert tinyproxy.requests() == [f"GET {origin.url}/healthz"]
    (via,) = via_proxy(origin)
    assert via is not None
    assert VIA in via


async def test_a_proxy_without_a_scheme_is_an_http_proxy_as_for_curl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tinyproxy: Tinyproxy, origin: Origin
) -> None:
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url.removeprefix("http://"))
    assert (await check(tmp_path, origin.url)).error_class is ErrorClass.NONE
    assert tinyproxy.requests() == [f"GET {origin.url}/healthz"]


async def test_an_https_proxy_from_the_environment_tunnels_the_check_with_connect(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tinyproxy: Tinyproxy,
    tls_origin: Origin,
    certificate_authority: trustme.CA,
) -> None:
    """Through the tunnel, TLS still verifies the provider's own certificate and name."""
    ca_file = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not for https:// targets
    tls = {"ca_file": str(ca_file), "server_name": "pbx.internal"}
    result = await check(tmp_path, tls_origin.url, tls=tls)
    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200)
    assert tinyproxy.requests() == [f"CONNECT {tls_origin.url.removeprefix('https://')}"]
    assert tls_origin.server_names == ["pbx.internal"]


@pytest.mark.parametrize(
    ("variable", "no_proxy"),
    [
        ("NO_PROXY", "127.0.0.1"),
        ("no_proxy", "127.0.0.1"),
        ("NO_PROXY", "127.0.0.0/8"),
        ("NO_PROXY", "*"),
        ("NO_PROXY", "example.com, 127.0.0.1"),
    ],
)
async def test_no_proxy_sends_the_check_straight_to_the_provider(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tinyproxy: Tinyproxy,
    origin: Origin,
    variable: str,
    no_proxy: str,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.setenv(variable, no_proxy)
    assert (await check(tmp_path, origin.url)).error_class is ErrorClass.NONE
    assert via_proxy(origin) == [None]
    assert tinyproxy.requests() == []


async def test_no_proxy_naming_another_host_leaves_the_check_on_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tinyproxy: Tinyproxy, origin: Origin
) -> None:
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,.0.0.1,127.0.0.2")  # loopback is not implied
    assert (await check(tmp_path, origin.url)).error_class is ErrorClass.NONE
    assert tinyproxy.requests() == [f"GET {origin.url}/healthz"]


async def test_a_proxy_in_the_environment_that_is_down_fails_the_check_as_connect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, origin: Origin
) -> None:
    dead = free_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    result = await check(tmp_path, origin.url)
    assert result.error_class is ErrorClass.CONNECT
    assert f"127.0.0.1:{dead}" in result.detail
    assert origin.requests == []


# A provider's own proxy_url, and none.


async def test_a_provider_proxy_url_carries_the_check_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tinyproxy: Tinyproxy, origin: Origin
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", "*")
    result = await check(tmp_path, origin.url, proxy_url=tinyproxy.url)
    assert result.error_class is ErrorClass.NONE
    assert tinyproxy.requests() == [f"GET {origin.url}/healthz"]


async def test_proxy_url_none_goes_straight_to_the_provider_past_the_environments_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tinyproxy: Tinyproxy, origin: Origin
) -> None:
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.setenv("ALL_PROXY", tinyproxy.url)
    assert (await check(tmp_path, origin.url, proxy_url="none")).error_class is ErrorClass.NONE
    assert via_proxy(origin) == [None]
    assert tinyproxy.requests() == []


# Proxy Basic auth, with the credentials as secrets.


@pytest.fixture
def proxy_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("TEST_PROXY_USER", PROXY_USER)
    monkeypatch.setenv("TEST_PROXY_PASSWORD", PROXY_PASSWORD)
    return {
        "proxy_username": {"env": "TEST_PROXY_USER"},
        "proxy_password": {"env": "TEST_PROXY_PASSWORD"},
    }


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_proxy_asking_for_basic_auth_gets_the_secret_credentials(
    tmp_path: Path,
    guarded_proxy: Tinyproxy,
    origin: Origin,
    tls_origin: Origin,
    certificate_authority: trustme.CA,
    proxy_secrets: dict[str, Any],
    scheme: str,
) -> None:
    ca_file = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(ca_file))
    target = origin if scheme == "http" else tls_origin
    tls = {"ca_file": str(ca_file), "server_name": "pbx.internal"} if scheme == "https" else {}
    result = await check(
        tmp_path, target.url, proxy_url=guarded_proxy.url, tls=tls, **proxy_secrets
    )
    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200)
    assert len(guarded_proxy.requests()) == 1
    assert len(target.requests) == 1
    assert target.requests[0].header("Proxy-Authorization") is None  # for the proxy only


@pytest.mark.parametrize(
    ("scheme", "error_class", "http_status"),
    [("http", ErrorClass.AUTH, 401), ("https", ErrorClass.CONNECT, None)],
)
async def test_a_proxy_refusing_the_credentials_fails_the_check_without_showing_them(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    guarded_proxy: Tinyproxy,
    origin: Origin,
    tls_origin: Origin,
    scheme: str,
    error_class: ErrorClass,
    http_status: int | None,
) -> None:
    """tinyproxy 1.11 refuses wrong credentials with 401 (and none at all with 407). Plain
    http: the proxy's answer is the status line read (status decides). https: the tunnel was
    refused, the provider never reached (connect, the proxy's status in the detail)."""
    wrong = "wrong-pass-canary"
    monkeypatch.setenv("TEST_PROXY_USER", PROXY_USER)
    monkeypatch.setenv("TEST_PROXY_PASSWORD", wrong)
    target = origin if scheme == "http" else tls_origin
    result = await check(
        tmp_path,
        target.url,
        proxy_url=guarded_proxy.url,
        proxy_username={"env": "TEST_PROXY_USER"},
        proxy_password={"env": "TEST_PROXY_PASSWORD"},
        tls={"insecure_skip_verify": True} if scheme == "https" else {},
    )
    assert (result.error_class, result.http_status) == (error_class, http_status)
    assert "401" in result.detail
    assert wrong not in result.detail
    assert len(guarded_proxy.requests()) == 1
    assert target.requests == []


async def test_proxy_credentials_in_the_environments_url_are_sent_to_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guarded_proxy: Tinyproxy, origin: Origin
) -> None:
    address = guarded_proxy.url.replace("http://", f"http://{PROXY_USER}:{PROXY_PASSWORD}@")
    monkeypatch.setenv("http_proxy", address)
    result = await check(tmp_path, origin.url)
    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200)
    assert guarded_proxy.requests() == [f"GET {origin.url}/healthz"]


async def test_without_credentials_a_guarded_proxy_answers_407(
    tmp_path: Path, guarded_proxy: Tinyproxy, origin: Origin
) -> None:
    result = await check(tmp_path, origin.url, proxy_url=guarded_proxy.url)
    assert (result.error_class, result.http_status) == (ErrorClass.CLIENT_ERROR, 407)
    assert origin.requests == []


# The command line, with the environment set for the process explicitly.


async def test_pingmon_check_honours_https_proxy_and_http_proxy_of_its_environment(
    tmp_path: Path, tinyproxy: Tinyproxy, origin: Origin
) -> None:
    path = write_config(tmp_path, origin.url)
    environment = {
        "PATH": "/usr/bin:/bin",
        "HTTP_PROXY": tinyproxy.url,
        "HTTPS_PROXY": tinyproxy.url,
        "NO_PROXY": "",
    }
    # Not subprocess.run: the origin answers from this test's event loop.
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pingmon", "check", "--json", "--config", str(path)),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (stdout + stderr).decode()
    (result,) = json.loads(stdout)
    assert (result["error_class"], result["http_status"]) == ("none", 200)
    assert tinyproxy.requests() == [f"GET {origin.url}/healthz"]


# An https:// proxy: TLS to the proxy itself (here a TLS front on tinyproxy).


@pytest.fixture
async def tls_front(tinyproxy: Tinyproxy, certificate_authority: trustme.CA) -> AsyncIterator[str]:
    """``https://127.0.0.1:PORT``: TLS ends here, the bytes go on to tinyproxy."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(context)

    connections = StreamConnections()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.track(writer)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", tinyproxy.port)
        connections.track(up_writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}"
    server.close()
    connections.abort()
    await server.wait_closed()


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_an_https_proxy_is_reached_over_tls_verified_like_the_provider(
    tmp_path: Path,
    tinyproxy: Tinyproxy,
    tls_front: str,
    origin: Origin,
    tls_origin: Origin,
    certificate_authority: trustme.CA,
    scheme: str,
) -> None:
    ca_file = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(ca_file))
    target = origin if scheme == "http" else tls_origin
    tls: dict[str, Any] = {"ca_file": str(ca_file)}
    if scheme == "https":
        tls["server_name"] = "pbx.internal"
    result = await check(tmp_path, target.url, proxy_url=tls_front, tls=tls)
    assert (result.error_class, result.http_status) == (ErrorClass.NONE, 200)
    assert len(tinyproxy.requests()) == 1
    assert len(target.requests) == 1


async def test_an_https_proxy_with_an_untrusted_certificate_fails_the_check_as_tls(
    tmp_path: Path, tinyproxy: Tinyproxy, tls_front: str, origin: Origin
) -> None:
    result = await check(tmp_path, origin.url, proxy_url=tls_front)
    assert result.error_class is ErrorClass.TLS
    assert tinyproxy.requests() == []
