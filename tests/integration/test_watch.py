"""pingmon reloads by itself when its mounted configuration or a secret file changes; a bad,
empty or hanging file is refused, and the watcher goes on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingmon.config import load_config
from pingmon.sandbox import Sandbox
from tests.configmap import ConfigMapDir
from tests.integration.conftest import (
    CREDS,
    FAST_DEFAULTS,
    ConfigWriter,
    RunningDaemon,
    StartDaemon,
    eventually,
    ninepic_target,
    sandbox_providers,
)

WATCH_FAST = {"enabled": True, "interval": "100ms"}


def document(sandbox: Sandbox, targets: list[dict[str, Any]], **top: Any) -> str:
    body: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "defaults": dict(FAST_DEFAULTS, interval="200ms", timeout="150ms"),
        "watch": WATCH_FAST,
        "providers": sandbox_providers(sandbox),
        "targets": targets,
    }
    body.update(top)
    return yaml.safe_dump(body, sort_keys=False)


async def test_a_configmap_update_adds_a_target_without_a_signal(
    tmp_path: Path, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    volume = ConfigMapDir(
        tmp_path / "etc", {"pingmon.yaml": document(sandbox, [ninepic_target("first")])}
    )
    running = await start_daemon(load_config(volume.path("pingmon.yaml")))
    await running.wait_checked("ninepic", "first", success=True)
    assert running.sample("pingmon_check_success", provider="ninepic", target="second") is None

    targets = [ninepic_target("first"), ninepic_target("second")]
    volume.publish({"pingmon.yaml": document(sandbox, targets)})

    await running.wait_checked("ninepic", "second", success=True)
    assert running.sample("pingmon_config_last_reload_successful") == 1


async def test_an_invalid_configmap_update_keeps_the_old_configuration_running(
    tmp_path: Path, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    good = document(sandbox, [ninepic_target("kept")])
    volume = ConfigMapDir(tmp_path / "etc", {"pingmon.yaml": good})
    running = await start_daemon(load_config(volume.path("pingmon.yaml")))
    await running.wait_checked("ninepic", "kept", success=True)

    bad = document(sandbox, [ninepic_target("kept", interval="soon")])
    volume.publish({"pingmon.yaml": bad})
    await eventually(lambda: running.sample("pingmon_config_last_reload_successful") == 0)

    labels = {"provider": "ninepic", "target": "kept", "error_class": "none"}
    before = running.sample("pingmon_checks_total", **labels) or 0
    await eventually(lambda: (running.sample("pingmon_checks_total", **labels) or 0) >= before + 2)
    assert running.daemon.config.source == str(volume.path("pingmon.yaml"))

    volume.publish({"pingmon.yaml": document(sandbox, [ninepic_target("fixed")])})
    await running.wait_checked("ninepic", "fixed", success=True)
    assert running.sample("pingmon_config_last_reload_successful") == 1
    assert (
        running.sample("pingmon_check_interval_seconds", provider="ninepic", target="kept") is None
    )


async def test_a_rotated_secret_file_is_used_without_a_restart(
    tmp_path: Path, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    secret = ConfigMapDir(tmp_path / "secret", {"api-key": CREDS.ninepic.api_key})
    providers = sandbox_providers(sandbox)
    providers["ninepic"]["api_key"] = {"file": str(secret.path("api-key"))}
    config = tmp_path / "pingmon.yaml"
    config.write_text(document(sandbox, [ninepic_target("rotating")], providers=providers))
    running = await start_daemon(load_config(config))
    await running.wait_checked("ninepic", "rotating", success=True)

    secret.publish({"api-key": "revoked-key-that-9pic-rejects"})
    await eventually(
        lambda: (
            running.sample(
                "pingmon_check_error_class",
                provider="ninepic",
                target="rotating",
                error_class="forbidden",
            )
            == 1
        )
    )
    secret.publish({"api-key": CREDS.ninepic.api_key})
    await running.wait_checked("ninepic", "rotating", success=True)


async def test_watching_switched_off_leaves_a_changed_file_alone(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    off = {"enabled": False, "interval": "50ms"}
    running = await start_daemon(config_writer.load([ninepic_target("only")], watch=off))
    await running.wait_checked("ninepic", "only")
    config_writer.write([ninepic_target("only"), ninepic_target("added")], watch=off)
    await asyncio.sleep(0.5)  # ten polls' worth
    assert (
        running.sample("pingmon_check_interval_seconds", provider="ninepic", target="added")
        is None
    )
    assert [target.name for target in running.daemon.config.targets] == ["only"]


async def scraped_gauge(running: RunningDaemon) -> float | None:
    """pingmon_config_last_reload_successful as GET /metrics shows it."""
    _, _, body = await running.get_text("/metrics")
    found = re.search(r"^pingmon_config_last_reload_successful (\S+)$", body, re.MULTILINE)
    return None if found is None else float(found.group(1))


def replace_file(path: Path, content: bytes) -> None:
    """Write beside, then rename over: how tools that care about readers update a file."""
    staged = path.with_suffix(".staged")
    staged.write_bytes(content)
    os.replace(staged, path)


def huge_interval(good: bytes) -> bytes:
    return good.replace(b"interval: 200ms", b"interval: 1000000000d")


# Each made from the good file: a truncate-then-write caught at its start is "empty".
BAD_UNDER_THE_WATCHER: dict[str, Callable[[bytes], bytes]] = {
    "non-UTF-8": lambda good: good + b"# caf\xe9\n",
    "empty": lambda good: b"",
    "whitespace only": lambda good: b"\n  \n\t\n",
    "interval 1000000000d": huge_interval,
}


@pytest.mark.parametrize("kind", list(BAD_UNDER_THE_WATCHER))
@pytest.mark.parametrize("write", ["in place", "renamed over"])
async def test_the_watcher_refuses_a_bad_file_survives_it_and_applies_the_next_good_one(
    tmp_path: Path, start_daemon: StartDaemon, sandbox: Sandbox, kind: str, write: str
) -> None:
    path = tmp_path / "pingmon.yaml"
    good = document(sandbox, [ninepic_target("first")]).encode()
    path.write_bytes(good)
    running = await start_daemon(load_config(path))
    await running.wait_checked("ninepic", "first", success=True)

    bad = BAD_UNDER_THE_WATCHER[kind](good)
    assert bad != good
    if write == "in place":
        path.write_bytes(bad)
    else:
        replace_file(path, bad)

    async def refused() -> bool:
        return await scraped_gauge(running) == 0

    await eventually(refused)
    assert [t["target"] for t in (await running.status())["targets"]] == ["first"]
    labels = {"provider": "ninepic", "target": "first", "error_class": "none"}
    before = running.sample("pingmon_checks_total", **labels) or 0
    await eventually(lambda: (running.sample("pingmon_checks_total", **labels) or 0) > before)

    fixed = document(sandbox, [ninepic_target("first"), ninepic_target("second")]).encode()
    if write == "in place":
        path.write_bytes(fixed)
    else:
        replace_file(path, fixed)
    await running.wait_checked("ninepic", "second", success=True)

    async def adopted() -> bool:
        return await scraped_gauge(running) == 1

    await eventually(adopted)


async def test_a_load_that_hangs_under_the_watcher_is_given_up_and_the_watcher_goes_on(
    tmp_path: Path, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(document(sandbox, [ninepic_target("first")]))
    running = await start_daemon(load_config(path))
    running.daemon.load_deadline = 0.5
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)
    providers = sandbox_providers(sandbox)
    providers["ninepic"]["api_key"] = {"file": str(fifo)}
    try:
        replace_file(path, document(sandbox, [ninepic_target("x")], providers=providers).encode())

        async def refused() -> bool:
            return await scraped_gauge(running) == 0

        await eventually(refused)
        replace_file(path, document(sandbox, [ninepic_target("second")]).encode())
        await running.wait_checked("ninepic", "second", success=True)
    finally:
        with contextlib.suppress(OSError):  # a reader still blocked on the FIFO: let it go
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


async def test_a_file_left_half_written_in_place_is_never_adopted_while_it_keeps_changing(
    tmp_path: Path, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    """A writer that adds a target five times a poll: each look differs from the last, so the
    watcher waits; the file is adopted whole once it stays the same."""
    watch = {"enabled": True, "interval": "1s"}
    path = tmp_path / "pingmon.yaml"
    path.write_text(document(sandbox, [ninepic_target("t0")], watch=watch))
    running = await start_daemon(load_config(path))
    adopted: set[int] = set()
    for count in range(2, 12):
        targets = [ninepic_target(f"t{i}") for i in range(count)]
        path.write_text(document(sandbox, targets, watch=watch))
        await asyncio.sleep(0.2)
        adopted.add(len(running.daemon.config.targets))
    await eventually(lambda: len(running.daemon.config.targets) == 11)
    assert adopted <= {1, 11}
