"""Three shards of one configuration keep the shipped alerts right in a real Prometheus.

Three `pingmon run` processes read ONE configuration file and differ only in
PINGMON_SHARDING__SHARD (0 to 2 of PINGMON_SHARDING__SHARDS=3) and PINGMON_LISTEN; Prometheus
scrapes them as the pods of one StatefulSet (job SHARDED, a `pod` label each). A fourth,
unsharded process reads the same file, so it checks every target, in a job of its own
(UNSHARDED), to compare the recording rules' ratios with. The targets are on the sandbox
(`python -m pingmon.sandbox`): 9pic on its two keys and the status fake behind eight bearer
tokens, ten credentials in all, so that every shard holds some. Prometheus evaluates the
shipped rule file with only its `for:` durations shortened (tests/e2e/rules.py), every
second, and sends to an Alertmanager that routes everything nowhere.

The cases run in this order on one stack: each target checked once, one failing target, the
ratios (after it healed), then one stopped shard.
"""

from __future__ import annotations

import math
import os
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from pingmon.config import load_config
from pingmon.placement import assignment
from tests.e2e.conftest import rules_file
from tests.e2e.report import NOTES
from tests.e2e.stack import CREDS, Stack
from tests.processes import POLL_SECONDS, Process, eventually, free_port, http_json, http_ok
from tests.tools import require_tool

SHARDS: Final = 3
SHARDED: Final = "pingmon-sharded"
UNSHARDED: Final = "pingmon-unsharded"
# Checks and scrapes every 500 ms, a check's timeout 400 ms: loopback answers take a
# millisecond, but on a loaded machine a shorter timeout makes healthy targets time out.
INTERVAL: Final = "500ms"
TIMEOUT: Final = "400ms"
# Status-page accounts, each behind its own bearer token (a credential of its own); the even
# ones hold two targets. With the two 9pic keys: ten credentials, fourteen targets.
ACCOUNTS: Final = 8
NINEPIC_KEYS: Final = {"ninepic": CREDS.api_key, "ninepic-org904": CREDS.other_org_key}
# The target made to fail, and the shard that is stopped.
FAILING: Final = "acct-3-a"
STOPPED: Final = 1
# Longer than a shortened `for` plus a scrape and an evaluation: an alert that was going to
# appear has appeared, at least as pending, by the end of such a window.
OBSERVE_SECONDS: Final = 3.0
WARM_SCRAPES: Final = 12
# How far the two deployments' ratios may differ: each target runs a few dozen checks in the
# window, and the two processes that check it were first and last scraped up to a check
# apart (one check is 3 to 4 points of ratio here, a second one is the slack for a slow run).
RATIO_TOLERANCE: Final = 0.08
# Checks the failing target fails for, at least, so that its error ratio is far from 0.
FAILED_CHECKS: Final = 8
PENDING_OR_FIRING: Final = frozenset({"pending", "firing"})
FIRING: Final = frozenset({"firing"})
EXPECT: Final = {"status": [200], "json": {"status": "ok"}}


def account_targets() -> list[tuple[str, str]]:
    """(target name, provider name) of the status-page accounts' targets."""
    return [
        (f"acct-{account}-{suffix}", f"acct-{account}")
        for account in range(ACCOUNTS)
        for suffix in ("a", "b")[: 2 - account % 2]
    ]


def path_of(target: str) -> str:
    """The status fake's path for a target, which is also its scenario key."""
    return f"/{target}/healthz"


