"""The web configuration file: exporter-toolkit's format, refused whole with one line per fault."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from pingmon.errors import ConfigError
from pingmon.webconfig import (
    HEADER_VALUES,
    UNSUPPORTED,
    BasicAuthUser,
    LiveWebConfig,
    WebConfig,
    load_web_config,
)
from pingmon.webtls import ClientAuth
from tests.webfiles import Certs, bcrypt_hash, write_web_config


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs.issue(tmp_path_factory.mktemp("certs"))


def load(tmp_path: Path, document: dict[str, Any]) -> WebConfig:
    return load_web_config(write_web_config(tmp_path / "web.yml", document))


def refused(tmp_path: Path, document: dict[str, Any] | str) -> list[str]:
    path = tmp_path / "web.yml"
    if isinstance(document, str):
        path.write_text(document)
    else:
        write_web_config(path, document)
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    return caught.value.lines()


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_web_config_that_is_not_a_regular_file_is_refused_unread(
    tmp_path: Path, special: str
) -> None:
    name = tmp_path / "fifo" if special == "fifo" else Path(special)
    if special == "fifo":
        os.mkfifo(name)
    with pytest.raises(ConfigError) as caught:
        load_web_config(name)
    kind = "a FIFO" if special == "fifo" else "a character device"
    assert caught.value.lines() == [
        f"{name}: cannot read the file: it is {kind}, not a regular file"
    ]


def test_an_empty_file_serves_plain_http_without_authentication(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text("")
    config = load_web_config(tmp_path / "web.yml")
    assert (config.tls, config.users, dict(config.headers)) == (None, (), {})


def test_an_empty_tls_server_config_is_plain_http_as_in_exporter_toolkit(tmp_path: Path) -> None:
    assert load(tmp_path, {"tls_server_config": {}}).tls is None


def test_a_complete_file_loads_tls_users_headers_and_the_exemption(
    tmp_path: Path, certs: Certs
) -> None:
    config = load(
        tmp_path,
        {
            "tls_server_config": certs.tls_server_config(
                client_auth_type="RequireAndVerifyClientCert",
                client_ca_file=str(certs.ca_file),
                min_version="TLS13",
            ),
            "http_server_config": {
                "http2": False,
                "headers": {"X-Frame-Options": "deny", "Content-Security-Policy": ""},
            },
            "basic_auth_users": {"prometheus": bcrypt_hash("pw")},
            "pingmon": {"basic_auth_exempt_paths": ["/-/healthy"]},
        },
    )
    assert config.tls is not None
    assert config.tls.client_auth is ClientAuth.REQUIRE_AND_VERIFY_CLIENT_CERT
    assert config.tls.min_version is ssl.TLSVersion.TLSv1_3
    assert config.tls.max_version is ssl.TLSVersion.TLSv1_3
    assert len(config.users) == 1
    assert dict(config.headers) == {"X-Frame-Options": "deny"}  # a blank header is unset
    assert config.exempt_paths == {"/-/healthy"}


def test_relative_file_names_are_taken_from_the_web_config_directory(
    tmp_path: Path, certs: Certs
) -> None:
    config = load_web_config(
        write_web_config(
            certs.directory / "web.yml",
            {"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"}},
        )
    )
    assert config.tls is not None
    assert config.tls.cert_file == str(certs.server_cert)


def test_unknown_keys_are_refused_at_every_level(tmp_path: Path, certs: Certs) -> None:
    lines = refused(
        tmp_path,
        {
            "tls_server_config": certs.tls_server_config(cert_fle="x"),
            "http_server_config": {"header": {}},
            "basic_auth_user": {},
        },
    )
    assert set(lines) == {
        f"{tmp_path / 'web.yml'}: tls_server_config.cert_fle: unknown key "
        "(exporter-toolkit refuses it too)",
        f"{tmp_path / 'web.yml'}: http_server_config.header: unknown key "
        "(exporter-toolkit refuses it too)",
        f"{tmp_path / 'web.yml'}: basic_auth_user: unknown key (exporter-toolkit refuses it too)",
    }


@pytest.mark.parametrize("name", list(HEADER_VALUES))
def test_every_header_exporter_toolkit_allows_is_accepted(tmp_path: Path, name: str) -> None:
    value = (HEADER_VALUES[name] or ("max-age=1",))[0]
    headers = load(tmp_path, {"http_server_config": {"headers": {name: value}}}).headers
    assert dict(headers) == {name: value}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Server", "x", "cannot be configured (allowed: Strict-Transport-Security, "),
        ("Access-Control-Allow-Origin", "*", "cannot be configured"),
        ("x-frame-options", "deny", "cannot be configured"),  # exporter-toolkit's spelling only
        ("X-Frame-Options", "allow-from x", "must be deny or sameorigin, got 'allow-from x'"),
        ("X-Content-Type-Options", "sniff", "must be nosniff, got 'sniff'"),
        ("Content-Security-Policy", "default-src 'self'\r\nSet-Cookie: a=b", "control characters"),
    ],
)
def test_headers_exporter_toolkit_refuses_are_refused(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    lines = refused(tmp_path, {"http_server_config": {"headers": {name: value}}})
    assert len(lines) == 1
    assert f"http_server_config.headers.{name}: " in lines[0]
    assert message in lines[0]


@pytest.mark.parametrize("prefix", [b"$2a$", b"$2b$", b"$2y$"])
def test_bcrypt_hashes_of_every_prefix_are_accepted(tmp_path: Path, prefix: bytes) -> None:
    users = load(tmp_path, {"basic_auth_users": {"u": bcrypt_hash("pw", prefix=prefix)}}).users
    assert len(users) == 1


@pytest.mark.parametrize(
    "value", ["pw", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "$2y$10$short", "$2y$99$" + "a" * 53]
)
def test_a_password_that_is_not_a_bcrypt_hash_is_refused(tmp_path: Path, value: str) -> None:
    lines = refused(tmp_path, {"basic_auth_users": {"alice": value}})
    assert lines == [
        f"{tmp_path / 'web.yml'}: basic_auth_users.alice: is not a bcrypt hash ($2y$10$ "
        "followed by 53 characters; make one with htpasswd -nBC 10 \"\" | tr -d ':\\n')"
    ]


def test_a_user_name_with_a_colon_is_refused(tmp_path: Path) -> None:
    lines = refused(tmp_path, {"basic_auth_users": {"a:b": bcrypt_hash("pw")}})
    assert lines == [
        f"{tmp_path / 'web.yml'}: basic_auth_users.a:b: a user name cannot contain ':' (RFC 7617)"
    ]


@pytest.mark.parametrize("key", ["cert_file", "key_file"])
def test_a_missing_certificate_or_key_file_names_its_path(
    tmp_path: Path, certs: Certs, key: str
) -> None:
    lines = refused(tmp_path, {"tls_server_config": certs.tls_server_config(**{key: "gone.pem"})})
    assert lines == [
        f"{tmp_path / 'web.yml'}: tls_server_config.{key}: {tmp_path / 'gone.pem'}: no such file"
    ]


@pytest.mark.parametrize("special", ["directory", "fifo", "/dev/zero"])
def test_a_certificate_that_is_not_a_regular_file_is_refused_unread(
    tmp_path: Path, certs: Certs, special: str
) -> None:
    if special == "directory":
        name = tmp_path / "dir"
        name.mkdir()
    elif special == "fifo":
        name = tmp_path / "fifo"
        os.mkfifo(name)
    else:
        name = Path(special)
    [line] = refused(tmp_path, {"tls_server_config": certs.tls_server_config(cert_file=str(name))})
    assert line.endswith(f"tls_server_config.cert_file: {name}: is not a regular file")


def test_tls_needs_both_cert_file_and_key_file(tmp_path: Path, certs: Certs) -> None:
    lines = refused(tmp_path, {"tls_server_config": {"cert_file": str(certs.server_cert)}})
    assert lines == [f"{tmp_path / 'web.yml'}: tls_server_config.key_file: is required"]


def test_a_key_of_another_certificate_is_refused(tmp_path: Path, certs: Certs) -> None:
    config = certs.tls_server_config(key_file=str(certs.client_key))
    [line] = refused(tmp_path, {"tls_server_config": config})
    assert line.endswith(
        f"tls_server_config.key_file: {certs.client_key}: does not match the certificate "
        "in cert_file"
    )


def test_a_file_that_is_no_certificate_is_refused(tmp_path: Path, certs: Certs) -> None:
    config = certs.tls_server_config(cert_file=str(certs.server_key))
    [line] = refused(tmp_path, {"tls_server_config": config})
    assert line.endswith(
        f"tls_server_config.cert_file: {certs.server_key}: holds no PEM certificate"
    )


def test_an_encrypted_key_is_refused_without_prompting(tmp_path: Path) -> None:
    issued = trustme.CA().issue_cert("127.0.0.1")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    private = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    lines = refused(
        tmp_path, {"tls_server_config": {"cert_file": str(cert), "key_file": str(key)}}
    )
    assert lines == [
        f"{tmp_path / 'web.yml'}: tls_server_config.key_file: {key}: is encrypted; pingmon "
        "needs a key without a passphrase"
    ]


@pytest.mark.parametrize("mode", ["RequireAndVerifyClientCert", "VerifyClientCertIfGiven"])
def test_verifying_client_certificates_needs_client_ca_file(
    tmp_path: Path, certs: Certs, mode: str
) -> None:
    lines = refused(
        tmp_path, {"tls_server_config": certs.tls_server_config(client_auth_type=mode)}
    )
    assert lines == [
        f"{tmp_path / 'web.yml'}: tls_server_config.client_ca_file: {mode} needs client_ca_file, "
        "the CAs client certificates must chain to"
    ]


@pytest.mark.parametrize("mode", ["NoClientCert", "RequestClientCert"])
def test_client_cas_without_a_verifying_policy_are_refused_as_in_exporter_toolkit(
    tmp_path: Path, certs: Certs, mode: str
) -> None:
    config = certs.tls_server_config(client_auth_type=mode, client_ca_file=str(certs.ca_file))
    [line] = refused(tmp_path, {"tls_server_config": config})
    assert "tls_server_config.client_auth_type: client CAs are configured but" in line


def test_a_client_ca_file_without_certificates_is_refused(tmp_path: Path, certs: Certs) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    config = certs.tls_server_config(
        client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(empty)
    )
    [line] = refused(tmp_path, {"tls_server_config": config})
    assert line.endswith(f"tls_server_config.client_ca_file: {empty}: holds no PEM certificate")


@pytest.mark.parametrize(
    ("mode", "verify_mode"),
    [
        ("NoClientCert", ssl.CERT_NONE),
        ("RequestClientCert", ssl.CERT_NONE),
        ("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL),
        ("RequireAndVerifyClientCert", ssl.CERT_REQUIRED),
    ],
)
def test_each_supported_client_auth_type_maps_to_its_verify_mode(
    tmp_path: Path, certs: Certs, mode: str, verify_mode: ssl.VerifyMode
) -> None:
    extra = {"client_ca_file": str(certs.ca_file)} if "Verify" in mode else {}
    config = load(
        tmp_path, {"tls_server_config": certs.tls_server_config(client_auth_type=mode, **extra)}
    )
    assert config.tls is not None
    assert config.tls.client_auth.verify_mode == verify_mode


@pytest.mark.parametrize("mode", ["RequireAnyClientCert", "RequireClientCert"])
def test_requiring_an_unverified_client_certificate_is_refused_with_the_way_out(
    tmp_path: Path, certs: Certs, mode: str
) -> None:
    [line] = refused(
        tmp_path, {"tls_server_config": certs.tls_server_config(client_auth_type=mode)}
    )
    assert "tls_server_config.client_auth_type: RequireAnyClientCert is not supported" in line
    assert "use RequireAndVerifyClientCert with client_ca_file" in line


def test_an_unknown_client_auth_type_or_tls_version_is_refused(
    tmp_path: Path, certs: Certs
) -> None:
    config = certs.tls_server_config(client_auth_type="Always", min_version="TLS14")
    lines = refused(tmp_path, {"tls_server_config": config})
    assert len(lines) == 2
    assert "tls_server_config.client_auth_type: Input should be 'NoClientCert'" in lines[0]
    assert "tls_server_config.min_version: Input should be 'TLS10', 'TLS11'" in lines[1]


def test_min_version_above_max_version_is_refused(tmp_path: Path, certs: Certs) -> None:
    config = certs.tls_server_config(min_version="TLS13", max_version="TLS12")
    [line] = refused(tmp_path, {"tls_server_config": config})
    assert line.endswith("tls_server_config.min_version: must not be above max_version")


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("tls_server_config", "cipher_suites", ["TLS_AES_128_GCM_SHA256"]),
        ("tls_server_config", "curve_preferences", ["X25519"]),
        ("tls_server_config", "client_allowed_sans", ["prometheus"]),
        ("tls_server_config", "cert", "-----BEGIN CERTIFICATE-----"),
        (None, "rate_limit", {"interval": "1s", "burst": 5}),
    ],
)
def test_exporter_toolkit_keys_pingmon_lacks_are_refused_not_ignored(
    tmp_path: Path, certs: Certs, section: str | None, key: str, value: object
) -> None:
    document: dict[str, Any] = {"tls_server_config": certs.tls_server_config()}
    (document[section] if section else document)[key] = value
    [line] = refused(tmp_path, document)
    where = f"{section}.{key}" if section else key
    assert line.endswith(f"{where}: not supported by pingmon: {UNSUPPORTED[key]}")


def test_exporter_toolkit_keys_pingmon_lacks_are_accepted_empty(
    tmp_path: Path, certs: Certs
) -> None:
    tls = certs.tls_server_config(cipher_suites=[], client_allowed_sans=None, cert="")
    assert load(tmp_path, {"tls_server_config": tls}).tls is not None


@pytest.mark.parametrize("path", ["/metrics", "/status", "/-/reload", "/-/healthy/"])
def test_only_health_and_readiness_can_be_exempted_from_basic_auth(
    tmp_path: Path, path: str
) -> None:
    [line] = refused(tmp_path, {"pingmon": {"basic_auth_exempt_paths": [path]}})
    assert "pingmon.basic_auth_exempt_paths[0]: Input should be '/-/healthy' or '/-/ready'" in line


def test_every_problem_of_every_section_is_listed_at_once(tmp_path: Path, certs: Certs) -> None:
    lines = refused(
        tmp_path,
        {
            "tls_server_config": certs.tls_server_config(cert_file="gone.pem"),
            "http_server_config": {"headers": {"Server": "x"}},
            "basic_auth_users": {"alice": "plain"},
            "typo": 1,
        },
    )
    paths = [line.split(": ")[1] for line in lines]
    assert sorted(paths) == [
        "basic_auth_users.alice",
        "http_server_config.headers.Server",
        "tls_server_config.cert_file",
        "typo",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tls_server_config: [",
            "line 1, column 21: expected the node content, but found '<stream end>'",
        ),
        ("- a list\n", "the file must hold a mapping of settings"),
        (
            b"\xff\xfe".decode("latin1"),
            "the file is UTF-16 (it starts with a byte order mark); save it as UTF-8",
        ),
        ("a: &x [1]\nb: *x\n", "line 2, column 4: aliases are not allowed"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_a_file_that_is_not_a_yaml_mapping_is_refused_with_its_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "web.yml"
    path.write_bytes(text.encode("latin1"))
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    assert [str(problem) for problem in caught.value.problems] == [message]


def test_the_live_config_adopts_a_changed_file_and_keeps_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_web_config(tmp_path / "web.yml", {"basic_auth_users": {"a": bcrypt_hash("1")}})
    live = LiveWebConfig(load_web_config(path))
    first = live.current()
    assert live.current() is first  # unchanged: not read again
    write_web_config(path, {"basic_auth_users": {"b": bcrypt_hash("2")}})
    second = live.current()
    assert second is not first
    assert second.users[0] == BasicAuthUser.of("b", second.users[0].hashed.decode())
    path.write_text("basic_auth_users: {c: plain}\n")
    assert live.current() is second
    assert "web configuration refused; the last good one stays" in caplog.text


def test_the_live_config_refuses_turning_tls_on_without_a_restart(
    tmp_path: Path, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_web_config(tmp_path / "web.yml", {})
    live = LiveWebConfig(load_web_config(path))
    write_web_config(path, {"tls_server_config": certs.tls_server_config()})
    assert live.current().tls is None
    problems = [getattr(record, "problem", "") for record in caplog.records]
    assert problems == [f"{path}: turning TLS on or off takes a restart"]
