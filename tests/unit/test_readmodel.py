"""The HTTP layer's read model: a snapshot taken at one instant, which later changes leave as
it was, and the /status document written from it alone."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest

from pingmon.backoff import RateLimitGate
from pingmon.config import BackoffSettings
from pingmon.errors import ErrorClass
from pingmon.readmodel import Snapshot, take_snapshot
from pingmon.results import CheckResult, ResultStore, TargetInfo
from pingmon.scheduler import CheckScheduler
from pingmon.status import document
from pingmon.webhooks.stripe import StripeWebhookSettings
from pingmon.webhooks.tracker import WebhookTarget, WebhookTracker

NOW = 1000.0


class Daemonless:
    """The collaborators a daemon reads a snapshot from, the real ones, with a still clock."""

    def __init__(self, names: list[str]) -> None:
        self.store = ResultStore()
        self.store.configure([TargetInfo(name, "shop", "http", 30.0, "key") for name in names])
        self.gate = RateLimitGate(BackoffSettings(), clock=lambda: NOW, rand=random.Random(1))
        self.webhooks = WebhookTracker(lambda: NOW)

    async def _never(self, name: str) -> None:
        raise AssertionError("no check runs here")

    def snapshot(self, names: list[str] | None = None) -> Snapshot:
        return take_snapshot(
            store=self.store,
            scheduler=CheckScheduler(self._never, lambda lag: None),
            gate=self.gate,
            webhooks=self.webhooks,
            config="pingmon.yaml",
            ready=True,
            names=names,
        )


@pytest.fixture
def daemonless() -> Iterator[Daemonless]:
    made = Daemonless(["a", "b", "c"])
    yield made
    made.webhooks.close()


def result(target: str, detail: str) -> CheckResult:
    return CheckResult(target, "shop", ErrorClass.SERVER_ERROR, 503, 0.5, 1, detail, NOW)


def targets(snapshot: Snapshot) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(b"".join(document(snapshot)))["targets"]
    return entries


def test_a_snapshot_keeps_showing_the_instant_it_was_taken(daemonless: Daemonless) -> None:
    before = daemonless.snapshot()
    daemonless.store.record(result("c", "recorded after the snapshot"))
    daemonless.gate.on_rate_limited("key", "60")
    assert [t["detail"] for t in targets(before)] == [None, None, None]
    assert {t["backoff_seconds"] for t in targets(before)} == {0.0}


def test_the_next_snapshot_shows_every_change_at_once(daemonless: Daemonless) -> None:
    daemonless.store.record(result("c", "recorded"))
    daemonless.gate.on_rate_limited("key", "60")
    after = targets(daemonless.snapshot())
    assert [t["detail"] for t in after] == [None, None, "recorded"]
    backoffs = {t["backoff_seconds"] for t in after}
    assert len(backoffs) == 1
    assert 60.0 <= backoffs.pop() <= 66.0  # Retry-After, plus up to 10% (backoff.py)


def test_named_targets_come_in_the_order_asked_and_unknown_names_are_listed(
    daemonless: Daemonless,
) -> None:
    snapshot = daemonless.snapshot(["c", "nope", "a", "gone"])
    assert [state.info.name for state in snapshot.targets] == ["c", "a"]
    assert snapshot.unknown == ("nope", "gone")


def test_no_names_give_a_snapshot_of_no_targets_that_still_says_whether_ready(
    daemonless: Daemonless,
) -> None:
    snapshot = daemonless.snapshot([])
    assert snapshot.targets == ()
    assert snapshot.ready is True


def test_a_snapshot_cannot_be_changed_through_its_mappings(daemonless: Daemonless) -> None:
    daemonless.gate.on_rate_limited("key", "60")
    snapshot = daemonless.snapshot()
    assert isinstance(snapshot.backoffs, MappingProxyType)
    with pytest.raises(TypeError):
        snapshot.backoffs["key"] = snapshot.backoff("other")  # type: ignore[index]


def test_a_snapshot_carries_the_webhook_state_of_the_targets_it_shows(
    daemonless: Daemonless,
) -> None:
    settings = StripeWebhookSettings.model_validate({"signing_secret": "whsec_x", "timeout": 60})
    daemonless.webhooks.configure([WebhookTarget("a", "shop", "stripe", settings)])
    assert set(daemonless.snapshot().webhooks) == {"a"}
    assert set(daemonless.snapshot(["a", "b"]).webhooks) == {"a"}
    assert set(daemonless.snapshot(["b"]).webhooks) == set()
    (entry, _, _) = targets(daemonless.snapshot())
    assert entry["webhook"]["timeout_seconds"] == 60.0
    assert entry["webhook"]["awaiting"] == 0
