"""pingmon reloads by itself when its mounted configuration or a secret file changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from pingmon.config import load_config
from pingmon.sandbox import Sandbox
from tests.configmap import ConfigMapDir
from tests.integration.conftest import (
    CREDS,
    FAST_DEFAULTS,
    ConfigWriter,
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
