"""Reaching a provider in the configuration: proxy_url (or none), its credentials, and
tls.server_name; every refusal names its path, and no proxy credential is ever printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pingmon.config import json_schema, load_config
from pingmon.errors import ConfigError
from pingmon.providers import PROVIDER_TYPES
from pingmon.providers.http import HttpProvider, HttpSettings
from pingmon.route import transport_options

PROXY_USER = "proxy-user-canary"
PROXY_PASSWORD = "proxy-password-canary"


@pytest.fixture(autouse=True)
def proxy_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PROXY_USER", PROXY_USER)
    monkeypatch.setenv("TEST_PROXY_PASSWORD", PROXY_PASSWORD)


def write(tmp_path: Path, **provider: Any) -> Path:
    document = {
        "providers": {"p": {"type": "http", "base_url": "https://10.0.0.7", **provider}},
        "targets": [{"name": "t", "provider": "p"}],
    }
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def refusal(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    prefix = f"{path}: "
    return [line.removeprefix(prefix) for line in raised.value.lines()]


USER = {"env": "TEST_PROXY_USER"}
PASSWORD = {"env": "TEST_PROXY_PASSWORD"}
HOST_HINT = "must be a DNS name such as pbx.internal or an IP address, without scheme or port"

REFUSALS: list[tuple[dict[str, Any], list[str]]] = [
    (
        {"proxy_url": "proxy.internal:3128"},
        [
            "providers.p.proxy_url: must be 'none' or an http:// or https:// URL such as "
            "http://proxy.internal:3128"
        ],
    ),
    (
        {"proxy_url": "socks5://proxy.internal:1080"},
        [
            "providers.p.proxy_url: must be 'none' or an http:// or https:// URL such as "
            "http://proxy.internal:3128"
        ],
    ),
    (
        {"proxy_url": "http://proxy.internal"},
        ["providers.p.proxy_url: must name the proxy's port, e.g. http://proxy.internal:3128"],
    ),
    (
        {"proxy_url": f"http://u:{PROXY_PASSWORD}@proxy.internal:3128"},
        [
            "providers.p.proxy_url: must not hold credentials: set proxy_username and "
            "proxy_password, which are secrets"
        ],
    ),
    (
        {"proxy_url": "http://:3128"},
        [
            "providers.p.proxy_url: names no proxy host; use a form such as "
            "http://proxy.internal:3128"
        ],
    ),
    (
        {"proxy_url": "http://proxy.internal:3128", "proxy_username": USER},
        ["providers.p.proxy_password: proxy_username and proxy_password go together"],
    ),
    (
        {"proxy_url": "http://proxy.internal:3128", "proxy_password": PASSWORD},
        ["providers.p.proxy_password: proxy_username and proxy_password go together"],
    ),
    (
        {"proxy_username": USER, "proxy_password": PASSWORD},
        ["providers.p.proxy_password: proxy credentials need a proxy_url to be sent to"],
    ),
    (
        {"proxy_url": "none", "proxy_username": USER, "proxy_password": PASSWORD},
        ["providers.p.proxy_password: proxy credentials need a proxy_url to be sent to"],
    ),
    (
        {
            "proxy_url": "http://proxy.internal:3128",
            "proxy_username": "team:ops",
            "proxy_password": PASSWORD,
        },
        ["providers.p.proxy_username: a proxy user name must not contain ':' (RFC 7617)"],
    ),
    (
        {
            "proxy_url": "http://proxy.internal:3128",
            "proxy_username": USER,
            "proxy_password": {"env": "TEST_UNSET_PROXY_PASSWORD"},
        },
        ["providers.p.proxy_password: environment variable TEST_UNSET_PROXY_PASSWORD is not set"],
    ),
    *(
        ({"tls": {"server_name": name}}, [f"providers.p.tls.server_name: {HOST_HINT}"])
        for name in ("https://pbx.internal", "pbx.internal:443", "", "bad_name.internal")
    ),
    (
        {"base_url": "http://10.0.0.7", "tls": {"server_name": "pbx.internal"}},
        ["providers.p.tls: server_name applies to an https:// base_url only"],
    ),
]


@pytest.mark.parametrize(("provider", "expected"), REFUSALS)
def test_a_bad_proxy_or_server_name_is_refused_naming_its_path(
    tmp_path: Path, provider: dict[str, Any], expected: list[str]
) -> None:
    lines = refusal(write(tmp_path, **provider))
    assert lines == expected
    assert not any(PROXY_PASSWORD in line or PROXY_USER in line for line in lines)


def test_an_unusable_environment_proxy_is_refused_for_the_providers_it_applies_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"socks5://user:{PROXY_PASSWORD}@127.0.0.1:1080")
    lines = refusal(write(tmp_path))
    assert lines == [
        "providers.p.proxy_url: unset, so the environment applies, but HTTPS_PROXY socks5:// "
        "proxies are not supported; use an http:// or https:// one"
    ]


@pytest.mark.parametrize(
    "provider",
    [{"proxy_url": "none"}, {"proxy_url": "http://proxy.internal:3128"}, {"base_url": "http://a"}],
    ids=["proxy-none", "own-proxy", "http-base-url"],
)
def test_an_unusable_environment_proxy_does_not_touch_providers_it_does_not_apply_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: dict[str, Any]
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    load_config(write(tmp_path, **provider))


def test_a_provider_proxy_with_secret_credentials_loads_and_never_shows_them(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        proxy_url="http://Proxy.Internal:3128",
        proxy_username=USER,
        proxy_password=PASSWORD,
        tls={"server_name": "pbx.internal"},
    )
    config = load_config(path)
    settings = config.target("t").provider
    assert (settings.proxy_url, settings.tls.server_name) == (
        "http://proxy.internal:3128",
        "pbx.internal",
    )
    options = transport_options(settings)
    assert options.server_hostname == "pbx.internal"
    assert options.proxy is not None
    assert options.proxy.url == "http://proxy.internal:3128"
    assert options.proxy_address == f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.internal:3128"
    for text in (repr(config), repr(settings), repr(options), str(settings.model_dump())):
        assert PROXY_PASSWORD not in text
        assert PROXY_USER not in text


@pytest.mark.parametrize(
    ("provider", "environment", "expected"),
    [
        ({}, {}, None),
        ({}, {"HTTPS_PROXY": "http://127.0.0.1:3128"}, "http://127.0.0.1:3128"),
        ({}, {"HTTPS_PROXY": "http://127.0.0.1:3128", "NO_PROXY": "10.0.0.0/8"}, None),
        ({"proxy_url": "none"}, {"HTTPS_PROXY": "http://127.0.0.1:3128"}, None),
        (
            {"proxy_url": "http://127.0.0.1:8888"},
            {"HTTPS_PROXY": "http://127.0.0.1:3128", "NO_PROXY": "*"},
            "http://127.0.0.1:8888",
        ),
    ],
    ids=["no-proxy", "environment", "no-proxy-cidr", "none-beats-environment", "own-beats-all"],
)
def test_precedence_proxy_url_then_none_then_the_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    provider: dict[str, Any],
    environment: dict[str, str],
    expected: str | None,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load_config(write(tmp_path, **provider)).target("t").provider
    proxy = transport_options(settings).proxy
    assert (proxy.url if proxy else None) == expected


def test_proxy_credentials_do_not_change_the_credential_fingerprint() -> None:
    """Back-off and rate budgets follow the provider's account, not the proxy's login."""
    plain = HttpSettings(base_url="https://a.example")
    proxied = HttpSettings(
        base_url="https://a.example",
        proxy_url="http://proxy.internal:3128",
        proxy_username=USER,
        proxy_password=PASSWORD,
    )
    other = proxied.model_copy(update={"base_url": "https://b.example"})
    keys = [HttpProvider(s).credential_key() for s in (plain, proxied, other)]
    assert keys[0] == keys[1] != keys[2]


def test_the_schema_offers_proxy_and_server_name_for_every_provider_type() -> None:
    definitions = json_schema()["$defs"]
    for provider_type in PROVIDER_TYPES:
        properties = definitions[f"{provider_type.capitalize()}Settings"]["properties"]
        assert {"proxy_url", "proxy_username", "proxy_password"} <= set(properties)
    assert "server_name" in definitions["TLSSettings"]["properties"]
