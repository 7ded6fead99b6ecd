"""Which shard checks which target: rendezvous hashing, a pure function of the whole file.

Every replica of a StatefulSet reads the same file and computes the same assignment, so no
coordinator or shared store is needed. A target's key is its credential (``by: credential``,
the default: a credential's 429 back-off and rate budget then live in one process; named by a
provider entry, never by its secret, see ``placement.anchors``) or its
name (``by: target``: even load when one credential holds most targets; each credential's
``rate_limit`` is then split between the shards that hold its targets).

Rendezvous (highest-random-weight) hashing: a key goes to the shard with the highest
``weight(shard, key)``. Going from N to N+1 shards moves only the keys the new shard now wins,
about 1/(N+1) of them, and every other key stays where it was. The weight is BLAKE2b of
``"{shard}:{key}"``, never Python's ``hash()`` (salted per process), so the assignment is the
same across restarts, machines and Python versions.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from pingmon.fields import NumbersNotBooleans

MAX_SHARDS = 1024
# A pod name: a DNS subdomain name ending in -<ordinal> (the schema's pattern, so ECMA-262 too).
_POD_ORDINAL = re.compile(r"^[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?-([0-9]{1,4})$")
# A number written out: ASCII digits only (str.isdigit() and int() also take "٣" and "²").
DIGITS = re.compile(r"[0-9]+")


class ShardBy(StrEnum):
    """What a target is placed by."""

    CREDENTIAL = "credential"
    TARGET = "target"


def _ordinal(value: Any) -> Any:
    """An integer, or the ordinal of a StatefulSet pod name (``pingmon-2`` is 2)."""
    if isinstance(value, bool):  # YAML's true/false would pass as 1/0
        raise ValueError("must be a number, not true or false")
    if isinstance(value, str):
        if DIGITS.fullmatch(value):
            return int(value)
        match = _POD_ORDINAL.fullmatch(value)  # all of it: ``$`` also matches before a "\n"
        if match is None:
            raise ValueError(
                f"{value[:100]!r} is neither a shard number nor a StatefulSet pod name ending "
                "in -<ordinal> (e.g. pingmon-2)"
            )
        return int(match[1])
    return value


ShardIndex = Annotated[
    int,
    BeforeValidator(_ordinal),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": _POD_ORDINAL.pattern},
            ]
        }
    ),
]


class ShardingSettings(NumbersNotBooleans):
    """Which share of the targets this process checks (every target, unless ``shards > 1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shards: PositiveInt = Field(
        default=1, le=MAX_SHARDS, description="how many processes share the targets"
    )
    shard: ShardIndex | None = Field(
        default=None,
        validate_default=True,  # required when shards > 1: checked when absent too
        description="this process's shard, 0 to shards-1, or a StatefulSet pod name whose "
        "ordinal it is (pingmon-2 is shard 2); required when shards > 1",
    )
    by: ShardBy = Field(
        default=ShardBy.CREDENTIAL,
        description="credential: every target of a credential in one shard (its back-off and "
        "rate budget stay exact); target: even shards, each credential's rate_limit split "
        "between the shards holding its targets",
    )

    @field_validator("shard")
    @classmethod
    def _below_shards(cls, shard: int | None, info: ValidationInfo) -> int | None:
        shards = info.data.get("shards")
        if shard is None:
            if shards is not None and shards > 1:
                raise ValueError(f"is required when shards is {shards} (0 to {shards - 1})")
            return shard
        if shards is not None and not 0 <= shard < shards:
            raise ValueError(f"{shard} is not a shard of {shards} (0 to {shards - 1})")
        return shard

    @property
    def index(self) -> int:
        """This process's shard; 0 when unsharded."""
        return self.shard or 0


def weight(shard: int, key: str) -> int:
    """The rendezvous weight of ``key`` on ``shard``: 64 bits of BLAKE2b of ``"{shard}:{key}"``,
    the same on every platform and Python."""
    return int.from_bytes(_digest(_prefix(shard), key.encode()), "big")


def shard_of(key: str, shards: int) -> int:
    """The shard (0 to shards-1) whose weight for ``key`` is highest."""
    if shards == 1:
        return 0
    encoded = key.encode()
    # Big-endian digests of one length compare as the weights they stand for.
    digests = [_digest(_prefix(shard), encoded) for shard in range(shards)]
    return digests.index(max(digests))


@cache
def _prefix(shard: int) -> bytes:
    return f"{shard}:".encode()


def _digest(prefix: bytes, key: bytes) -> bytes:
    return hashlib.blake2b(prefix + key, digest_size=8).digest()


@dataclass(frozen=True, slots=True)
class Placed:
    """A target as the assignment sees it: its name, its credential's key (whose targets share
    a back-off and a rate budget), and the name ``by: credential`` places that credential by
    (``anchor``; the key itself when empty)."""

    name: str
    credential: str
    anchor: str = ""


@dataclass(frozen=True, slots=True)
class Assignment:
    """Every target's shard, and how many shards hold each credential's targets."""

    shards: int
    by: ShardBy
    shard_by_target: Mapping[str, int]
    credentials: Mapping[str, str]  # target name -> credential key
    # credential key -> how many shards hold its targets (1 under by: credential)
    spread: Mapping[str, int]
    targets_per_shard: tuple[int, ...]  # by shard

    def credentials_per_shard(self) -> tuple[int, ...]:
        held = {(shard, self.credentials[name]) for name, shard in self.shard_by_target.items()}
        counts = Counter(shard for shard, _ in held)
        return tuple(counts[shard] for shard in range(self.shards))

    def rate_share(self, credential: str) -> int:
        """The number of ways a credential's rate_limit is split (1: not split)."""
        return self.spread.get(credential, 1)


def assign(targets: Iterable[Placed], shards: int, by: ShardBy) -> Assignment:
    """Place every target on one of ``shards``; a key's weights are computed once."""
    placed = list(targets)
    memo: dict[str, int] = {}
    shard_by_target: dict[str, int] = {}
    holders: dict[str, set[int]] = {}
    for target in placed:
        key = (target.anchor or target.credential) if by is ShardBy.CREDENTIAL else target.name
        shard = memo.get(key)
        if shard is None:
            shard = memo[key] = shard_of(key, shards)
        shard_by_target[target.name] = shard
        holders.setdefault(target.credential, set()).add(shard)
    counts = Counter(shard_by_target.values())
    return Assignment(
        shards=shards,
        by=by,
        shard_by_target=shard_by_target,
        credentials={target.name: target.credential for target in placed},
        spread={credential: len(held) for credential, held in holders.items()},
        targets_per_shard=tuple(counts[shard] for shard in range(shards)),
    )
