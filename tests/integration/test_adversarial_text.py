"""A server's text that is not valid Unicode (a JSON ``\\ud800`` escape, header bytes that are
not UTF-8) never breaks an output: every detail is well-formed UTF-8, and `pingmon check`
prints every target's result in both of its formats."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
import yaml

from pingmon.config import load_config
from pingmon.oneshot import check_once
from tests.integration.rawhttp import Received, Reply, answer, raw_server

JSON = (("Content-Type", "application/json"),)


def hostile_text(received: Received, index: int) -> Reply:
    """The first path segment picks an answer holding text no UTF-8 output can carry."""
    mode = received.path.strip("/").split("/", 1)[0]
    if mode == "json-surrogate":  # a JSON string escape of a lone high surrogate
        return Reply((answer(200, b'{"status": "\\ud800"}', JSON),))
    if mode == "json-low-surrogate":
        return Reply((answer(200, b'{"status": "x\\udfff"}', JSON),))
    if mode == "header-bytes":  # a Request-Id and a Location in bytes that are not UTF-8
        head = b"HTTP/1.1 %s X\r\nRequest-Id: r\xff\xfe\r\nLocation: http://h/\xff\r\n"
        status = b"302" if received.method == "POST" and "v4" in received.path else b"404"
        return Reply((head % status + b"Content-Length: 0\r\n\r\n",))
    return Reply((answer(200, b'{"status": "ok"}', JSON),))


def targets() -> list[dict[str, object]]:
    expect = {"json": {"status": "ok"}}
    return [
        {"name": "healthy", "path": "/ok", "expect": expect},
        {"name": "json-surrogate", "path": "/json-surrogate", "expect": expect},
        {"name": "json-low-surrogate", "path": "/json-low-surrogate", "expect": expect},
        {"name": "stripe-header", "provider": "stripe", "destination_id": "ed_1"},
        {"name": "simotel-location", "provider": "simotel"},
    ]


def providers(url: str) -> dict[str, object]:
    return {
        "site": {"type": "http", "base_url": url},
        "stripe": {"type": "stripe", "base_url": f"{url}/header-bytes", "api_key": "sk_test_x"},
        "simotel": {
            "type": "simotel",
            "base_url": f"{url}/header-bytes",
            "auth": "token",
            "api_key": "k",
        },
    }


def write_config(path: Path, url: str) -> Path:
    """The targets above, each provider type at ``url``."""
    document = {
        "listen": "127.0.0.1:0",
        "defaults": {"interval": "5s", "timeout": "2s", "retries": 0},
        "providers": providers(url),
        "targets": [{"provider": "site", **target} for target in targets()],
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


async def test_every_detail_is_valid_utf8_whatever_the_server_sends(tmp_path: Path) -> None:
    async with raw_server(hostile_text) as server:
        config = load_config(write_config(tmp_path / "c.yaml", server.url))
        results = {r.target: r for r in await check_once(config, [])}

    assert results["healthy"].success
    for name in ("json-surrogate", "json-low-surrogate", "stripe-header", "simotel-location"):
        result = results[name]
        assert not result.success
        result.detail.encode("utf-8")  # raises on a lone surrogate
    assert results["json-surrogate"].detail.endswith('got "\\ud800"')
    assert "\\udcff" in results["simotel-location"].detail


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
async def test_pingmon_check_prints_every_target_whatever_text_the_server_sends(
    tmp_path: Path, as_json: bool
) -> None:
    async with raw_server(hostile_text) as server:
        path = write_config(tmp_path / "c.yaml", server.url)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pingmon", "check", "--config", str(path),
            *(["--json"] if as_json else []),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 1, stderr.decode()
    assert b"Traceback" not in stderr
    text = stdout.decode("utf-8")  # strict: the output is UTF-8
    if as_json:
        assert {r["target"] for r in json.loads(text)} == {t["name"] for t in targets()}
    else:
        for target in targets():
            assert str(target["name"]) in text
