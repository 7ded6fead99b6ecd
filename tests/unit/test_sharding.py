"""The shard assignment alone: stable, one shard a target, credentials kept whole, small moves."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from pingmon.sharding import Placed, ShardBy, assign, shard_of, weight


def fleet(credentials: int, per_credential: int, seed: int = 7) -> list[Placed]:
    """``credentials`` credential keys (hex, like credential_key()'s) with targets each."""
    rng = random.Random(seed)
    keys = [f"{rng.getrandbits(64):016x}" for _ in range(credentials)]
    return [Placed(f"{key}-t{i}", key) for key in keys for i in range(per_credential)]


# Pinned: the same keys land on the same shards on every machine, Python and restart.
@pytest.mark.parametrize(
    ("key", "of_3", "of_4", "of_16"),
    [
        ("alpha", 2, 2, 11),
        ("beta", 2, 2, 2),
        ("gamma", 0, 0, 14),
        ("delta", 1, 1, 8),
        ("3f2a9c1b0d4e5f60", 2, 2, 2),
    ],
)
def test_a_key_lands_on_the_same_shard_everywhere(
    key: str, of_3: int, of_4: int, of_16: int
) -> None:
    assert (shard_of(key, 3), shard_of(key, 4), shard_of(key, 16)) == (of_3, of_4, of_16)


def test_the_weight_is_blake2b_not_the_salted_builtin_hash() -> None:
    assert weight(0, "alpha") == 6471413665764089951
    script = "from pingmon.sharding import shard_of; print(shard_of('gamma', 7))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outputs == {f"{shard_of('gamma', 7)}\n"}


def test_one_shard_holds_everything() -> None:
    assignment = assign(fleet(20, 3), 1, ShardBy.CREDENTIAL)
    assert set(assignment.shard_by_target.values()) == {0}
    assert assignment.targets_per_shard == (60,)


@pytest.mark.parametrize("by", list(ShardBy))
@pytest.mark.parametrize("shards", [2, 3, 7, 16])
def test_every_target_is_in_exactly_one_shard(by: ShardBy, shards: int) -> None:
    targets = fleet(50, 4)
    assignment = assign(targets, shards, by)
    assert set(assignment.shard_by_target) == {t.name for t in targets}
    assert all(0 <= shard < shards for shard in assignment.shard_by_target.values())
    assert sum(assignment.targets_per_shard) == len(targets)


def test_by_credential_keeps_every_target_of_a_credential_in_one_shard() -> None:
    assignment = assign(fleet(200, 5), 4, ShardBy.CREDENTIAL)
    shards_of: dict[str, set[int]] = {}
    for name, shard in assignment.shard_by_target.items():
        shards_of.setdefault(assignment.credentials[name], set()).add(shard)
    assert all(len(held) == 1 for held in shards_of.values())
    assert set(assignment.spread.values()) == {1}
    assert len({next(iter(held)) for held in shards_of.values()}) == 4  # all shards used


def test_going_from_3_to_4_shards_moves_only_the_credentials_the_new_shard_wins() -> None:
    targets = fleet(2000, 3)
    before = assign(targets, 3, ShardBy.CREDENTIAL).shard_by_target
    after = assign(targets, 4, ShardBy.CREDENTIAL).shard_by_target
    moved = [name for name in before if before[name] != after[name]]
    assert all(after[name] == 3 for name in moved)  # to the new shard, never between old ones
    credentials = {t.name: t.credential for t in targets}
    moved_credentials = {credentials[name] for name in moved}
    # whole credentials move: every target of a moved credential moved
    assert len(moved) == 3 * len(moved_credentials)
    assert 0.2 < len(moved) / len(targets) < 0.3  # about a quarter


def test_going_from_3_to_4_shards_by_target_moves_about_a_quarter_of_the_targets() -> None:
    targets = fleet(10, 300)
    before = assign(targets, 3, ShardBy.TARGET).shard_by_target
    after = assign(targets, 4, ShardBy.TARGET).shard_by_target
    moved = [name for name in before if before[name] != after[name]]
    assert all(after[name] == 3 for name in moved)
    assert 0.2 < len(moved) / len(targets) < 0.3


def test_by_target_spreads_one_big_credential_and_counts_its_shards_for_the_rate_split() -> None:
    big = [Placed(f"pbx-{i}", "big") for i in range(400)]
    small = [Placed("lonely", "small")]
    assignment = assign(big + small, 4, ShardBy.TARGET)
    counts = assignment.targets_per_shard
    assert max(counts) < 1.3 * (401 / 4)
    assert assignment.rate_share("big") == 4
    assert assignment.rate_share("small") == 1
    assert assignment.rate_share("not-configured") == 1


def test_by_credential_one_big_credential_loads_one_shard() -> None:
    big = [Placed(f"pbx-{i}", "big") for i in range(400)]
    assignment = assign(big, 4, ShardBy.CREDENTIAL)
    assert sorted(assignment.targets_per_shard) == [0, 0, 0, 400]
    assert assignment.rate_share("big") == 1


def test_credentials_per_shard_counts_each_credential_once_per_shard() -> None:
    targets = [Placed("a1", "a"), Placed("a2", "a"), Placed("b1", "b")]
    assignment = assign(targets, 1, ShardBy.CREDENTIAL)
    assert assignment.credentials_per_shard() == (2,)
