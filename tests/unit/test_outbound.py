"""What goes into a request is checked at load against what aiohttp and ssl will do with it."""

from __future__ import annotations

import os
import re
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest
import trustme
import yarl

from pingmon.config import load_config
from pingmon.errors import ConfigError, ErrorClass
from pingmon.outbound import (
    check_base_url,
    check_ca_file,
    check_header_name,
    check_header_value,
    has_userinfo,
)
from pingmon.providers import Provider
from pingmon.providers.base import (
    HttpResponse,
    PreparedRequest,
    ProviderSettings,
    TargetParams,
    Verdict,
)
from pingmon.providers.http import HttpParams
from pingmon.targetrules import request_problems

ABSOLUTE = "must be an absolute http:// or https:// URL with a host, e.g. https://api.example.com"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.stripe.com",
        "http://192.168.51.20",
        "http://192.168.51.20/api/v4/",
        "HTTPS://Status.Example.com:8443/base",
        "http://[::1]:9108",
        "https://user:pa%40ss@status.example.com",
        "http://b\u00fccher.example",
    ],
)
def test_an_absolute_http_url_with_a_host_is_a_base_url(url: str) -> None:
    assert check_base_url(url) == url
    # ... and aiohttp's parser agrees it can be requested.
    assert yarl.URL(url).scheme in ("http", "https")
    assert yarl.URL(url).host


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("${STATUS_URL}", "holds ${...}, which pingmon does not expand"),
        ("https://${HOST}/", "holds ${...}, which pingmon does not expand"),
        ("status.example.com:8443", ABSOLUTE),
        ("status.example.com", ABSOLUTE),
        ("ftp://status.example.com", ABSOLUTE),
        ("ws://status.example.com", ABSOLUTE),
        ("not a url", ABSOLUTE),
        ("", ABSOLUTE),
        ("http://", ABSOLUTE),
        ("http:/h", ABSOLUTE),
        ("https:///healthz", ABSOLUTE),
        ("//status.example.com", ABSOLUTE),
        (" https://status.example.com", "has a leading or trailing space"),
        ("https://status.example.com\n", "has a leading or trailing space"),
        ("https://status.exa mple.com", "holds a space or a control character"),
        ("https://status.example.com\r\nX-Evil: 1/", "holds a space or a control character"),
        ("https://status.example\n.com", "holds a space or a control character"),
        ("https://status.example.com/?token=1", "must not have a query or fragment"),
        ("https://status.example.com/#top", "must not have a query or fragment"),
        ("https://status.example.com/?", "must not have a query or fragment"),
        ("https://status.example.com:99999", "is not a valid URL (Port out of range 0-65535)"),
        ("https://status.example.com:0", "port 0 cannot be connected to"),
        ("https://[::1", "is not a valid URL (Invalid IPv6 URL)"),
    ],
)
def test_a_base_url_that_cannot_be_requested_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        check_base_url(url)


@pytest.mark.parametrize(
    "url", ["https://u:hunter2@h:99999", "https://u:hunter2@h/?q", "ftp://u:hunter2@h"]
)
def test_a_base_url_message_never_shows_its_password(url: str) -> None:
    with pytest.raises(ValueError, match=r"^\S") as raised:
        check_base_url(url)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "carries"),
    [
        ("https://u:p@h", True),
        ("https://u@h", True),
        ("https://:p@h", True),
        ("https://h", False),
        ("https://h/a@b", False),
    ],
)
def test_has_userinfo_is_what_aiohttp_sends_as_basic_auth(url: str, carries: bool) -> None:
    assert has_userinfo(url) is carries


# Header names are RFC 9110 tokens; values hold no control character but HTAB.


@pytest.mark.parametrize("name", ["X-Api-Key", "Authorization", "x_trace.id", "!#$%&'*+-.^_`|~09"])
def test_a_token_is_a_header_name(name: str) -> None:
    assert check_header_name(name) == name


@pytest.mark.parametrize(
    "name", ["X A:", "X-A:", "", "X\r\nEvil", "(comment)", "a/b", 'a"b', "caf\u00e9", "a,b", "a=b"]
)
def test_a_header_name_that_is_not_a_token_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is not a header name: an RFC 9110 token"):
        check_header_name(name)


@pytest.mark.parametrize("value", ["Bearer abc", "a\tb", "", "caf\u00e9", "x; q=0.5, *"])
def test_a_value_without_control_characters_is_a_header_value(value: str) -> None:
    assert check_header_value(value) == value


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("a\r\nX-Evil: 1", "U+000D carriage return"),
        ("a\nb", "U+000A line feed"),
        ("a\x00", "U+0000 NUL"),
        ("a\x0b", "U+000B"),
        ("a\x7f", "U+007F"),
    ],
)
def test_a_header_value_with_a_control_character_is_refused_naming_it(
    value: str, named: str
) -> None:
    message = f"holds a control character ({named}); a header value is one line"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_header_value(value)


