"""This process's share of a configuration: ``sharding`` applied to the file's targets.

The assignment is computed from the whole file (``pingmon.sharding``), so every replica
agrees on it; the process then keeps only its own targets, and everything downstream
(plans, schedule, result store, webhooks, ``check``) sees only those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from pingmon.config import Config
from pingmon.providers import PROVIDER_TYPES
from pingmon.sharding import Assignment, Placed, ShardBy, assign


@dataclass(frozen=True, slots=True)
class Share:
    """Which shard this process is, and the assignment of the whole file it comes from."""

    shard: int
    assignment: Assignment

    @property
    def shards(self) -> int:
        return self.assignment.shards

    @property
    def by(self) -> ShardBy:
        return self.assignment.by

    @property
    def targets_per_shard(self) -> tuple[int, ...]:
        return self.assignment.targets_per_shard

    def owner(self, target: str) -> int | None:
        """The shard that checks ``target``; None if the file has no such target."""
        return self.assignment.shard_by_target.get(target)

    def summary(self) -> dict[str, object]:
        """The ``sharding`` object of ``/status`` and ``check --json``."""
        counts = self.targets_per_shard
        return {
            "shard": self.shard,
            "shards": self.shards,
            "by": self.by.value,
            "targets_here": counts[self.shard],
            "targets_per_shard": list(counts),
        }

    def heading(self) -> str:
        """One line for ``check``'s table: this shard, and what the others hold."""
        counts = self.targets_per_shard
        others = ", ".join(
            f"{shard}: {count}" for shard, count in enumerate(counts) if shard != self.shard
        )
        return (
            f"shard {self.shard} of {self.shards} (by {self.by.value}): "
            f"{counts[self.shard]} targets here; other shards: {others}"
        )


def credential_keys(config: Config) -> dict[str, str]:
    """Each provider entry's credential key (the back-off's and rate budget's), by name."""
    return {
        name: PROVIDER_TYPES[settings.type](settings).credential_key()
        for name, settings in config.settings.providers.items()
    }


def anchors(keys: Mapping[str, str]) -> dict[str, str]:
    """Each provider entry's anchor: the first name, in sorted order, of the entries holding
    its credential key. ``by: credential`` places a credential by this name rather than by its
    key, a hash of the secret: rotating a secret then moves nothing (each pod's Secret volume
    is updated at its own time, and a moved target would meanwhile be checked twice or not at
    all), and the shard says nothing about a secret."""
    first: dict[str, str] = {}
    for name in sorted(keys):
        first.setdefault(keys[name], name)
    return {name: first[key] for name, key in keys.items()}


def assignment(config: Config, shards: int | None = None, by: ShardBy | None = None) -> Assignment:
    """The file's targets over ``shards`` (the file's ``sharding.shards`` by default)."""
    sharding = config.settings.sharding
    keys = credential_keys(config)
    anchor = anchors(keys)
    placed = (
        Placed(target.name, keys[target.provider_name], anchor[target.provider_name])
        for target in config.targets
    )
    return assign(placed, shards or sharding.shards, by or sharding.by)


def share_of(config: Config) -> Share:
    """This process's share of the file, as its ``sharding`` settings say."""
    return Share(config.settings.sharding.index, assignment(config))


def own_share(config: Config) -> tuple[Config, Share]:
    """The configuration with only this process's targets, and its share. Unsharded (one
    shard), the configuration is returned as it is."""
    sharding = config.settings.sharding
    share = share_of(config)
    if sharding.shards == 1:
        return config, share
    ours = tuple(t for t in config.targets if share.owner(t.name) == sharding.index)
    return dataclasses.replace(config, targets=ours), share


def assignment_table(assignment: Assignment) -> str:
    """What ``config validate --shards N`` prints: targets and credentials per shard, and the
    balance (the largest shard over the mean)."""
    targets = assignment.targets_per_shard
    credentials = assignment.credentials_per_shard()
    rows = [("SHARD", "TARGETS", "CREDENTIALS")]
    rows += [
        (str(i), str(t), str(c)) for i, (t, c) in enumerate(zip(targets, credentials, strict=True))
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    total = sum(targets)
    balance = max(targets) * assignment.shards / total if total else 1.0
    split = sum(1 for ways in assignment.spread.values() if ways > 1)
    title = f"{total} targets over {assignment.shards} shards by {assignment.by.value}"
    footer = f"largest shard / mean: {balance:.2f}; credentials split between shards: {split}"
    return "\n".join([title, *lines, footer])
