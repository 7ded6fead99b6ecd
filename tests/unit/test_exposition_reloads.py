"""The kept exposition after results like the last ones (the steady families skipped, the
twins copied) interleaved with reloads that change a target's provider label (a fresh
history), its interval or credential, and with profile changes (``set_families``): after
every step, the text is the one written from scratch for the same states."""

from __future__ import annotations

import random

import pytest

from pingmon.exposition import Exposition
from pingmon.results import CheckResult, ResultStore, TargetInfo
from tests.unit.test_exposition_sequences import NAMES, PROFILES, a_sticky_result, from_scratch


def relabelled(rng: random.Random) -> list[TargetInfo]:
    """Every target, each under one of two providers (a change is a new identity), with
    either interval and credential."""
    return [
        TargetInfo(
            name,
            rng.choice(("pa", 'p"b')),
            "http",
            rng.choice((30.0, 0.5)),
            f"c{rng.randrange(2)}",
        )
        for name in NAMES
        if rng.random() < 0.9
    ]


@pytest.mark.parametrize("seed", range(4))
def test_reloads_and_profile_changes_between_steady_results(seed: int) -> None:
    rng = random.Random(500 + seed)
    profile = rng.choice(list(PROFILES))
    store, exposition = ResultStore(), Exposition(PROFILES[profile])
    store.watch(exposition)
    store.configure(relabelled(rng))
    last: dict[str, CheckResult] = {}
    backoff: dict[str, float] = {}
    for step in range(300):
        draw = rng.random()
        if draw < 0.03:
            store.configure(relabelled(rng))
        elif draw < 0.05:
            profile = rng.choice(list(PROFILES))
            exposition.set_families(PROFILES[profile])
        elif draw < 0.06:
            backoff = {"c0": rng.choice((0.5, 3.0))} if rng.random() < 0.5 else {}
            exposition.refresh_backoff(backoff)
        else:
            store.record(a_sticky_result(rng, step, last))
        openmetrics = step % 2 == 1
        kept = b"".join(exposition.chunks(openmetrics))
        expected = from_scratch(PROFILES[profile], store.snapshot(), backoff, openmetrics)
        assert kept == expected, (seed, step, profile)
