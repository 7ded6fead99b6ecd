"""The statuspage type as pingmon loads it from this package's entry point."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pingmon_statuspage.imitation import StatuspageFake
from pingmon_statuspage.provider import StatuspageProvider, StatuspageSettings

from pingmon.config import json_schema, load_config
from pingmon.errors import ConfigError, ErrorClass
from pingmon.providers import PROVIDER_TYPES
from pingmon.providers.base import HttpResponse

PAGE = b'{"page": {"id": "x"}, "status": {"indicator": "%s", "description": "%s"}}'


def _provider(base_url: str = "https://www.githubstatus.com") -> StatuspageProvider:
    return StatuspageProvider(StatuspageSettings(base_url=base_url))


def _judge(status: int, body: bytes) -> tuple[ErrorClass, str, bool | None]:
    provider = _provider()
    params = provider.params_model()
    request = provider.request(params, "check-1")
    response = HttpResponse(status, {"Content-Type": "application/json"}, body)
    verdict = provider.judge(params, request, response)
    return verdict.error_class, verdict.detail, verdict.retry


def test_the_entry_point_registers_the_type() -> None:
    assert PROVIDER_TYPES["statuspage"] is StatuspageProvider


def test_the_request_gets_the_status_summary() -> None:
    provider = _provider("https://status.example.com/")
    request = provider.request(provider.params_model(), "check-1")
    assert (request.method, request.url) == (
        "GET",
        "https://status.example.com/api/v2/status.json",
    )


def test_indicator_none_is_success_with_indicator_and_description() -> None:
    assert _judge(200, PAGE % (b"none", b"All Systems Operational")) == (
        ErrorClass.NONE,
        "none: All Systems Operational",
        None,
    )


@pytest.mark.parametrize("indicator", ["minor", "major", "critical", "maintenance"])
def test_a_degraded_indicator_is_a_server_error_not_retried(indicator: str) -> None:
    error_class, detail, retry = _judge(200, PAGE % (indicator.encode(), b"Partial Outage"))
    assert (error_class, detail, retry) == (
        ErrorClass.SERVER_ERROR,
        f"{indicator}: Partial Outage",
        False,
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, PAGE % (b"sunny", b"x"), (ErrorClass.BAD_RESPONSE, 'status.indicator is "sunny"')),
        (200, b'{"status": "ok"}', (ErrorClass.BAD_RESPONSE, "no status object in the body")),
        (200, b"<html>", (ErrorClass.BAD_RESPONSE, "body is not JSON")),
        (404, b"{}", (ErrorClass.NOT_FOUND, "HTTP 404")),
        (503, b"{}", (ErrorClass.SERVER_ERROR, "HTTP 503")),
    ],
)
def test_anything_else_fails_with_its_class(
    status: int, body: bytes, expected: tuple[ErrorClass, str]
) -> None:
    assert _judge(status, body)[:2] == expected


def test_the_json_schema_includes_the_type() -> None:
    definitions = json_schema()["$defs"]
    assert definitions["StatuspageSettings"]["properties"]["type"]["const"] == "statuspage"
    assert "StatuspageTarget" in definitions


def test_a_bad_value_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(
        "providers:\n  github: {type: statuspage, base_url: 'ftp://x', colour: red}\n"
        "targets:\n  - {name: github, provider: github, component: api}\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    paths = [line.split(": ")[1] for line in refused.value.lines()]
    assert "providers.github.base_url" in paths
    assert "providers.github.colour" in paths
    assert "targets[0].component" in paths


def test_a_password_in_base_url_is_masked(tmp_path: Path) -> None:
    provider = _provider("https://reader:s3cret-pass@status.example.com")
    assert "s3cret-pass" in provider.wire_secrets()
    assert "s3cret-pass" not in repr(provider.settings)


async def _check(config: Path) -> tuple[int, list[dict[str, Any]]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", "check", "--config", str(config), "--json",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, json.loads(stdout)


async def test_pingmon_check_against_an_imitation(tmp_path: Path) -> None:
    async with StatuspageFake() as fake:
        config = tmp_path / "pingmon.yaml"
        config.write_text(
            f"providers:\n  page: {{type: statuspage, base_url: '{fake.url}'}}\n"
            "targets:\n  - {name: page, provider: page}\n"
        )
        status, results = await _check(config)
        assert status == 0
        assert results[0]["error_class"] == "none"
        assert results[0]["detail"] == "none: All Systems Operational"
        fake.indicator = "major"
        status, results = await _check(config)
        assert status == 1
        assert (results[0]["error_class"], results[0]["attempts"]) == ("server_error", 1)
        assert results[0]["detail"] == "major: Partial System Outage"
