"""Hostile answers from a real loopback server never escape a check (issue 10 section 3):
deep JSON, duplicate keys, absurd Retry-After values, and a judge that raises."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from pingmon.config import Config, load_config
from pingmon.logs import JsonFormatter
from pingmon.oneshot import check_once
from pingmon.providers.base import HttpResponse, PreparedRequest, Verdict
from pingmon.providers.http import HttpParams, HttpProvider
from pingmon.results import CheckResult
from tests.integration.conftest import StartDaemon

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_DIGITS = "9" * 8000
BIG_YEAR = "Fri, 31 Dec 99999999999 23:59:59 GMT"


@dataclass
class Hostile:
    """A server whose first path segment picks its answer; it counts requests per segment."""

    url: str
    requests: dict[str, int] = field(default_factory=dict)


ANSWERS: dict[str, tuple[int, bytes, dict[str, str]]] = {
    "ok": (200, b'{"status": "ok"}', {"Content-Type": "application/json"}),
    "deep": (200, DEEP, {"Content-Type": "application/json"}),
    "deep500": (500, DEEP, {"Content-Type": "application/json"}),
    "dup": (200, b'{"status": "down", "status": "ok"}', {"Content-Type": "application/json"}),
    "ra-bigyear": (429, b"", {"Retry-After": BIG_YEAR}),
    "ra-hugedigits": (429, b"", {"Retry-After": HUGE_DIGITS}),
    "cp1251": (
        200,
        "Статус: работает".encode("cp1251"),
        {"Content-Type": "text/plain; charset=windows-1251"},
    ),
}


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile("")

    async def answer(request: web.Request) -> web.Response:
        mode = request.path.strip("/").split("/", 1)[0]
        server.requests[mode] = server.requests.get(mode, 0) + 1
        status, body, headers = ANSWERS[mode]
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


def providers_at(url: str) -> dict[str, Any]:
    """One provider of every type, all at ``url``."""
    return {
        "stripe": {"type": "stripe", "base_url": url, "api_key": "sk_test_x"},
        "ninepic": {"type": "ninepic", "base_url": url, "api_key": "k"},
        "pbx": {"type": "simotel", "base_url": url, "auth": "token", "api_key": "k"},
        "site": {"type": "http", "base_url": url},
    }


def every_type(mode: str, server: Hostile) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Providers of every type answered by ``mode``, one target each, and a healthy target."""
    providers = {f"{name}-{mode}": p for name, p in providers_at(f"{server.url}/{mode}").items()}
    providers["healthy"] = {"type": "http", "base_url": f"{server.url}/ok"}
    targets: list[dict[str, Any]] = [
        {"name": f"stripe-{mode}", "provider": f"stripe-{mode}", "destination_id": "ed_test_1"},
        {"name": f"ninepic-{mode}", "provider": f"ninepic-{mode}", "org_id": 1, "event_id": 2},
        {"name": f"pbx-{mode}", "provider": f"pbx-{mode}"},
        {"name": f"site-{mode}", "provider": f"site-{mode}", "expect": {"json": {"status": "ok"}}},
        {"name": "healthy", "provider": "healthy", "expect": {"json": {"status": "ok"}}},
    ]
    return providers, targets


def write_config(
    tmp_path: Path, providers: dict[str, Any], targets: list[dict[str, Any]], **top: Any
) -> Path:
    document = {
        "listen": "127.0.0.1:0",
        "defaults": {"interval": "500ms", "timeout": "400ms", "jitter": 0},
        "providers": providers,
        "targets": targets,
        **top,
    }
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def by_target(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.target: result for result in results}


# --- deep JSON and duplicate keys --------------------------------------------------------------


async def test_deep_json_on_a_200_is_bad_response_and_every_other_target_is_reported(
    hostile: Hostile, tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path, *every_type("deep", hostile)))

    results = by_target(await check_once(config, []))

    assert results.pop("healthy").success
    assert len(results) == 4
    for name, result in results.items():
        assert (result.error_class.value, result.http_status) == ("bad_response", 200), name
        assert "nested too deeply" in result.detail, name