@dataclass
class ShardStack(Stack):
    """The sandbox, three shards and an unsharded pingmon, Alertmanager and Prometheus."""

    addresses: list[str] = field(default_factory=list)  # shard 0..2, then the unsharded one
    owners: dict[str, int] = field(default_factory=dict)  # target -> shard, by the pure function
    pingmons: list[Process] = field(default_factory=list)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.addresses = [f"127.0.0.1:{free_port()}" for _ in range(SHARDS + 1)]
        self.pingmon_address = self.addresses[0]
        self._start_sandbox()
        self._write_pingmon_config()
        config = load_config(self.config_path)
        self.owners = dict(assignment(config, SHARDS).shard_by_target)
        self._start_pingmons()
        self._fail_once(FAILING)
        self._start_alertmanager()
        self._start_prometheus()
        eventually(
            lambda: self.query(f"count(up{{job=~'{SHARDED}|{UNSHARDED}'}} == 1) == 4"),
            "Prometheus scraping the four pingmons",
            self.logs,
        )

    @property
    def config_path(self) -> Path:
        return self.root / "pingmon.yaml"

    @property
    def targets(self) -> set[str]:
        return set(self.owners)

    def shard_address(self, shard: int) -> str:
        return self.addresses[shard]

    def _write_pingmon_config(self) -> None:
        """One file for all four processes; every secret is a file, so the test reads it too."""
        secrets = self.root / "secrets"
        secrets.mkdir()

        def secret(name: str, value: str) -> dict[str, str]:
            (secrets / name).write_text(value)
            return {"file": str(secrets / name)}

        providers: dict[str, Any] = {
            name: {
                "type": "ninepic",
                "base_url": self.sandbox_urls["ninepic"],
                "api_key": secret(name, key),
            }
            for name, key in NINEPIC_KEYS.items()
        }
        for account in range(ACCOUNTS):
            name = f"acct-{account}"
            providers[name] = {
                "type": "http",
                "base_url": self.sandbox_urls["http"],
                "headers": {"Authorization": secret(name, f"Bearer status-token-{account}")},
            }
        targets: list[dict[str, Any]] = [
            {"name": name, "provider": provider, "path": path_of(name), "expect": EXPECT}
            for name, provider in account_targets()
        ]
        targets += [
            {"name": "event-903", "provider": "ninepic", "org_id": CREDS.org_id, "event_id": 903},
            {
                "name": "event-904",
                "provider": "ninepic-org904",
                "org_id": CREDS.other_org_id,
                "event_id": CREDS.other_event_id,
            },
        ]
        document = {
            "defaults": {"interval": INTERVAL, "timeout": TIMEOUT, "jitter": 0},
            "providers": providers,
            "targets": targets,
        }
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))

    def _start_pingmons(self) -> None:
        """All four at once (each takes a second or two to import), then wait for each."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGMON_")}
        command = [sys.executable, "-m", "pingmon", "run", "--config", str(self.config_path)]
        for index, address in enumerate(self.addresses):
            own = {**env, "PINGMON_LISTEN": address}
            if index < SHARDS:
                own |= {
                    "PINGMON_SHARDING__SHARDS": str(SHARDS),
                    "PINGMON_SHARDING__SHARD": str(index),
                }
            name = f"pingmon-{index}" if index < SHARDS else "pingmon-unsharded"
            self.pingmons.append(self._launch(name, command, env=own, cwd=self.root))
        for address in self.addresses:
            ready = partial(http_ok, f"http://{address}/-/ready")
            eventually(ready, f"pingmon at {address} ready", self.logs)

    def _fail_once(self, target: str) -> None:
        """Before the first scrape, let both processes that check the target fail it, then heal
        it: its `server_error` series exists from the first scrape on, as in a deployment that
        has run for a while, so rate() sees every later failure. (A class's first occurrence
        creates its series at 1, which rate() cannot see; the two processes would lose a
        different number of failures to the scrape's phase.)"""
        checkers = [self.shard_address(self.owners[target]), self.addresses[SHARDS]]

        def classes() -> set[str]:
            return {
                entry["error_class"]
                for address in checkers
                for entry in http_json(f"http://{address}/status?target={target}")["targets"]
            }

        self.set_target_scenario(target, "server_error")
        eventually(lambda: classes() == {"server_error"}, f"{target} failing", self.logs)
        self.set_target_scenario(target, "ok")
        eventually(lambda: classes() == {"none"}, f"{target} healed", self.logs)

    def scrape_configs(self) -> list[dict[str, Any]]:
        shards = [
            {"targets": [self.shard_address(shard)], "labels": {"pod": f"pingmon-{shard}"}}
            for shard in range(SHARDS)
        ]
        alone = [{"targets": [self.addresses[SHARDS]], "labels": {"pod": "pingmon-alone"}}]
        # Scraped at the check interval: the two deployments' first (and last) scrapes are at
        # most one check apart, which is what the ratios' comparison can tell apart.
        often = {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL}
        return [
            {"job_name": SHARDED, "static_configs": shards, **often},
            {"job_name": UNSHARDED, "static_configs": alone, **often},
        ]

    def set_target_scenario(self, target: str, name: str) -> None:
        key = urllib.parse.quote(path_of(target), safe="")
        http_json(f"{self.sandbox_urls['http']}/_sandbox/scenarios/{key}", "PUT", {"name": name})

    def status(self, shard: int) -> dict[str, Any]:
        document: dict[str, Any] = http_json(f"http://{self.shard_address(shard)}/status")
        return document

    def values(self, expr: str) -> list[tuple[dict[str, str], float]]:
        return [(s["metric"], float(s["value"][1])) for s in self.query(expr)]

    def alerts_seen(
        self, seconds: float, states: frozenset[str], **labels: str
    ) -> set[tuple[str, str]]:
        """(job, instance) of every alert Prometheus held in one of those states (pending,
        firing) with those labels during the window."""
        seen: set[tuple[str, str]] = set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen |= {
                (a["labels"].get("job", ""), a["labels"].get("instance", ""))
                for a in self.prometheus_alerts()
                if a["state"] in states and labels.items() <= a["labels"].items()
            }
            time.sleep(POLL_SECONDS)
        return seen


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardStack]:
    running = ShardStack(
        root=tmp_path_factory.mktemp("sharding"),
        rules_source=rules_file(),
        prometheus_bin=require_tool("prometheus"),
        alertmanager_bin=require_tool("prometheus-alertmanager"),
        promtool_bin=require_tool("promtool"),
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


def test_the_assignment_gives_every_shard_targets_and_a_credential_one_shard(
    shards: ShardStack,
) -> None:
    per_shard = [{t for t, s in shards.owners.items() if s == shard} for shard in range(SHARDS)]
    assert all(per_shard), per_shard
    assert len(shards.owners) == 2 * ACCOUNTS - ACCOUNTS // 2 + len(NINEPIC_KEYS)
    for account in range(0, ACCOUNTS, 2):
        assert shards.owners[f"acct-{account}-a"] == shards.owners[f"acct-{account}-b"]
    assert FAILING in shards.owners


def test_every_target_is_checked_by_exactly_one_shard(shards: ShardStack) -> None:
    # Every check ran in one process: the counters grow in one instance per target.
    grows = (
        f'count by (target, instance) (increase(pingmon_checks_total{{job="{SHARDED}"}}[3s]) > 0)'
    )
    eventually(
        lambda: {m["target"] for m, _ in shards.values(grows)} == shards.targets,
        "every target checked, and scraped twice since",
        shards.diagnosis,
    )
    growing = shards.values(grows)
    owners = {m["target"]: m["instance"] for m, _ in growing}
    assert len(growing) == len(shards.targets)
    assert owners == {t: shards.shard_address(s) for t, s in shards.owners.items()}
    # No process exports a target it does not check.
    counts = shards.values(f'count by (target) (pingmon_check_success{{job="{SHARDED}"}})')
    assert {m["target"]: n for m, n in counts} == dict.fromkeys(shards.targets, 1.0)
    unsharded = shards.values(f'count by (target) (pingmon_check_success{{job="{UNSHARDED}"}})')
    assert {m["target"]: n for m, n in unsharded} == dict.fromkeys(shards.targets, 1.0)


def test_each_shard_says_which_it_is_and_lists_only_its_own_targets(shards: ShardStack) -> None:
    info = shards.values(f'pingmon_shard_info{{job=~"{SHARDED}|{UNSHARDED}"}}')
    said = {m["instance"]: (m["shard"], m["shards"]) for m, value in info if value == 1}
    expected = {shards.shard_address(s): (str(s), str(SHARDS)) for s in range(SHARDS)}
    assert said == expected | {shards.addresses[SHARDS]: ("0", "1")}
    per_shard = [sum(1 for s in shards.owners.values() if s == i) for i in range(SHARDS)]
    for shard in range(SHARDS):
        status = shards.status(shard)
        listed = {entry["target"] for entry in status["targets"]}
        assert listed == {t for t, s in shards.owners.items() if s == shard}
        assert status["sharding"]["shard"] == shard
        assert status["sharding"]["shards"] == SHARDS
        assert status["sharding"]["targets_per_shard"] == per_shard


@dataclass(frozen=True)
class Outage:
    """What the alerting pipeline held while FAILING failed, before it healed."""

    owner: str  # the address of the shard that checks it
    active: list[dict[str, Any]]  # Alertmanager's PingmonTargetFailing alerts of job SHARDED
    seen: set[tuple[str, str]]  # (job, instance) of Prometheus's, pending or firing


@pytest.fixture(scope="module")
def outage(shards: ShardStack) -> Outage:
    """FAILING answers 500 until its alert fired and it failed FAILED_CHECKS times; healed."""
    # A history of healthy checks before anything fails, so that one check more or less in a
    # deployment's window moves its error ratios little.
    scraped = f"count_over_time(up{{job=~'{SHARDED}|{UNSHARDED}'}}[1m]) >= {WARM_SCRAPES}"
    eventually(
        lambda: len(shards.query(scraped)) == SHARDS + 1,
        f"Prometheus scraping the four pingmons {WARM_SCRAPES} times",
        shards.logs,
    )
    owner = shards.shard_address(shards.owners[FAILING])
    shards.set_target_scenario(FAILING, "server_error")
    try:
        shards.wait_alert("PingmonTargetFailing", target=FAILING, job=SHARDED)
        seen = shards.alerts_seen(
            OBSERVE_SECONDS, PENDING_OR_FIRING, alertname="PingmonTargetFailing", target=FAILING
        )
        active = shards.active_alerts(alertname="PingmonTargetFailing", job=SHARDED)
        failed = f'pingmon_check_consecutive_failures{{target="{FAILING}"}} >= {FAILED_CHECKS}'
        checkers = {owner, shards.addresses[SHARDS]}
        eventually(
            lambda: checkers <= {m["instance"] for m, _ in shards.values(failed)},
            f"{FAILED_CHECKS} failed checks of {FAILING} in its shard and the unsharded process",
            shards.diagnosis,
        )
    finally:
        shards.set_target_scenario(FAILING, "ok")
    return Outage(owner, active, seen)


def test_a_failing_target_raises_one_alert_not_one_per_shard(
    shards: ShardStack, outage: Outage
) -> None:
    labels = [a["labels"] for a in outage.active]
    assert [(a["target"], a["instance"], a["error_class"]) for a in labels] == [
        (FAILING, outage.owner, "server_error")
    ]
    # Prometheus held it for the owner only (and the unsharded deployment's own copy).
    assert outage.seen == {(SHARDED, outage.owner), (UNSHARDED, shards.addresses[SHARDS])}


def test_recorded_error_ratios_equal_those_of_one_unsharded_process(
    shards: ShardStack, outage: Outage, pytestconfig: pytest.Config
) -> None:
    recorded = recording_rules(rules_file())
    assert len(recorded) >= 7
    # Both deployments' error counts are final: healed, and the last 2 s of scrapes (and so
    # the last evaluation) saw no new failure.
    final = (
        f'changes(pingmon_checks_total{{target="{FAILING}",error_class="server_error"}}[2s]) == 0'
        f' and on (job, instance) pingmon_check_success{{target="{FAILING}"}} == 1'
    )
    eventually(lambda: len(shards.query(final)) == 2, "the failure over", shards.diagnosis)
    for record in recorded:
        ratios: dict[str, dict[str, float]] = {SHARDED: {}, UNSHARDED: {}}
        for labels, value in shards.values(f"{record}{{job=~'{SHARDED}|{UNSHARDED}'}}"):
            assert not {"instance", "pod"} & set(labels), labels
            assert labels["target"] not in ratios[labels["job"]], f"{record}: split {labels}"
            ratios[labels["job"]][labels["target"]] = value
        sharded, unsharded = ratios[SHARDED], ratios[UNSHARDED]
        assert set(sharded) == set(unsharded) == shards.targets, record
        apart = {
            target: (sharded[target], unsharded[target])
            for target in shards.targets
            if not math.isclose(sharded[target], unsharded[target], abs_tol=RATIO_TOLERANCE)
        }
        assert apart == {}, record
        if record.endswith("_rate5m"):
            pytestconfig.stash.setdefault(NOTES, []).append(
                f"sharding: {record} of {FAILING} {sharded[FAILING]:.3f} over 3 shards, "
                f"{unsharded[FAILING]:.3f} unsharded"
            )
        assert min(sharded[FAILING], unsharded[FAILING]) > 0.1, record
        assert {t: v for t, v in sharded.items() if t != FAILING} == dict.fromkeys(
            shards.targets - {FAILING}, 0.0
        )


def test_a_stopped_shard_raises_pingmon_down_for_that_shard_only(shards: ShardStack) -> None:
    stopped = shards.shard_address(STOPPED)
    assert shards.pingmons[STOPPED].stop() == 0
    alert = shards.wait_alert("PingmonDown", job=SHARDED)
    # Firing only: on a loaded machine one slow scrape of another process is a pending alert.
    seen = shards.alerts_seen(OBSERVE_SECONDS, FIRING, alertname="PingmonDown")
    active = shards.active_alerts(alertname="PingmonDown")

    assert alert["labels"]["instance"] == stopped
    assert alert["labels"]["pod"] == f"pingmon-{STOPPED}"
    assert [(a["labels"]["job"], a["labels"]["instance"]) for a in active] == [(SHARDED, stopped)]
    assert seen == {(SHARDED, stopped)}
    running = shards.values(f'up{{job="{SHARDED}"}} == 1')
    assert sorted(m["instance"] for m, _ in running) == sorted(
        shards.shard_address(s) for s in range(SHARDS) if s != STOPPED
    )


def recording_rules(path: Path) -> list[str]:
    """The names of the rule file's error-ratio recording rules."""
    document = yaml.safe_load(path.read_text())
    return [
        rule["record"]
        for group in document["groups"]
        for rule in group["rules"]
        if rule.get("record", "").startswith("pingmon:check_errors:ratio_")
    ]
