"""pingmon's own server under --web.config.file: TLS (client certificates and rotation
included), basic auth and headers on every route of listen; POST /-/reload only when enabled."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pingmon.config import Config
from pingmon.webconfig import WebOptions, load_web_config
from tests.integration.conftest import (
    ConfigWriter,
    RunningDaemon,
    StartDaemon,
    eventually,
    ninepic_target,
    stripe_target,
)
from tests.tools import require_tool
from tests.webfiles import Certs, bcrypt_hash, write_web_config

PASSWORD = "scrape-s3cret"
GOOD = aiohttp.encode_basic_auth("prometheus", PASSWORD)
WRONG = aiohttp.encode_basic_auth("prometheus", "not-it")
# Every route on listen, the webhook receiver's included (it shares listen by default).
ROUTES = [
    ("GET", "/"),
    ("GET", "/metrics"),
    ("GET", "/status"),
    ("GET", "/-/healthy"),
    ("GET", "/-/ready"),
    ("POST", "/-/reload"),
    ("POST", "/webhooks/w"),
    ("GET", "/no-such-page"),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs.issue(tmp_path_factory.mktemp("certs"))


def web(path: Path, lifecycle: bool = False, **document: Any) -> WebOptions:
    write_web_config(path, document)
    return WebOptions(config=load_web_config(path), enable_lifecycle=lifecycle)


def users() -> dict[str, str]:
    return {"prometheus": bcrypt_hash(PASSWORD)}


async def status_of(
    running: RunningDaemon, method: str, path: str, authorization: str | None = None
) -> tuple[int, dict[str, str]]:
    """The status and headers of one request, with this Authorization header if given."""
    headers = {} if authorization is None else {"Authorization": authorization}
    async with running.http.request(method, running.url + path, headers=headers) as response:
        await response.read()
        return response.status, dict(response.headers)


@pytest.fixture
def config(config_writer: ConfigWriter) -> Config:
    return config_writer.load([ninepic_target("w")])


# -- basic auth -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_on_listen_needs_basic_auth(
    config: Config, start_daemon: StartDaemon, tmp_path: Path, method: str, path: str
) -> None:
    running = await start_daemon(config, web(tmp_path / "web.yml", basic_auth_users=users()))
    status, headers = await status_of(running, method, path)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="pingmon", charset="UTF-8"'
    assert (await status_of(running, method, path, WRONG))[0] == 401
    assert (await status_of(running, method, path, GOOD))[0] != 401


async def test_the_right_password_is_served_and_a_wrong_one_or_user_is_not(
    config: Config, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon(config, web(tmp_path / "web.yml", basic_auth_users=users()))
    assert (await status_of(running, "GET", "/metrics", GOOD))[0] == 200
    assert (await status_of(running, "GET", "/metrics", WRONG))[0] == 401
    other_user = aiohttp.encode_basic_auth("grafana", PASSWORD)
    assert (await status_of(running, "GET", "/metrics", other_user))[0] == 401


async def test_healthy_is_served_without_credentials_only_when_the_file_exempts_it(
    config: Config, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    exempt = {"basic_auth_exempt_paths": ["/-/healthy"]}
    running = await start_daemon(
        config, web(tmp_path / "web.yml", basic_auth_users=users(), pingmon=exempt)
    )
    assert (await status_of(running, "GET", "/-/healthy"))[0] == 200
    assert (await status_of(running, "GET", "/-/ready"))[0] == 401
    assert (await status_of(running, "GET", "/metrics"))[0] == 401
    # Other spellings and methods are not the exempted route.
    for method, path in [("GET", "/-/healthy/"), ("GET", "//-/healthy"), ("POST", "/-/healthy")]:
        assert (await status_of(running, method, path))[0] == 401, (method, path)


async def test_a_new_password_in_the_file_applies_without_a_restart(
    config: Config, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "web.yml"
    running = await start_daemon(config, web(path, basic_auth_users=users()))
    assert (await status_of(running, "GET", "/metrics", GOOD))[0] == 200
    write_web_config(path, {"basic_auth_users": {"prometheus": bcrypt_hash("rotated")}})
    assert (await status_of(running, "GET", "/metrics", GOOD))[0] == 401
    rotated = aiohttp.encode_basic_auth("prometheus", "rotated")
    assert (await status_of(running, "GET", "/metrics", rotated))[0] == 200


async def test_a_web_config_that_becomes_bad_keeps_the_last_good_one(
    config: Config, start_daemon: StartDaemon, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "web.yml"
    running = await start_daemon(config, web(path, basic_auth_users=users()))
    path.write_text("basic_auth_users: {prometheus: plain-text}\n")
    assert (await status_of(running, "GET", "/metrics"))[0] == 401
    assert (await status_of(running, "GET", "/metrics", GOOD))[0] == 200
    assert "web configuration refused; the last good one stays" in caplog.text


# -- headers ----------------------------------------------------------------------------------

HEADERS = {
    "X-Frame-Options": "deny",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=31536000",
    "Content-Security-Policy": "default-src 'none'",
}


async def test_configured_headers_are_on_every_response_refusals_included(
    config: Config, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon(
        config,
        web(
            tmp_path / "web.yml",
            basic_auth_users=users(),
            http_server_config={"headers": HEADERS},
        ),
    )
    answers = [
        await status_of(running, "GET", "/metrics", GOOD),  # streamed
        await status_of(running, "GET", "/status", GOOD),
        await status_of(running, "GET", "/metrics"),  # 401
        await status_of(running, "GET", "/nowhere", GOOD),  # 404
        await status_of(running, "POST", "/-/reload", GOOD),  # 403
    ]
    assert [status for status, _ in answers] == [200, 200, 401, 404, 403]
    for _, headers in answers:
        assert HEADERS.items() <= headers.items()


# -- TLS --------------------------------------------------------------------------------------


async def test_tls_serves_the_configured_certificate(
    config: Config, start_daemon: StartDaemon, tmp_path: Path, certs: Certs
) -> None:
    options = web(tmp_path / "web.yml", tls_server_config=certs.tls_server_config())
    running = await start_daemon(config, options, certs.client_context())
    assert running.url.startswith("https://")
    assert (await status_of(running, "GET", "/metrics"))[0] == 200
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.ClientError):
            await plain.get(running.url.replace("https", "http") + "/metrics")


def client_auth(certs: Certs, mode: str = "RequireAndVerifyClientCert") -> dict[str, Any]:
    return certs.tls_server_config(client_auth_type=mode, client_ca_file=str(certs.ca_file))


async def handshake(url: str, context: ssl.SSLContext) -> int:
    """GET /-/healthy with this client context: the status, or raises what the TLS layer did."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/-/healthy", ssl=context) as response,
    ):
        return response.status


