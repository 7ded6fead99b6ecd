"""Reload is a transaction: any failure, of any kind, keeps the running configuration whole,
answers POST /-/reload with 500 and the problem lines, and sets the reload gauge to 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pingmon.config import Config, load_config
from pingmon.daemon import Daemon
from pingmon.sandbox import Sandbox
from pingmon.service import serve
from pingmon.webconfig import WebOptions
from tests.integration.conftest import (
    ConfigWriter,
    RunningDaemon,
    StartDaemon,
    eventually,
    http_target,
    ninepic_target,
    sandbox_providers,
)

GAUGE = "pingmon_config_last_reload_successful"
LIFECYCLE = WebOptions(enable_lifecycle=True)  # POST /-/reload answers


async def scraped(running: RunningDaemon, name: str, **labels: str) -> float | None:
    """One sample read from GET /metrics, as Prometheus sees it."""
    _, _, body = await running.get_text("/metrics")
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


async def post_reload(running: RunningDaemon) -> tuple[int, dict[str, Any]]:
    async with running.http.post(running.url + "/-/reload") as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


def document(writer: ConfigWriter, targets: list[dict[str, Any]], **top: Any) -> bytes:
    body: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "defaults": {"interval": "300ms", "timeout": "200ms", "jitter": 0},
        "watch": {"enabled": False},
        "providers": sandbox_providers(writer.sandbox),
        "targets": targets,
    }
    body.update(top)
    return yaml.safe_dump(body, sort_keys=False).encode()


def with_not_pem_ca_file(writer: ConfigWriter) -> bytes:
    providers = sandbox_providers(writer.sandbox)
    providers["status"]["tls"] = {"ca_file": str(writer.path)}  # YAML, not PEM certificates
    return document(writer, [ninepic_target("keep"), http_target("h")], providers=providers)


def with_fifo_secret(writer: ConfigWriter) -> bytes:
    fifo = writer.path.parent / "secret.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    providers = sandbox_providers(writer.sandbox)
    providers["status"]["headers"] = {"X-Key": {"file": str(fifo)}}
    return document(writer, [ninepic_target("keep"), http_target("h")], providers=providers)


def nested(levels: int) -> bytes:
    return b"x: " + b"[" * levels + b"]" * levels + b"\n"


# Each kind of file that used to escape reload as something other than a ConfigError (or to
# hang it), and what it is: the problem lines' wording is the loader's business.
BAD_FILES: dict[str, Callable[[ConfigWriter], bytes]] = {
    "non-UTF-8 byte": lambda w: document(w, [ninepic_target("keep")]) + b"# caf\xe9\n",
    "UTF-16": lambda w: document(w, [ninepic_target("keep")]).decode().encode("utf-16"),
    "interval 1000000000d": lambda w: document(
        w, [ninepic_target("keep", interval="1s"), ninepic_target("huge", interval="1000000000d")]
    ),
    "nesting 2000 levels": lambda w: document(w, [ninepic_target("keep")]) + nested(2000),
    "ca_file not PEM": with_not_pem_ca_file,
    "FIFO secret": with_fifo_secret,
}


@pytest.fixture
def fifo_writers(tmp_path: Path) -> Iterator[None]:
    """Opens, at the end, every FIFO a test left a reader blocked on, so no thread is left."""
    yield
    for fifo in tmp_path.glob("*.fifo"):
        with contextlib.suppress(OSError):  # no reader waiting
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.usefixtures("fifo_writers")
@pytest.mark.parametrize("kind", list(BAD_FILES))
async def test_a_bad_reload_of_any_kind_answers_500_with_its_lines_and_keeps_everything(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox, kind: str
) -> None:
    path = config_writer.path
    path.write_bytes(document(config_writer, [ninepic_target("keep"), ninepic_target("gone")]))
    running = await start_daemon(load_config(path), LIFECYCLE)
    running.daemon.load_deadline = 2.0  # a load that hangs is given up quickly here
    await running.wait_checked("ninepic", "keep", success=True)
    labels = {"provider": "ninepic", "target": "keep", "error_class": "none"}
    await eventually(lambda: (running.sample("pingmon_checks_total", **labels) or 0) >= 3)
    runtime = running.daemon.runtime
    jobs = {job.id: job.trigger for job in running.daemon.scheduler._scheduler.get_jobs()}
    kept = running.daemon.store.get("keep")
    checks = await scraped(running, "pingmon_checks_total", **labels)
    assert kept is not None
    assert checks is not None

    path.write_bytes(BAD_FILES[kind](config_writer))
    status, body = await post_reload(running)

    assert status == 500
    assert body["status"] == "error"
    assert body["problems"]
    assert all(line.startswith(f"{path}: ") for line in body["problems"]), body
    assert await scraped(running, GAUGE) == 0
    assert running.daemon.runtime is runtime  # nothing swapped, nothing half-applied
    assert {j.id: j.trigger for j in running.daemon.scheduler._scheduler.get_jobs()} == jobs
    state = running.daemon.store.get("keep")
    assert state is not None
    assert state.info is kept.info  # the result store was not reconfigured
    assert [t["target"] for t in (await running.status())["targets"]] == ["keep", "gone"]
    assert (await running.target_status("keep"))["interval_seconds"] == 0.3
    before = sandbox.ninepic.count()
    await eventually(lambda: sandbox.ninepic.count() > before + 2)  # still checking
    after = await scraped(running, "pingmon_checks_total", **labels)
    assert after is not None
    assert after >= checks  # the history was kept, not restarted

    path.write_bytes(document(config_writer, [ninepic_target("keep"), ninepic_target("new")]))
    status, body = await post_reload(running)
    assert (status, body) == (200, {"status": "success"})
    assert await scraped(running, GAUGE) == 1
    await running.wait_checked("ninepic", "new", success=True)


async def test_an_interval_that_overflows_the_timers_never_breaks_later_reloads(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    path = config_writer.path
    path.write_bytes(document(config_writer, [ninepic_target("keep")]))
    running = await start_daemon(load_config(path), LIFECYCLE)
    await running.wait_checked("ninepic", "keep", success=True)
    huge = [ninepic_target("keep"), ninepic_target("huge", interval="1000000000d")]
    path.write_bytes(document(config_writer, huge))
    for _ in range(2):  # the same file again is refused again, not half-adopted
        status, body = await post_reload(running)
        assert status == 500
        assert any(line.startswith(f"{path}: targets[1].interval: ") for line in body["problems"])
        assert [t["target"] for t in (await running.status())["targets"]] == ["keep"]
    for count in (3, 2, 3):  # every later valid file is adopted
        targets = [ninepic_target(f"t{i}") for i in range(count)]
        path.write_bytes(document(config_writer, targets))
        assert await post_reload(running) == (200, {"status": "success"})
        assert [t["target"] for t in (await running.status())["targets"]] == [
            f"t{i}" for i in range(count)
        ]
        assert all(t["next_run"] for t in (await running.status())["targets"])
    assert await scraped(running, GAUGE) == 1


def blocked_loader(fifo: Path) -> Callable[[str], Config]:
    """A loader that never returns: it reads a FIFO nobody writes to (a real blocking read)."""

    def load(source: str) -> Config:
        with fifo.open() as blocked:
            blocked.read()
        return load_config(source)

    return load


@pytest.mark.usefixtures("fifo_writers")
async def test_a_load_past_its_deadline_is_given_up_and_the_next_reload_works(
    tmp_path: Path, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    path = config_writer.path
    path.write_bytes(document(config_writer, [ninepic_target("keep")]))
    running = await start_daemon(load_config(path), LIFECYCLE)
    os.mkfifo(tmp_path / "never.fifo")
    running.daemon.load = blocked_loader(tmp_path / "never.fifo")
    running.daemon.load_deadline = 0.3
    path.write_bytes(document(config_writer, [ninepic_target("other")]))

    status, body = await post_reload(running)

    assert status == 500
    assert body["problems"] == [f"{path}: loading was given up: not done within 0.3 s"]
    assert await scraped(running, GAUGE) == 0
    assert [t["target"] for t in (await running.status())["targets"]] == ["keep"]
    running.daemon.load = load_config
    assert await post_reload(running) == (200, {"status": "success"})
    assert [t["target"] for t in (await running.status())["targets"]] == ["other"]
    assert await scraped(running, GAUGE) == 1


@pytest.mark.usefixtures("fifo_writers")
async def test_stopping_during_a_load_that_never_returns_does_not_wait_for_it(
    tmp_path: Path, config_writer: ConfigWriter
) -> None:
    path = config_writer.path
    path.write_bytes(document(config_writer, [ninepic_target("keep")]))
    stop = asyncio.Event()
    started: asyncio.Future[tuple[Daemon, str]] = asyncio.get_running_loop().create_future()

    async def on_started(daemon: Daemon, address: str) -> None:
        started.set_result((daemon, address))

    service = asyncio.create_task(
        serve(load_config(path), on_started=on_started, stop=stop, web_options=LIFECYCLE)
    )
    daemon, address = await asyncio.wait_for(started, timeout=10)
    os.mkfifo(tmp_path / "never.fifo")
    daemon.load = blocked_loader(tmp_path / "never.fifo")  # the deadline stays 30 s
    # Loads abandoned by earlier tests may still be blocked, or end at any moment (their FIFO
    # opened at their teardown): wait for a loading thread that was not there before.
    before = loading_threads()
    async with aiohttp.ClientSession() as http:
        reload = asyncio.create_task(http.post(f"http://{address}/-/reload"))
        await eventually(lambda: bool(loading_threads() - before))
        stop.set()
        await asyncio.wait_for(service, timeout=10)
        async with await reload as response:
            assert response.status == 500
            assert (await response.json())["problems"] == [
                f"{path}: loading was given up: pingmon is stopping"
            ]


def loading_threads() -> set[threading.Thread]:
    """The live threads that load a configuration (one per load, named by pingmon)."""
    return {thread for thread in threading.enumerate() if thread.name == "pingmon-config-load"}
