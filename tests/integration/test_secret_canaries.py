"""The canary test: a distinct canary in every secret slot, targets at a server that echoes
what it receives in every way it can, and every output of pingmon (`check --json`, the
table, `config validate`, `run` in both log formats, /status, /metrics, repr of the loaded
configuration) searched for every wire form of every canary and for pieces of them."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from pingmon.config import load_config
from pingmon.runner import build_plans
from tests.integration.conftest import eventually
from tests.integration.echo_server import echo_server
from tests.processes import free_port

CANARIES = {
    "stripe api_key": "sk_test_CANARYstripe0123456789abcdef",
    "ninepic api_key": "CANARYninepic+key/0123456789abcd",
    "simotel api_key": "CANARYsimotelkey0123456789abcdef",
    "simotel username": "CANARYsimuser0123456789",
    "simotel password": "CANARYsimpass/0123+456789",
    "http bearer token": "CANARYhttptoken0123456789abcdef",
    "http header X-K": "CANARY+httpkey/0123456789=abc",
    "base_url password": "CANARYurlpw/0123456789",
    "base_url token": "CANARYurltoken0123456789",
    "stripe webhook secret": "whsec_CANARYwhsec0123456789abcdef",
    "simotel webhook username": "CANARYwhuser0123456789",
    "simotel webhook password": "CANARYwhpass0123456789",
    "proxy_password": "CANARYproxypass/0123456789",
    "environment proxy password": "CANARYenvproxypass0123456789",
}
ENV = {
    "C_STRIPE": CANARIES["stripe api_key"],
    "C_SIMOTEL_USER": CANARIES["simotel username"],
    "C_SIMOTEL_PASSWORD": CANARIES["simotel password"],
    "C_STATUS_TOKEN": "Bearer " + CANARIES["http bearer token"],
    "C_WHSEC": CANARIES["stripe webhook secret"],
    "C_WH_USER": CANARIES["simotel webhook username"],
    "C_WH_PASSWORD": CANARIES["simotel webhook password"],
    "C_PROXY_USER": "pu",
    "C_PROXY_PASSWORD": CANARIES["proxy_password"],
}
# Not secret: a piece of a canary made only of these is no leak.
PUBLIC_PREFIXES = ("sk_test_", "whsec_")
MARKER = "**********"  # pingmon.redaction.MARKER, spelled out: the contract users see
MIN_PIECE = 8
CASES = ("echo", "echo-token", "echo200", "echo-status", "echo-header", "echo-long", "echo-cut")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def wire_forms() -> dict[str, str]:
    """Every form a canary can take on the wire or in an echo, by a label for the report."""
    url_password = urllib.parse.quote(CANARIES["base_url password"], safe="")
    basic = f"{CANARIES['simotel username']}:{CANARIES['simotel password']}"
    forms = {
        "simotel basic pair": basic,
        "simotel basic base64": b64(basic),
        "base_url basic base64": b64(f"u:{CANARIES['base_url password']}"),
        "base_url token base64": b64(f"{CANARIES['base_url token']}:"),
        "base_url password as written": url_password,
        "proxy basic base64": b64(f"pu:{CANARIES['proxy_password']}"),
        "environment proxy basic base64": b64(f"eu:{CANARIES['environment proxy password']}"),
    }
    for label, canary in CANARIES.items():
        forms[label] = canary
        forms[f"{label} percent-encoded"] = urllib.parse.quote(canary, safe="")
        forms[f"{label} JSON-escaped"] = json.dumps(canary)[1:-1].replace("/", "\\/")
    return forms


def pieces(form: str) -> set[str]:
    """Prefixes and suffixes of a form, of MIN_PIECE characters or more, that hold more than
    a public prefix: what a cut (ours or a library's) can leave of it."""
    found: set[str] = set()
    for size in range(MIN_PIECE, len(form)):
        found.update((form[:size], form[-size:]))
    return {piece for piece in found if piece not in PUBLIC_PREFIXES}


FORMS = wire_forms()
PIECES = {piece: label for label, form in FORMS.items() for piece in pieces(form)}


def leaks(text: str) -> list[str]:
    """What of the canaries ``text`` shows, each in its context: whole forms, else pieces."""
    found = [(label, form) for label, form in FORMS.items() if form in text]
    if not found:
        longest: dict[str, str] = {}
        for piece, label in PIECES.items():
            if piece in text and len(piece) > len(longest.get(label, "")):
                longest[label] = piece
        found = [(f"piece of {label}", piece) for label, piece in longest.items()]
    return [f"{label}: {_context(text, shown)!r}" for label, shown in found]


def _context(text: str, shown: str) -> str:
    at = text.index(shown)
    return text[max(0, at - 40) : at + len(shown) + 40]


def configuration(directory: Path, server: str, listen: str) -> Path:
    """Every provider type, in every echo case, each slot holding its canary."""
    key_file = directory / "ninepic.key"
    key_file.write_text(CANARIES["ninepic api_key"] + "\n", encoding="utf-8")
    providers: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    host = server.removeprefix("http://")
    for case in (*CASES, "echo-redirect"):
        base = f"{server}/{case}"
        providers[f"stripe-{case}"] = {
            "type": "stripe", "base_url": base, "api_key": {"env": "C_STRIPE"},
        }  # fmt: skip
        providers[f"ninepic-{case}"] = {
            "type": "ninepic", "base_url": base, "api_key": {"file": str(key_file)},
        }  # fmt: skip
        providers[f"simotel-{case}"] = {
            "type": "simotel", "base_url": base, "auth": "both",
            "api_key": CANARIES["simotel api_key"],  # a literal, accepted with a warning
            "username": {"env": "C_SIMOTEL_USER"}, "password": {"env": "C_SIMOTEL_PASSWORD"},
        }  # fmt: skip
        providers[f"http-{case}"] = {
            "type": "http", "base_url": base,
            "headers": {"Authorization": {"env": "C_STATUS_TOKEN"},
                        "X-K": CANARIES["http header X-K"]},
        }  # fmt: skip
        password = urllib.parse.quote(CANARIES["base_url password"], safe="")
        providers[f"userinfo-{case}"] = {
            "type": "http",
            "base_url": f"http://u:{password}@{host}/{case}",
        }
        providers[f"proxied-{case}"] = {
            "type": "http", "base_url": f"http://provider.invalid/{case}", "proxy_url": server,
            "proxy_username": {"env": "C_PROXY_USER"},
            "proxy_password": {"env": "C_PROXY_PASSWORD"},
        }  # fmt: skip
        # Through HTTP_PROXY, which holds credentials: loopback is exempt by NO_PROXY.
        providers[f"envproxied-{case}"] = {
            "type": "http", "base_url": f"http://provider.invalid/{case}",
        }  # fmt: skip
        providers[f"usertoken-{case}"] = {
            "type": "http", "base_url": f"http://{CANARIES['base_url token']}@{host}/{case}",
        }  # fmt: skip
        targets.extend(
            [
                {"name": f"stripe-{case}", "provider": f"stripe-{case}", "destination_id": "ed_1",
                 "webhook": {"signing_secret": {"env": "C_WHSEC"}, "timeout": "1s"}},
                {"name": f"ninepic-{case}", "provider": f"ninepic-{case}",
                 "org_id": 1, "event_id": 2},
                {"name": f"simotel-{case}", "provider": f"simotel-{case}",
                 "webhook": {"username": {"env": "C_WH_USER"},
                             "password": {"env": "C_WH_PASSWORD"}, "timeout": "1s"}},
                {"name": f"http-{case}", "provider": f"http-{case}", "path": "/x",
                 "expect": {"json": {"status": "ok"}}},
                {"name": f"userinfo-{case}", "provider": f"userinfo-{case}", "path": "/x",
                 "expect": {"json": {"status": "ok"}}},
                {"name": f"usertoken-{case}", "provider": f"usertoken-{case}", "path": "/x",
                 "expect": {"json": {"status": "ok"}}},
                {"name": f"proxied-{case}", "provider": f"proxied-{case}", "path": "/x",
                 "expect": {"json": {"status": "ok"}}},
                {"name": f"envproxied-{case}", "provider": f"envproxied-{case}", "path": "/x",
                 "expect": {"json": {"status": "ok"}}},
            ]
        )  # fmt: skip
    document = {
        "listen": listen,
        "defaults": {"interval": "2s", "timeout": "1500ms", "jitter": 0},
        "watch": {"enabled": False},
        "providers": providers,
        "targets": targets,
    }
    path = directory / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


async def pingmon(*args: str, timeout: float = 60) -> Completed:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Completed(process.returncode, stdout.decode(), stderr.decode())


async def run_daemon(path: Path, listen: str, log_format: str) -> dict[str, str]:
    """`pingmon run` until every target has a result; its logs and endpoints' answers."""
    log = path.parent / f"run-{log_format}.log"
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pingmon", "--log-format", log_format, "--log-level", "debug",
            "run", "--config", str(path),
            stdout=asyncio.subprocess.DEVNULL, stderr=err, env=dict(os.environ),
        )  # fmt: skip
    url = f"http://{listen}"
    outputs: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession() as http:

            async def every_target_checked() -> bool:
                try:
                    async with http.get(f"{url}/status") as response:
                        targets = (await response.json())["targets"]
                except aiohttp.ClientError:
                    return False
                return all(target["error_class"] is not None for target in targets)

            await eventually(every_target_checked, timeout=40, interval=0.2)
            for name, path_, accept in [
                ("/status", "/status", ""),
                ("/metrics", "/metrics", ""),
                ("/metrics (OpenMetrics)", "/metrics", "application/openmetrics-text"),
            ]:
                async with http.get(url + path_, headers={"Accept": accept}) as response:
                    outputs[f"run {log_format}: {name}"] = await response.text()
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    outputs[f"run {log_format}: logs"] = log.read_text(encoding="utf-8", errors="replace")
    return outputs


