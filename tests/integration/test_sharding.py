"""Sharding as users see it: the daemon and `pingmon check` check only their shard's targets,
and say which shard they are (pingmon_shard_info, /status, check's output, validate)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from pingmon.config import load_config
from pingmon.placement import share_of
from tests.integration.conftest import (
    ConfigWriter,
    StartDaemon,
    http_target,
    stripe_target,
)
from tests.integration.test_cli import pingmon
from tests.integration.test_reload import scraped

TARGETS = [http_target(f"h{i}") for i in range(8)] + [stripe_target(f"s{i}") for i in range(4)]
NAMES = [target["name"] for target in TARGETS]


@pytest.fixture(autouse=True)
def no_sharding_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PINGMON_SHARDING"):
            monkeypatch.delenv(name)


def owners(writer: ConfigWriter, shards: int, by: str) -> dict[str, int]:
    """Which shard holds each target, as every replica computes it from the whole file."""
    path = writer.write(TARGETS, sharding={"shards": shards, "shard": 0, "by": by})
    return dict(share_of(load_config(path)).assignment.shard_by_target)


async def test_a_sharded_daemon_checks_only_its_targets_and_says_which_shard_it_is(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    held = owners(config_writer, 2, "target")
    ours = [name for name in NAMES if held[name] == 1]
    theirs = [name for name in NAMES if held[name] == 0]
    assert ours
    assert theirs
    config = config_writer.load(
        TARGETS, sharding={"shards": 2, "shard": "pingmon-1", "by": "target"}
    )
    running = await start_daemon(config)
    for name in ours:
        provider = "status" if name.startswith("h") else "stripe"
        await running.wait_checked(provider, name)
    assert all(running.daemon.store.get(name) is None for name in theirs)
    assert await scraped(running, "pingmon_shard_info", shard="1", shards="2") == 1.0
    status = await running.status()
    assert sorted(t["target"] for t in status["targets"]) == sorted(ours)
    assert status["sharding"] == {
        "shard": 1,
        "shards": 2,
        "by": "target",
        "targets_here": len(ours),
        "targets_per_shard": [len(theirs), len(ours)],
    }


async def test_an_unsharded_daemon_is_shard_0_of_1(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load(TARGETS[:2]))
    assert await scraped(running, "pingmon_shard_info", shard="0", shards="1") == 1.0
    assert (await running.status())["sharding"]["targets_per_shard"] == [2]


async def test_a_reload_with_another_shard_swaps_the_targets_and_the_shard_info(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    held = owners(config_writer, 2, "target")
    config = config_writer.load(TARGETS, sharding={"shards": 2, "shard": 0, "by": "target"})
    running = await start_daemon(config)
    config_writer.write(TARGETS, sharding={"shards": 2, "shard": 1, "by": "target"})
    ok, problems = await running.daemon.reload()
    assert ok, problems
    expected = sorted(name for name in NAMES if held[name] == 1)
    assert sorted(state.info.name for state in running.daemon.store.snapshot()) == expected
    assert await scraped(running, "pingmon_shard_info", shard="1", shards="2") == 1.0
    assert await scraped(running, "pingmon_shard_info", shard="0", shards="2") is None

    config_writer.write(TARGETS)  # sharding removed: every target again
    ok, problems = await running.daemon.reload()
    assert ok, problems
    assert len(running.daemon.store.snapshot()) == len(NAMES)
    assert await scraped(running, "pingmon_shard_info", shard="0", shards="1") == 1.0


async def check(config_writer: ConfigWriter, *args: str, **env: str) -> tuple[int, str, str]:
    path = config_writer.write(TARGETS)
    os.environ.update(env)
    try:
        done = await pingmon("check", "--config", str(path), *args)
    finally:
        for name in env:
            del os.environ[name]
    return done.returncode, done.stdout, done.stderr


SHARD_2_OF_3 = {"PINGMON_SHARDING__SHARDS": "3", "PINGMON_SHARDING__SHARD": "pingmon-2"}


async def test_check_with_sharding_checks_its_shard_and_says_so_in_json(
    config_writer: ConfigWriter,
) -> None:
    held = owners(config_writer, 3, "credential")
    status, stdout, stderr = await check(config_writer, "--json", **SHARD_2_OF_3)
    results: list[dict[str, Any]] = json.loads(stdout)
    assert status == 0, stderr
    assert [r["target"] for r in results] == [name for name in NAMES if held[name] == 2]
    assert results
    assert {r["shard"] for r in results} == {2}


async def test_check_with_sharding_heads_its_table_with_the_shard_and_the_others_counts(
    config_writer: ConfigWriter,
) -> None:
    held = owners(config_writer, 3, "credential")
    assert 2 in held.values()
    counts = [sum(1 for shard in held.values() if shard == i) for i in range(3)]
    status, stdout, stderr = await check(config_writer, **SHARD_2_OF_3)
    assert status == 0, stderr
    first, header = stdout.splitlines()[:2]
    assert first == (
        f"shard 2 of 3 (by credential): {counts[2]} targets here; "
        f"other shards: 0: {counts[0]}, 1: {counts[1]}"
    )
    assert header.split()[0] == "TARGET"


async def test_check_without_sharding_checks_every_target(config_writer: ConfigWriter) -> None:
    status, stdout, stderr = await check(config_writer, "--json")
    assert status == 0, stderr
    results = json.loads(stdout)
    assert [r["target"] for r in results] == NAMES
    assert all("shard" not in r for r in results)  # unsharded output as it always was


async def test_check_of_a_target_another_shard_holds_is_refused_naming_its_shard(
    config_writer: ConfigWriter,
) -> None:
    held = owners(config_writer, 3, "credential")
    theirs = next(name for name in NAMES if held[name] != 2)
    status, _, stderr = await check(config_writer, "--target", theirs, **SHARD_2_OF_3)
    assert status == 2
    assert f"not this shard's (2 of 3): {theirs} (shard {held[theirs]})" in stderr


async def test_validate_with_shards_prints_targets_and_credentials_per_shard(
    config_writer: ConfigWriter,
) -> None:
    path = config_writer.write(TARGETS)
    done = await pingmon("config", "validate", "--config", str(path), "--shards", "4", "--by",
                         "target")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "12 targets over 4 shards by target"
    rows = [line.split() for line in lines[3:7]]
    assert [row[0] for row in rows] == ["0", "1", "2", "3"]
    assert sum(int(row[1]) for row in rows) == 12
    assert lines[7].startswith("largest shard / mean: ")


async def test_validate_refuses_zero_shards(config_writer: ConfigWriter) -> None:
    path = config_writer.write(TARGETS)
    done = await pingmon("config", "validate", "--config", str(path), "--shards", "0")
    assert done.returncode == 2
    assert "--shards: must be a whole number from 1 to 1024" in done.stderr


@pytest.mark.parametrize("shards", ["\u0661\u0660", "\u00b2", "3.0"])
async def test_validate_takes_only_ascii_digits_for_shards(
    config_writer: ConfigWriter, shards: str
) -> None:
    path = config_writer.write(TARGETS)
    done = await pingmon("config", "validate", "--config", str(path), "--shards", shards)
    assert done.returncode == 2
    assert "--shards: must be a whole number from 1 to 1024" in done.stderr