async def test_require_and_verify_client_cert_refuses_a_client_without_one(
    config: Config, start_daemon: StartDaemon, tmp_path: Path, certs: Certs
) -> None:
    options = web(tmp_path / "web.yml", tls_server_config=client_auth(certs))
    running = await start_daemon(config, options, certs.client_context(with_client_cert=True))
    assert await handshake(running.url, certs.client_context(with_client_cert=True)) == 200
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await handshake(running.url, certs.client_context())


async def test_a_client_certificate_from_another_ca_is_refused(
    config: Config, start_daemon: StartDaemon, tmp_path: Path, certs: Certs
) -> None:
    options = web(tmp_path / "web.yml", tls_server_config=client_auth(certs))
    running = await start_daemon(config, options, certs.client_context(with_client_cert=True))
    stranger = Certs.issue(tmp_path / "stranger")
    context = certs.client_context()
    context.load_cert_chain(str(stranger.client_cert), str(stranger.client_key))
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await handshake(running.url, context)


async def test_verify_client_cert_if_given_serves_clients_with_and_without_one(
    config: Config, start_daemon: StartDaemon, tmp_path: Path, certs: Certs
) -> None:
    tls = client_auth(certs, "VerifyClientCertIfGiven")
    running = await start_daemon(config, web(tmp_path / "web.yml", tls_server_config=tls))
    assert await handshake(running.url, certs.client_context()) == 200
    assert await handshake(running.url, certs.client_context(with_client_cert=True)) == 200


