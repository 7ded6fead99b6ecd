"""Fixtures: the sandbox on loopback, configuration files pointing at it, a running daemon."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
import yaml

from pingmon.config import Config, load_config
from pingmon.daemon import Daemon
from pingmon.sandbox import SANDBOX_CREDENTIALS, Sandbox
from pingmon.service import serve
from pingmon.webconfig import WebOptions

CREDS = SANDBOX_CREDENTIALS

# Environment variables the generated configurations read their secrets from.
SECRET_ENV = {
    "SB_STRIPE_KEY": CREDS.stripe.test_key,
    "SB_STRIPE_READONLY_KEY": CREDS.stripe.readonly_key,
    "SB_NINEPIC_KEY": CREDS.ninepic.api_key,
    "SB_SIMOTEL_USER": CREDS.simotel.both.username,
    "SB_SIMOTEL_PASSWORD": CREDS.simotel.both.password,
    "SB_SIMOTEL_TOKEN": CREDS.simotel.both.api_key,
    "SB_STATUS_TOKEN": f"Bearer {CREDS.http.token}",
}
SECRET_VALUES = tuple(SECRET_ENV.values())


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as running:
        yield running


def sandbox_providers(sandbox: Sandbox) -> dict[str, Any]:
    """One provider entry per fake, each with its sandbox credential from the environment."""
    urls = sandbox.urls()
    return {
        "stripe": {
            "type": "stripe",
            "base_url": urls["stripe"],
            "api_key": {"env": "SB_STRIPE_KEY"},
        },
        "ninepic": {
            "type": "ninepic",
            "base_url": urls["ninepic"],
            "api_key": {"env": "SB_NINEPIC_KEY"},
        },
        "pbx": {
            "type": "simotel",
            "base_url": urls["simotel"],
            "username": {"env": "SB_SIMOTEL_USER"},
            "password": {"env": "SB_SIMOTEL_PASSWORD"},
            "api_key": {"env": "SB_SIMOTEL_TOKEN"},
        },
        "status": {
            "type": "http",
            "base_url": urls["http"],
            "headers": {"Authorization": {"env": "SB_STATUS_TOKEN"}},
        },
    }


def stripe_target(name: str, destination: str | None = None, **extra: Any) -> dict[str, Any]:
    destination = destination or f"ed_test_{name.replace('-', '_')}"
    return {"name": name, "provider": "stripe", "destination_id": destination, **extra}


def ninepic_target(
    name: str, event_id: int = CREDS.ninepic.event_id, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "ninepic",
        "org_id": CREDS.ninepic.org_id,
        "event_id": event_id,
        **extra,
    }


def simotel_target(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": "pbx", **extra}


def http_target(name: str, path: str = "/healthz", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "status",
        "path": path,
        "expect": {"status": [200], "json": {"status": "ok"}},
        **extra,
    }


FAST_DEFAULTS = {"interval": "500ms", "timeout": "400ms", "jitter": 0}


@dataclass
class ConfigWriter:
    """Writes configuration files for the sandbox into a temporary directory."""

    path: Path
    sandbox: Sandbox

    def write(
        self,
        targets: list[dict[str, Any]],
        providers: dict[str, Any] | None = None,
        **top: Any,
    ) -> Path:
        document: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "defaults": dict(FAST_DEFAULTS),
            "backoff": {"initial": "1s", "multiplier": 2, "max": "5s"},
            "providers": providers or sandbox_providers(self.sandbox),
            "targets": targets,
        }
        document.update(top)
        self.path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return self.path

    def load(self, targets: list[dict[str, Any]], **top: Any) -> Config:
        return load_config(self.write(targets, **top))


@pytest.fixture
def config_writer(tmp_path: Path, sandbox: Sandbox) -> ConfigWriter:
    return ConfigWriter(tmp_path / "pingmon.yaml", sandbox)


@dataclass
class RunningDaemon:
    """A daemon served on a free loopback port, with an HTTP client for its endpoints."""

    daemon: Daemon
    url: str
    http: aiohttp.ClientSession

    async def get_text(self, path: str, accept: str = "") -> tuple[int, str, str]:
        headers = {"Accept": accept} if accept else {}
        async with self.http.get(self.url + path, headers=headers) as response:
            return response.status, response.headers["Content-Type"], await response.text()

    async def status(self) -> dict[str, Any]:
        async with self.http.get(self.url + "/status") as response:
            body: dict[str, Any] = await response.json()
            return body

    async def target_status(self, name: str) -> dict[str, Any]:
        targets = (await self.status())["targets"]
        found: dict[str, Any] = next(t for t in targets if t["target"] == name)
        return found

    def sample(self, metric: str, **labels: str) -> float | None:
        return self.daemon.metrics.registry.get_sample_value(metric, labels)

    async def wait_checked(self, provider: str, target: str, success: bool | None = None) -> None:
        """Wait for a target's first result (or for it to be a success or a failure)."""

        def checked() -> bool:
            value = self.sample("pingmon_check_success", provider=provider, target=target)
            return value is not None and (success is None or value == float(success))

        checked.__name__ = f"{provider}/{target} checked (success={success})"
        await eventually(checked)


class StartDaemon(Protocol):
    def __call__(
        self,
        config: Config,
        web_options: WebOptions | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> Awaitable[RunningDaemon]: ...


@pytest.fixture
async def start_daemon() -> AsyncIterator[StartDaemon]:
    """Starts serve(); with ``web_options`` (TLS: an https URL, its client talking through
    ``client_ssl``)."""
    stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(
        config: Config,
        web_options: WebOptions | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> RunningDaemon:
        started: asyncio.Future[tuple[Daemon, str]] = asyncio.get_running_loop().create_future()

        async def on_started(daemon: Daemon, address: str) -> None:
            started.set_result((daemon, address))

        stop = asyncio.Event()
        task = asyncio.create_task(
            serve(config, on_started=on_started, stop=stop, web_options=web_options)
        )
        stops.append((stop, task))
        waiting: set[asyncio.Future[Any]] = {started, task}
        done, _ = await asyncio.wait(waiting, timeout=10, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()  # raises what made serve() fail
        daemon, address = started.result()
        connector = aiohttp.TCPConnector(ssl=client_ssl if client_ssl is not None else True)
        session = aiohttp.ClientSession(connector=connector)
        sessions.append(session)
        tls = web_options is not None and web_options.config is not None and web_options.config.tls
        return RunningDaemon(daemon, f"{'https' if tls else 'http'}://{address}", session)

    yield start
    for session in sessions:
        await session.close()
    for stop, task in stops:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def eventually(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 8.0,
    interval: float = 0.05,
) -> None:
    """Wait until ``condition`` holds; fail the test with the condition's name if it never does."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        outcome = condition()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition {getattr(condition, '__name__', condition)} never held")
        await asyncio.sleep(interval)