# tls.ca_file is loaded at validation exactly as checks load it.


@pytest.fixture
def ca_pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_a_pem_ca_file_is_accepted(ca_pem: Path) -> None:
    assert check_ca_file(str(ca_pem)) == str(ca_pem)


def test_a_ca_bundle_of_several_certificates_is_accepted(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(trustme.CA().cert_pem.bytes() for _ in range(3)))
    assert check_ca_file(str(bundle)) == str(bundle)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a certificate\n", "NO_CERTIFICATE_OR_CRL_FOUND"),
        (b"", "NO_CERTIFICATE_OR_CRL_FOUND"),
        (
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
            "NOT_ENOUGH_DATA",
        ),
    ],
)
def test_a_ca_file_without_pem_certificates_is_refused(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "ca.pem"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(f"{path} holds no usable PEM certificate (")):
        check_ca_file(str(path))


def test_a_ca_file_that_is_a_der_certificate_is_refused(tmp_path: Path) -> None:
    der = tmp_path / "ca.der"
    der.write_bytes(ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode()))
    with pytest.raises(ValueError, match="holds no usable PEM certificate"):
        check_ca_file(str(der))


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/nonexistent/ca.pem", "No such file or directory"),
        ("/", "it is a directory, not a regular file"),
        ("/dev/zero", "it is a character device, not a regular file"),
    ],
)
def test_a_ca_file_that_cannot_be_read_is_refused(path: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(f'cannot read {path}: {reason}')}$"):
        check_ca_file(path)


def test_a_ca_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="it is a FIFO, not a regular file"):
        check_ca_file(str(fifo))


# An Authorization header and user:password@ together: only where aiohttp would get both.


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pingmon.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "provider",
    [
        "{type: http, base_url: 'https://u:p@h'}",  # aiohttp sends Basic from the URL
        "{type: ninepic, base_url: 'https://u:p@h', api_key: k}",  # X-API-Key, no Authorization
        "{type: simotel, base_url: 'http://u:p@h', auth: token, api_key: k}",  # X-APIKEY only
        "{type: http, base_url: 'https://h', headers: {Authorization: k}}",  # no userinfo
    ],
)
def test_userinfo_or_authorization_alone_is_accepted(tmp_path: Path, provider: str) -> None:
    target = (
        "{name: t, provider: p, org_id: 1, event_id: 1}"
        if "ninepic" in provider
        else ("{name: t, provider: p}")
    )
    config = load_config(write(tmp_path, f"providers:\n  p: {provider}\ntargets: [{target}]\n"))
    assert [target.name for target in config.targets] == ["t"]