async def test_deep_json_on_a_500_is_a_server_error_for_every_provider_type(
    hostile: Hostile, tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path, *every_type("deep500", hostile)))

    results = by_target(await check_once(config, []))

    assert results.pop("healthy").success
    for name, result in results.items():
        assert (result.error_class.value, result.http_status) == ("server_error", 500), name


async def test_a_json_success_body_with_duplicate_keys_is_bad_response(
    hostile: Hostile, tmp_path: Path
) -> None:
    providers = {"site": {"type": "http", "base_url": f"{hostile.url}/dup"}}
    targets = [{"name": "dup", "provider": "site", "expect": {"json": {"status": "ok"}}}]
    config = load_config(write_config(tmp_path, providers, targets))

    (result,) = await check_once(config, [])

    assert result.error_class.value == "bad_response"
    assert result.detail == 'body is ambiguous JSON: duplicate key "status"'


async def test_a_windows_1251_page_matches_its_cyrillic_body_regex(
    hostile: Hostile, tmp_path: Path
) -> None:
    providers = {"site": {"type": "http", "base_url": f"{hostile.url}/cp1251"}}
    targets = [{"name": "ru", "provider": "site", "expect": {"body_regex": "Статус: работает"}}]
    config = load_config(write_config(tmp_path, providers, targets))

    (result,) = await check_once(config, [])

    assert result.success, result.detail


# --- Retry-After -------------------------------------------------------------------------------


def backoff_config(tmp_path: Path, server: Hostile, mode: str) -> Config:
    providers = {"p": {"type": "http", "base_url": f"{server.url}/{mode}"}}
    targets = [{"name": "t", "provider": "p"}]
    backoff = {"initial": "30s", "multiplier": 2, "max": "15m"}
    defaults = {"interval": "200ms", "timeout": "150ms", "jitter": 0}
    path = write_config(tmp_path, providers, targets, backoff=backoff, defaults=defaults)
    return load_config(path)