async def test_no_canary_in_any_output_after_every_kind_of_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with echo_server() as server:
        password = CANARIES["environment proxy password"]
        monkeypatch.setenv("HTTP_PROXY", server.replace("://", f"://eu:{password}@"))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        listen = f"127.0.0.1:{free_port()}"
        path = configuration(tmp_path, server, listen)
        checked = await pingmon("check", "--json", "--config", str(path))
        table = await pingmon(
            "--log-format", "text", "--log-level", "debug", "check", "--config", str(path)
        )
        validated = await pingmon("config", "validate", "--config", str(path))
        outputs = {
            "check --json": checked.stdout,
            "check --json: logs": checked.stderr,
            "check (table)": table.stdout,
            "check (table): text logs": table.stderr,
            "config validate": validated.stdout + validated.stderr,
        }
        for log_format in ("json", "text"):
            outputs.update(await run_daemon(path, listen, log_format))
    config = load_config(path)
    outputs["repr(config)"] = repr(config) + repr(config.settings) + repr(config.targets)
    dumps = config.settings.model_dump_json() + str(config.settings.model_dump())
    outputs["settings dumps"] = dumps
    outputs["repr(plans)"] = repr(build_plans(config))

    found = {where: leaks(text) for where, text in outputs.items()}
    assert {where: what for where, what in found.items() if what} == {}
    # The echoes did happen: every target has a result, and the echoed credentials were
    # masked in place (not merely absent).
    assert (checked.returncode, table.returncode, validated.returncode) == (1, 1, 0)
    results = json.loads(checked.stdout)
    assert len(results) == len(config.targets)
    masked = {r["target"] for r in results if MARKER in r["detail"]}
    echoed = {"stripe-echo", "ninepic-echo", "simotel-echo", "http-echo-token"}
    echoed |= {"userinfo-echo-token", "proxied-echo-token", "envproxied-echo-token"}
    assert echoed <= masked
    assert not any(r["success"] for r in results if r["target"].split("-", 1)[1] in CASES)
