"""Credentials echoed back by a server, one kind at a time, through a real check: each
case of issue 10 §4 as a `pingmon check` result, against the echo server on loopback."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingmon.config import load_config
from pingmon.logs import SECRET_FILTER, mask_secrets
from pingmon.oneshot import check_once
from pingmon.redaction import MARKER, NO_REDACTION
from pingmon.results import CheckResult
from pingmon.runner import build_plans, config_redactor
from tests.integration.conftest import StartDaemon
from tests.integration.echo_server import echo_server

STRIPE_KEY = "sk_test_CANARY0123456789"
NINEPIC_KEY = "CANARY02ninepickey0123456789"
TOKEN = "tok-7f3a9c1e5b"
USER, PASSWORD = "apiuser", "Hunter2-pbx"
URL_PASSWORD = "CANARYurlpw0123"


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "M_STRIPE": STRIPE_KEY, "M_NINEPIC": NINEPIC_KEY, "M_TOKEN": f"Bearer {TOKEN}",
        "M_USER": USER, "M_PASSWORD": PASSWORD, "M_WHSEC": "whsec_CANARYsigning0123",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)


def provider(kind: str, base_url: str) -> dict[str, Any]:
    return {
        "stripe": {"type": "stripe", "base_url": base_url, "api_key": {"env": "M_STRIPE"}},
        "ninepic": {"type": "ninepic", "base_url": base_url, "api_key": {"env": "M_NINEPIC"}},
        "simotel": {
            "type": "simotel", "base_url": base_url, "auth": "basic",
            "username": {"env": "M_USER"}, "password": {"env": "M_PASSWORD"},
        },
        "http": {
            "type": "http", "base_url": base_url, "headers": {"Authorization": {"env": "M_TOKEN"}},
        },
    }[kind]  # fmt: skip


TARGET_PARAMS: dict[str, dict[str, Any]] = {
    "stripe": {"destination_id": "ed_1"},
    "ninepic": {"org_id": 1, "event_id": 2},
    "simotel": {},
    "http": {"path": "/x", "expect": {"json": {"status": "ok"}}},
}


def write(tmp_path: Path, providers: dict[str, Any], kinds: dict[str, str]) -> Path:
    targets = [
        {"name": name, "provider": name, **TARGET_PARAMS[kind]} for name, kind in kinds.items()
    ]
    document = {
        "defaults": {"timeout": "2s"},
        "watch": {"enabled": False},
        "providers": providers,
        "targets": targets,
    }
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


async def check(tmp_path: Path, kind: str, case: str) -> CheckResult:
    async with echo_server() as server:
        path = write(tmp_path, {"t": provider(kind, f"{server}/{case}")}, {"t": kind})
        (result,) = await check_once(load_config(path), [])
    return result


async def test_an_invalid_status_line_quoting_the_stripe_key_shows_none_of_it(
    tmp_path: Path,
) -> None:
    # transport-detail-unredacted: aiohttp's parser error quoted the full key into /status.
    result = await check(tmp_path, "stripe", "echo-status")

    assert result.http_status is None
    assert "CANARY" not in result.detail


async def test_an_invalid_header_line_quoting_the_stripe_key_shows_none_of_it(
    tmp_path: Path,
) -> None:
    result = await check(tmp_path, "stripe", "echo-header")

    assert "CANARY" not in result.detail


async def test_a_too_long_header_quoting_half_a_key_leaves_no_piece_of_it(tmp_path: Path) -> None:
    # aiohttp quotes the first 100 bytes of the line and "...": the key's head, cut.
    result = await check(tmp_path, "ninepic", "echo-long")

    assert "CANARY02" not in result.detail
    assert NINEPIC_KEY[-8:] not in result.detail


@pytest.mark.parametrize("kind", ["stripe", "ninepic"])
async def test_a_key_across_the_200_character_cut_leaves_nothing(
    tmp_path: Path, kind: str
) -> None:
    # truncate-before-redact: the cut came first and left all but the key's last character.
    result = await check(tmp_path, kind, "echo-cut")

    assert len(result.detail) <= 200
    assert "CANARY" not in result.detail
    assert result.detail.startswith("HTTP 401")


async def test_the_basic_authorization_echoed_back_is_masked_in_every_form(tmp_path: Path) -> None:
    # basic-auth-base64: the server quoted "Basic base64(user:password)", which decodes.
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    result = await check(tmp_path, "simotel", "echo")

    assert result.error_class.value == "auth"
    for shown in (token, PASSWORD, f"{USER}:{PASSWORD}", token.replace("/", "%2F")):
        assert shown not in result.detail
    assert f"authorization={MARKER}" in result.detail


async def test_a_redirect_location_quoting_the_percent_encoded_credentials_is_masked(
    tmp_path: Path,
) -> None:
    result = await check(tmp_path, "simotel", "echo-redirect")

    assert result.error_class.value == "client_error"
    assert "redirect not followed" in result.detail
    assert "SHVudGVy" not in result.detail  # base64 of "Hunter", percent-encoded or not
    assert MARKER in result.detail


async def test_the_token_part_of_a_bearer_header_echoed_back_is_masked(tmp_path: Path) -> None:
    # The README's own example: Authorization: {env: STATUS_TOKEN}, "Bearer tok-...".
    result = await check(tmp_path, "http", "echo-token")

    assert result.error_class.value == "bad_response"
    assert TOKEN not in result.detail
    assert MARKER in result.detail


async def test_a_base_url_password_sent_as_basic_and_echoed_back_is_masked(
    tmp_path: Path,
) -> None:
    async with echo_server() as server:
        base_url = server.replace("http://", f"http://u:{URL_PASSWORD}@") + "/echo-token"
        path = write(tmp_path, {"t": {"type": "http", "base_url": base_url}}, {"t": "http"})
        (result,) = await check_once(load_config(path), [])

    token = base64.b64encode(f"u:{URL_PASSWORD}".encode()).decode()
    assert token not in result.detail
    assert URL_PASSWORD not in result.detail
    assert f"token {MARKER} is expired" in result.detail


async def test_the_credentials_of_a_provider_proxy_echoed_by_the_proxy_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M_PROXY_USER", "proxyuser")
    monkeypatch.setenv("M_PROXY_PASSWORD", "CANARYproxypass0123")
    async with echo_server() as proxy:
        entry = {
            "type": "http", "base_url": "http://provider.invalid/echo-token",
            "proxy_url": proxy, "proxy_username": {"env": "M_PROXY_USER"},
            "proxy_password": {"env": "M_PROXY_PASSWORD"},
        }  # fmt: skip
        path = write(tmp_path, {"t": entry}, {"t": "http"})
        (result,) = await check_once(load_config(path), [])

    token = base64.b64encode(b"proxyuser:CANARYproxypass0123").decode()
    assert f"token {MARKER} is expired" in result.detail
    assert token not in result.detail
    assert "CANARY" not in result.detail


async def test_the_credentials_of_an_environment_proxy_echoed_by_the_proxy_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with echo_server() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.replace("://", "://envuser:CANARYenvpass%2F0@"))
        entry = {"type": "http", "base_url": "http://provider.invalid/echo-token"}
        path = write(tmp_path, {"t": entry}, {"t": "http"})
        (result,) = await check_once(load_config(path), [])

    token = base64.b64encode(b"envuser:CANARYenvpass/0").decode()
    assert f"token {MARKER} is expired" in result.detail
    assert token not in result.detail
    assert "CANARY" not in result.detail


def test_a_target_masks_its_own_webhook_secret_and_the_log_filter_every_secret(
    tmp_path: Path,
) -> None:
    stripe = provider("stripe", "http://127.0.0.1:1")
    webhook = {"signing_secret": {"env": "M_WHSEC"}, "timeout": "30s"}
    kinds = {"s": "stripe", "n": "ninepic"}
    path = write(tmp_path, {"s": stripe, "n": provider("ninepic", "http://127.0.0.1:1")}, kinds)
    document = yaml.safe_load(path.read_text())
    document["targets"][0]["webhook"] = webhook
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    config = load_config(path)

    plans = build_plans(config)
    everything = config_redactor(config)

    assert plans["s"].redactor.mask("whsec_CANARYsigning0123") == MARKER
    assert plans["n"].redactor.mask(STRIPE_KEY) == STRIPE_KEY  # another entry's business
    for secret in (STRIPE_KEY, NINEPIC_KEY, "whsec_CANARYsigning0123"):
        assert everything.mask(secret) == MARKER


async def test_the_log_filter_holds_the_running_configuration_s_secrets_across_a_reload(
    tmp_path: Path, start_daemon: StartDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, {"s": provider("stripe", "http://127.0.0.1:1")}, {"s": "stripe"})
    try:
        running = await start_daemon(load_config(path))
        assert SECRET_FILTER.redactor.mask(STRIPE_KEY) == MARKER
        monkeypatch.setenv("M_STRIPE", "sk_test_CANARYrotated0123456789")
        ok, _ = await running.daemon.reload()

        assert ok
        assert SECRET_FILTER.redactor.mask("sk_test_CANARYrotated0123456789") == MARKER
    finally:
        mask_secrets(NO_REDACTION)