async def test_retry_after_in_the_year_99999999999_backs_off_exponentially(
    hostile: Hostile, tmp_path: Path, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(backoff_config(tmp_path, hostile, "ra-bigyear"))

    await running.wait_checked("p", "t")
    await asyncio.sleep(0.5)  # two intervals and more: no request goes out while backing off

    assert running.sample("pingmon_check_error_class", provider="p", target="t",
                          error_class="rate_limited") == 1  # fmt: skip
    backoff = running.sample("pingmon_backoff_seconds", provider="p", target="t")
    assert 27.0 <= (backoff or 0) <= 33.0  # initial 30 s, +-10%
    assert hostile.requests["ra-bigyear"] == 1


class JsonLines(logging.Handler):
    """Every pingmon record, formatted as the daemon writes it to stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_retry_after_of_8000_digits_is_capped_and_every_log_line_is_strict_json(
    hostile: Hostile, tmp_path: Path, start_daemon: StartDaemon
) -> None:
    handler = JsonLines()
    logging.getLogger("pingmon").addHandler(handler)
    try:
        running = await start_daemon(backoff_config(tmp_path, hostile, "ra-hugedigits"))
        await running.wait_checked("p", "t")
    finally:
        logging.getLogger("pingmon").removeHandler(handler)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON log line")

    entries = [json.loads(line, parse_constant=refuse) for line in handler.lines]
    (limited,) = [e for e in entries if "retry_after_seconds" in e]
    assert (limited["retry_after_seconds"], limited["capped"]) == (2**31, True)
    assert limited["backoff_seconds"] == 900.0
    assert running.sample("pingmon_backoff_seconds", provider="p", target="t") == 900.0


# --- the safety net ----------------------------------------------------------------------------

ORIGINAL_JUDGE = HttpProvider.judge


def judge_failing_on_boom(
    self: HttpProvider, params: HttpParams, request: PreparedRequest, response: HttpResponse
) -> Verdict:
    """The http judge, except that it raises for every request whose URL says "boom"."""
    if "boom" in request.url:
        raise RuntimeError("a judge bug quoting s3cr3t-from-the-body")
    return ORIGINAL_JUDGE(self, params, request, response)


def boom_config_parts(server: Hostile) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Two http targets of one healthy server; the injected judge breaks "broken" only."""
    providers = {"site": {"type": "http", "base_url": f"{server.url}/ok"}}
    targets = [
        {"name": "healthy", "provider": "site", "path": "/healthz"},
        {"name": "broken", "provider": "site", "path": "/boom"},
    ]
    return providers, targets


def boom_config(tmp_path: Path, server: Hostile) -> Config:
    return load_config(write_config(tmp_path, *boom_config_parts(server)))


async def test_a_raising_judge_under_run_records_a_result_counts_it_and_spares_the_others(
    hostile: Hostile,
    tmp_path: Path,
    start_daemon: StartDaemon,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="pingmon")
    monkeypatch.setattr(HttpProvider, "judge", judge_failing_on_boom)
    running = await start_daemon(boom_config(tmp_path, hostile))

    await running.wait_checked("site", "broken")
    await running.wait_checked("site", "healthy", success=True)
    broken = await running.target_status("broken")

    assert broken["error_class"] == "bad_response"
    assert broken["http_status"] == 200
    assert broken["detail"] == "internal error: RuntimeError"
    errors = running.sample("pingmon_internal_errors_total") or 0
    logged = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert errors >= 1
    assert len(logged) == errors  # once per failed check, each with its traceback
    assert all(getattr(r, "target", None) == "broken" for r in logged)
    assert "s3cr3t" not in json.dumps(await running.status())


async def test_a_green_target_turns_red_when_its_judge_starts_raising(
    hostile: Hostile,
    tmp_path: Path,
    start_daemon: StartDaemon,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = await start_daemon(boom_config(tmp_path, hostile))
    await running.wait_checked("site", "broken", success=True)

    monkeypatch.setattr(HttpProvider, "judge", judge_failing_on_boom)

    await running.wait_checked("site", "broken", success=False)


async def test_a_raising_request_builder_under_check_still_reports_every_target(
    hostile: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = HttpProvider.request

    def request(self: HttpProvider, params: HttpParams, check_id: str) -> PreparedRequest:
        if params.path == "/boom":
            raise KeyError("s3cr3t")
        return original(self, params, check_id)

    config = boom_config(tmp_path, hostile)  # loading builds each request once: not yet
    monkeypatch.setattr(HttpProvider, "request", request)

    results = by_target(await check_once(config, []))

    assert results["healthy"].success
    broken = results["broken"]
    assert (broken.error_class.value, broken.http_status) == ("bad_response", None)
    assert broken.detail == "internal error: KeyError"


CHECK_WITH_A_RAISING_JUDGE = textwrap.dedent(
    """
    import sys
    from pingmon import cli
    from pingmon.providers.http import HttpProvider
    from tests.integration.test_hostile_answers import judge_failing_on_boom

    HttpProvider.judge = judge_failing_on_boom
    sys.exit(cli.main(["check", "--json", "--config", sys.argv[1]]))
    """
)


async def test_pingmon_check_with_a_raising_judge_reports_every_target_and_exits_1(
    hostile: Hostile, tmp_path: Path
) -> None:
    path = write_config(tmp_path, *boom_config_parts(hostile))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHECK_WITH_A_RAISING_JUDGE, str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 1, stderr.decode()
    results = {r["target"]: r for r in json.loads(stdout)}
    assert results["healthy"]["success"] is True
    assert results["broken"]["error_class"] == "bad_response"
    assert results["broken"]["detail"] == "internal error: RuntimeError"
    log_lines = [json.loads(line) for line in stderr.decode().splitlines()]
    (logged,) = [line for line in log_lines if line["level"] == "error"]
    assert "Traceback" in logged["exception"]
    assert logged["target"] == "broken"


async def test_without_injection_both_targets_of_the_boom_server_pass(
    hostile: Hostile, tmp_path: Path
) -> None:
    results = by_target(await check_once(boom_config(tmp_path, hostile), []))

    assert [r.success for r in results.values()] == [True, True]
