"""`sharding:` in the file and the environment, and this process's share of the targets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pingmon.config import Config, json_schema, load_config
from pingmon.errors import ConfigError
from pingmon.placement import assignment, assignment_table, own_share, share_of
from pingmon.runner import build_plans
from pingmon.sharding import ShardBy


@pytest.fixture(autouse=True)
def no_pingmon_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PINGMON_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, sharding: dict[str, Any] | None = None, targets: int = 60) -> Path:
    """Six http providers (credential: their base URL), ``targets`` targets over them."""
    providers = {
        f"site-{i}": {"type": "http", "base_url": f"https://site-{i}.example", "rate_limit": "6/s"}
        for i in range(6)
    }
    document: dict[str, Any] = {
        "providers": providers,
        "targets": [
            {"name": f"t{n}", "provider": f"site-{n % 6}", "path": "/healthz"}
            for n in range(targets)
        ],
    }
    if sharding is not None:
        document["sharding"] = sharding
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def refusal(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return [str(problem) for problem in raised.value.problems]


def test_without_sharding_the_process_is_shard_0_of_1_and_keeps_every_target(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path))
    own, share = own_share(config)
    assert own is config
    assert share.summary() == {
        "shard": 0,
        "shards": 1,
        "by": "credential",
        "targets_here": 60,
        "targets_per_shard": [60],
    }


@pytest.mark.parametrize(("shard", "index"), [(2, 2), ("2", 2), ("pingmon-2", 2), ("a-b-0", 0)])
def test_shard_is_a_number_or_a_statefulset_pod_name(
    tmp_path: Path, shard: object, index: int
) -> None:
    config = load_config(write(tmp_path, {"shards": 3, "shard": shard}))
    assert config.settings.sharding.index == index


@pytest.mark.parametrize(
    ("sharding", "line"),
    [
        ({"shards": 3, "shard": 3}, "sharding.shard: 3 is not a shard of 3 (0 to 2)"),
        ({"shards": 3, "shard": "pingmon-5"}, "sharding.shard: 5 is not a shard of 3 (0 to 2)"),
        ({"shards": 3}, "sharding.shard: is required when shards is 3 (0 to 2)"),
        (
            {"shards": 3, "shard": "pingmon"},
            "sharding.shard: 'pingmon' is neither a shard number nor a StatefulSet pod name "
            "ending in -<ordinal> (e.g. pingmon-2)",
        ),
        ({"shards": 0, "shard": 0}, "sharding.shards: Input should be greater than 0"),
        (
            {"shards": 2, "shard": 0, "by": "provider"},
            "sharding.by: Input should be 'credential' or 'target'",
        ),
        ({"shards": 2, "shard": 0, "shardz": 1}, "sharding.shardz: unknown key"),
        # Only ASCII digits are a number (str.isdigit() and int() take Arabic-Indic and
        # superscript digits), and a pod name is all of the string (``$`` matches before a
        # trailing newline): what the schema's pattern says.
        ({"shards": 5, "shard": "\u0663"}, "sharding.shard: '\u0663' is neither a shard number"),
        ({"shards": 5, "shard": "\u00b2"}, "sharding.shard: '\u00b2' is neither a shard number"),
        ({"shards": 5, "shard": "pingmon-2\n"}, "sharding.shard: 'pingmon-2\\n' is neither"),
        ({"shards": 5, "shard": "pingmon-\u0663"}, "sharding.shard: 'pingmon-\u0663' is neither"),
        ({"shards": True, "shard": 0}, "sharding.shards: must be a number, not true or false"),
        ({"shards": 2, "shard": True}, "sharding.shard: must be a number, not true or false"),
    ],
)
def test_a_bad_sharding_is_one_line_naming_its_key(
    tmp_path: Path, sharding: dict[str, Any], line: str
) -> None:
    (problem,) = refusal(write(tmp_path, sharding))
    assert problem.startswith(line)


def test_the_environment_sets_every_sharding_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_SHARDING__SHARDS", "4")
    monkeypatch.setenv("PINGMON_SHARDING__SHARD", "pingmon-3")
    monkeypatch.setenv("PINGMON_SHARDING__BY", "target")
    sharding = load_config(write(tmp_path)).settings.sharding
    assert (sharding.shards, sharding.shard, sharding.by) == (4, 3, ShardBy.TARGET)


def test_the_environment_overrides_one_key_of_the_files_sharding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_SHARDING__SHARD", "1")
    config = load_config(write(tmp_path, {"shards": 3, "by": "target"}))
    sharding = config.settings.sharding
    assert (sharding.shards, sharding.shard, sharding.by) == (3, 1, ShardBy.TARGET)


def test_a_shard_from_the_environment_beyond_the_shards_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_SHARDING__SHARD", "pingmon-7")
    (problem,) = refusal(write(tmp_path, {"shards": 3}))
    assert problem.startswith("sharding.shard: 7 is not a shard of 3 (0 to 2)")


def test_the_shards_together_hold_every_target_once(tmp_path: Path) -> None:
    seen: list[str] = []
    for shard in range(3):
        own, share = own_share(load_config(write(tmp_path, {"shards": 3, "shard": shard})))
        assert len(own.targets) == share.targets_per_shard[shard]
        seen += [target.name for target in own.targets]
    assert sorted(seen) == sorted(f"t{n}" for n in range(60))


def test_by_credential_a_shard_holds_whole_providers(tmp_path: Path) -> None:
    own, _ = own_share(load_config(write(tmp_path, {"shards": 3, "shard": 0})))
    providers = {target.provider_name for target in own.targets}
    assert len(own.targets) == 10 * len(providers)  # each of site-0..5 holds 10 targets


def plans_rates(config: Config) -> dict[str, float]:
    own, share = own_share(config)
    plans = build_plans(own, rate_shares=share.assignment.rate_share)
    return {p.target.provider_name: p.budget.rate for p in plans.values() if p.budget}


def test_by_target_splits_each_credentials_rate_limit_between_the_shards_holding_it(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, {"shards": 3, "shard": 0, "by": "target"}))
    spread = share_of(config).assignment.spread
    assert set(spread.values()) == {3}  # ten targets a credential: each in every shard here
    assert set(plans_rates(config).values()) == {2.0}  # 6/s over 3 shards


def test_by_credential_keeps_the_whole_rate_limit(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"shards": 3, "shard": 0}))
    assert set(plans_rates(config).values()) == {6.0}


def test_the_assignment_table_shows_targets_and_credentials_per_shard(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    table = assignment_table(assignment(config, 2)).splitlines()
    counts = assignment(config, 2).targets_per_shard
    assert table[0] == "60 targets over 2 shards by credential"
    assert table[1].split() == ["SHARD", "TARGETS", "CREDENTIALS"]
    assert [row.split()[1] for row in table[2:4]] == [str(c) for c in counts]
    assert sum(int(row.split()[2]) for row in table[2:4]) == 6
    assert table[4].endswith("credentials split between shards: 0")


def test_the_schema_takes_a_shard_number_or_a_pod_name() -> None:
    schema = json_schema()
    for shard in (0, 5, "pingmon-2"):
        jsonschema.validate({"sharding": {"shards": 8, "shard": shard}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"sharding": {"shards": 8, "shard": "Pingmon"}}, schema)


def write_keyed(tmp_path: Path, keys: dict[str, str], sharding: dict[str, Any]) -> Path:
    """Stripe entries, each reading its api_key from a secret file with ``keys[entry]`` in it,
    two targets each."""
    providers = {}
    for entry, key in keys.items():
        secret = tmp_path / f"{entry}.key"
        secret.write_text(key + "\n", encoding="utf-8")
        providers[entry] = {"type": "stripe", "api_key": {"file": str(secret)}}
    targets = [
        {"name": f"{entry}-t{i}", "provider": entry, "destination_id": f"ed_{entry}_{i}"}
        for entry in keys
        for i in range(2)
    ]
    document = {"providers": providers, "targets": targets, "sharding": sharding}
    path = tmp_path / "pingmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


ENTRIES = [f"acct-{i}" for i in range(12)]


@pytest.mark.parametrize("shards", [2, 3, 5])
def test_rotating_the_secrets_moves_no_target_to_another_shard(
    tmp_path: Path, shards: int
) -> None:
    # A rotation reaches each pod's Secret volume at its own time: were the placement a
    # function of the secret, a moved target would for a while be checked twice or never.
    sharding = {"shards": shards, "shard": 0}
    before = share_of(load_config(write_keyed(tmp_path, {e: f"sk_old_{e}" for e in ENTRIES},
                                              sharding)))  # fmt: skip
    after = share_of(load_config(write_keyed(tmp_path, {e: f"sk_new_{e}" for e in ENTRIES},
                                             sharding)))  # fmt: skip
    assert after.assignment.shard_by_target == before.assignment.shard_by_target
    assert len(set(before.assignment.shard_by_target.values())) > 1


def test_entries_sharing_one_secret_stay_on_one_shard(tmp_path: Path) -> None:
    keys = {entry: "sk_shared" if entry in ("acct-3", "acct-9") else f"sk_{entry}"
            for entry in ENTRIES}  # fmt: skip
    for shards in (2, 3, 5, 8):
        held = share_of(load_config(write_keyed(tmp_path, keys, {"shards": shards, "shard": 0})))
        owners = held.assignment.shard_by_target
        shared = ("acct-3-t0", "acct-3-t1", "acct-9-t0", "acct-9-t1")
        assert len({owners[name] for name in shared}) == 1
        assert held.assignment.spread[held.assignment.credentials["acct-3-t0"]] == 1