@pytest.mark.parametrize("spelling", ["Authorization", "AUTHORIZATION", "authorization"])
def test_a_target_authorization_header_under_a_base_url_with_userinfo_is_refused_at_the_header(
    tmp_path: Path, spelling: str
) -> None:
    text = (
        "providers:\n  p: {type: http, base_url: 'https://u:p@h'}\n"
        f"targets: [{{name: t, provider: p, headers: {{{spelling}: Bearer x}}}}]\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text))
    assert [problem.path for problem in raised.value.problems] == [
        f"targets[0].headers.{spelling}"
    ]


@pytest.mark.parametrize("auth", ["basic", "both"])
def test_simotel_basic_auth_under_a_base_url_with_userinfo_is_refused_once_for_the_provider(
    tmp_path: Path, auth: str
) -> None:
    text = (
        f"providers:\n  pbx: {{type: simotel, base_url: 'http://u:p@h', auth: {auth}, "
        "api_key: k, username: u, password: p}\n"
        "targets: [{name: a, provider: pbx}, {name: b, provider: pbx}]\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text))
    assert [problem.path for problem in raised.value.problems] == ["providers.pbx.base_url"]


# An http target's JSON subset nests no deeper than the file may.


def test_an_expect_json_nested_past_64_levels_is_refused_whatever_built_it() -> None:
    deep: object = 1
    for _ in range(65):
        deep = {"a": deep}
    with pytest.raises(ValueError, match="nested more than 64 levels deep"):
        HttpParams.model_validate({"expect": {"json": deep}})


def test_an_expect_json_of_64_levels_is_kept() -> None:
    deep: object = 1
    for _ in range(64):
        deep = {"a": deep}
    params = HttpParams.model_validate({"expect": {"json": deep}})
    assert params.expect.json_subset == deep


# The request built at load catches what a provider type from another package would send.


class _Plain(ProviderSettings):
    type: str = "plain"


class _Sends(Provider[_Plain, TargetParams]):
    """A provider type that sends whatever headers it was made with, or cannot build at all."""

    type_name = "plain"
    settings_model = _Plain
    params_model = TargetParams

    def __init__(self, settings: _Plain, headers: dict[str, str] | None) -> None:
        super().__init__(settings)
        self.headers = headers

    def request(self, params: TargetParams, check_id: str) -> PreparedRequest:
        if self.headers is None:
            raise KeyError("hunter2")
        return PreparedRequest("GET", self.settings.base_url + "/", self.headers)

    def judge(
        self, params: TargetParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        return Verdict(ErrorClass.NONE)


@pytest.mark.parametrize(
    ("headers", "problems"),
    [
        ({"X-Ok": "1"}, []),
        ({"X A": "1"}, ["targets[0]: its request header 'X A': 'X A' is not a header name"]),
        ({"X-B": "1\r\n"}, ["targets[0]: its request header 'X-B': holds a control character"]),
        (None, ["targets[0]: its request cannot be built (KeyError)"]),
    ],
)
def test_the_request_built_at_load_is_checked_whatever_the_provider_type(
    headers: dict[str, str] | None, problems: list[str]
) -> None:
    provider = _Sends(_Plain(base_url="https://h"), headers)
    found = [str(p) for p in request_problems(provider, "p", TargetParams(), "targets[0]")]
    assert len(found) == len(problems)
    for line, start in zip(found, problems, strict=True):
        assert line.startswith(start)
        assert "hunter2" not in line


# user:password@ that aiohttp cannot send as Basic, and host names the resolver cannot encode,
# passed `config validate` and ended every check as "internal error" (UnicodeEncodeError,
# ValueError, UnicodeError).
UNSENDABLE_USERINFO = [
    ("http://\u7528:p@127.0.0.1:9", "outside latin-1"),
    ("http://u:%e5%af%86@127.0.0.1:9", "outside latin-1"),
    ("http://u:\U0001f600@127.0.0.1:9", "outside latin-1"),
    ("http://a%3Ab:c@127.0.0.1:9", "holding ':' (%3A)"),
]
SENDABLE_USERINFO = [
    "http://u:p@127.0.0.1:9",
    "http://us\u00e9r:p\u00e4ss@127.0.0.1:9",
    "http://u:%ff@127.0.0.1:9",
    "http://@127.0.0.1:9",
    "http://u:a%3Ab@127.0.0.1:9",
]


@pytest.mark.parametrize(("url", "message"), UNSENDABLE_USERINFO)
def test_a_base_url_userinfo_aiohttp_cannot_send_is_refused_without_showing_it(
    url: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        check_base_url(url)
    assert "\u7528" not in str(raised.value)
    assert "%e5" not in str(raised.value)


@pytest.mark.parametrize("url", [url for url, _ in UNSENDABLE_USERINFO] + SENDABLE_USERINFO)
def test_a_base_url_userinfo_is_accepted_exactly_when_aiohttp_can_send_it(url: str) -> None:
    auth = aiohttp.BasicAuth.from_url(yarl.URL(url))  # what every check does with it
    try:
        if auth is not None:
            auth.encode()
    except ValueError:  # UnicodeEncodeError included
        sendable = False
    else:
        sendable = True
    try:
        check_base_url(url)
    except ValueError:
        accepted = False
    else:
        accepted = True
    assert accepted is sendable


@pytest.mark.parametrize(
    "host", ["a" * 64 + ".example.com", "example." + "b" * 100, "a..example.com"]
)
def test_a_base_url_host_the_resolver_cannot_encode_is_refused(host: str) -> None:
    with pytest.raises(UnicodeError):
        socket.getaddrinfo(host, 443)  # what each check's connection does with it
    with pytest.raises(ValueError, match="an empty label or one longer than 63 characters"):
        check_base_url(f"https://{host}")


@pytest.mark.parametrize(
    "url",
    [
        "https://" + "a" * 63 + ".example.com",
        "http://localhost.",
        "https://b\u00fccher.example",
        "http://[::1]:65535",
        "HTTPS://API.EXAMPLE.COM",
    ],
)
def test_odd_but_resolvable_base_url_hosts_are_accepted(url: str) -> None:
    assert check_base_url(url) == url


@pytest.mark.parametrize(
    "name", ["Content-Length", "content-length", "Transfer-Encoding", "TRANSFER-ENCODING"]
)
def test_a_header_that_frames_the_body_is_refused(name: str) -> None:
    # Content-Length: -1 made aiohttp raise (internal error); 5 on a 1-byte body made the
    # server wait (a timeout blamed on it); Transfer-Encoding got a 400.
    with pytest.raises(ValueError, match=re.escape(f"{name} frames the body")):
        check_header_name(name)


def test_a_framing_header_in_a_file_is_one_problem_at_its_path(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(
        "providers:\n  h: {type: http, base_url: 'http://127.0.0.1:9'}\n"
        "targets:\n  - {name: t, provider: h, method: POST, body: x, "
        "headers: {Content-Length: '-1'}}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert [p.path for p in raised.value.problems] == ["targets[0].headers.Content-Length"]