async def test_min_version_tls13_refuses_a_tls12_client(
    config: Config, start_daemon: StartDaemon, tmp_path: Path, certs: Certs
) -> None:
    tls = certs.tls_server_config(min_version="TLS13")
    running = await start_daemon(config, web(tmp_path / "web.yml", tls_server_config=tls))
    old = certs.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await handshake(running.url, old)
    assert await handshake(running.url, certs.client_context()) == 200


def served_common_name(address: str, ca_file: Path) -> str:
    """The common name of the certificate a fresh TLS connection is served."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        certificate: dict[str, Any] = tls.getpeercert() or {}
        names = [pair for rdn in certificate["subject"] for pair in rdn]
        return next(str(value) for key, value in names if key == "commonName")


async def test_a_rotated_certificate_is_served_to_the_next_connection(
    config: Config, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    certs = Certs.issue(tmp_path / "rotating")
    options = web(tmp_path / "web.yml", tls_server_config=certs.tls_server_config())
    running = await start_daemon(config, options, certs.client_context())
    address = running.url.removeprefix("https://")
    assert await asyncio.to_thread(served_common_name, address, certs.ca_file) == "server-1"
    certs.rotate("server-2")
    assert await asyncio.to_thread(served_common_name, address, certs.ca_file) == "server-2"
    assert (await status_of(running, "GET", "/-/healthy"))[0] == 200


async def test_a_half_written_rotation_keeps_serving_the_last_good_certificate(
    config: Config, start_daemon: StartDaemon, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    certs = Certs.issue(tmp_path / "rotating")
    options = web(tmp_path / "web.yml", tls_server_config=certs.tls_server_config())
    running = await start_daemon(config, options, certs.client_context())
    address = running.url.removeprefix("https://")
    certs.server_key.write_text("")  # the key is being rewritten
    assert await asyncio.to_thread(served_common_name, address, certs.ca_file) == "server-1"
    assert "TLS files refused; the last good certificate keeps serving" in caplog.text
    certs.rotate("server-2")
    assert await asyncio.to_thread(served_common_name, address, certs.ca_file) == "server-2"


async def test_curl_needs_the_client_certificate_and_the_password(
    config: Config, start_daemon: StartDaemon, tmp_path: Path, certs: Certs
) -> None:
    curl = require_tool("curl")
    options = web(
        tmp_path / "web.yml", tls_server_config=client_auth(certs), basic_auth_users=users()
    )
    running = await start_daemon(config, options, certs.client_context(with_client_cert=True))
    tls = ["--cacert", str(certs.ca_file)]
    client = ["--cert", str(certs.client_cert), "--key", str(certs.client_key)]

    async def curl_status(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", *args, running.url + "/metrics",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 20)
        return out.decode()

    assert await curl_status(*tls, *client) == "401"
    assert await curl_status(*tls, *client, "-u", f"prometheus:{PASSWORD}") == "200"
    assert await curl_status(*tls, *client, "-u", "prometheus:wrong") == "401"
    assert await curl_status(*tls, "-u", f"prometheus:{PASSWORD}") == "000"  # no handshake


# -- lifecycle --------------------------------------------------------------------------------


async def test_reload_over_http_is_403_unless_lifecycle_is_enabled(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("first")]))
    config_writer.write([ninepic_target("first"), stripe_target("second")])
    async with running.http.post(running.url + "/-/reload") as response:
        assert response.status == 403
        assert await response.text() == "Lifecycle API is not enabled.\n"
    assert [t.name for t in running.daemon.config.targets] == ["first"]


FORM_POSTS = [
    {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
    {"Origin": "https://evil.example", "Content-Type": "text/plain"},
    {"Origin": "null", "Content-Type": "multipart/form-data; boundary=x"},
    {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
]


@pytest.mark.parametrize("headers", FORM_POSTS)
async def test_a_cross_site_form_post_never_reloads_even_when_enabled(
    config_writer: ConfigWriter, start_daemon: StartDaemon, headers: dict[str, str]
) -> None:
    running = await start_daemon(
        config_writer.load([ninepic_target("first")]), WebOptions(enable_lifecycle=True)
    )
    config_writer.write([ninepic_target("first"), stripe_target("second")])
    async with running.http.post(running.url + "/-/reload", headers=headers, data="x") as response:
        assert response.status == 403
    assert [t.name for t in running.daemon.config.targets] == ["first"]
    async with running.http.post(running.url + "/-/reload") as response:
        assert response.status == 200
    assert [t.name for t in running.daemon.config.targets] == ["first", "second"]


async def test_a_same_origin_reload_from_the_browser_is_served(
    config: Config, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config, WebOptions(enable_lifecycle=True))
    origin = running.url
    for headers in ({"Origin": origin}, {"Sec-Fetch-Site": "same-origin", "Origin": origin}):
        async with running.http.post(running.url + "/-/reload", headers=headers) as response:
            assert response.status == 200, headers


# -- the command line -------------------------------------------------------------------------


async def run_pingmon(*args: str, timeout: float = 30) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


@pytest.mark.parametrize("command", [["run"], ["config", "validate"]])
async def test_a_bad_web_config_exits_2_with_one_line_per_problem(
    config_writer: ConfigWriter, tmp_path: Path, command: list[str]
) -> None:
    path = config_writer.write([ninepic_target("w")])
    bad = write_web_config(
        tmp_path / "web.yml",
        {
            "tls_server_config": {"cert_file": "missing.crt", "key_file": "missing.key"},
            "basic_auth_users": {"prometheus": "plain"},
        },
    )
    code, output = await run_pingmon(
        *command, "--config.file", str(path), "--web.config.file", str(bad)
    )
    assert code == 2
    assert sorted(output.splitlines()) == [
        f"{bad}: basic_auth_users.prometheus: is not a bcrypt hash ($2y$10$ followed by 53 "
        "characters; make one with htpasswd -nBC 10 \"\" | tr -d ':\\n')",
        f"{bad}: tls_server_config.cert_file: {tmp_path / 'missing.crt'}: no such file",
    ]


async def test_config_validate_names_both_files_when_both_are_good(
    config_writer: ConfigWriter, tmp_path: Path
) -> None:
    path = config_writer.write([ninepic_target("w")])
    good = write_web_config(tmp_path / "web.yml", {"basic_auth_users": users()})
    code, output = await run_pingmon(
        "config", "validate", "--config", str(path), "--web.config.file", str(good)
    )
    assert code == 0, output
    assert output.splitlines() == [f"{path}: ok (4 providers, 1 targets)", f"{good}: ok"]


async def test_problems_of_the_config_and_the_web_config_are_refused_together(
    tmp_path: Path,
) -> None:
    config = tmp_path / "pingmon.yaml"
    config.write_text("bogus: 1\n")
    web_file = write_web_config(tmp_path / "web.yml", {"bogus": 1})
    code, output = await run_pingmon(
        "run", "--config", str(config), "--web.config.file", str(web_file),
        "--web.listen-address", "nowhere",
    )  # fmt: skip
    assert code == 2
    lines = output.splitlines()
    assert lines[0].startswith(f"{config}: bogus: unknown key")
    assert lines[1] == "--web.listen-address: 'nowhere' is not host:port, e.g. 0.0.0.0:9108"
    assert lines[2] == f"{web_file}: bogus: unknown key (exporter-toolkit refuses it too)"


async def test_web_listen_address_overrides_listen_and_config_file_is_config(
    config_writer: ConfigWriter,
) -> None:
    from tests.processes import free_port

    path = config_writer.write([ninepic_target("w")], listen="127.0.0.1:1")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", "run", "--config.file", str(path),
        f"--web.listen-address=127.0.0.1:{port}", stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/-/ready") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, timeout=15)
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 20) == 0
