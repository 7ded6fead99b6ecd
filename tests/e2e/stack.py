"""The end-to-end stack: sandbox, pingmon, Alertmanager and Prometheus as processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from pingmon.sandbox import SANDBOX_CREDENTIALS
from tests.e2e.promapi import PromApi
from tests.e2e.rules import alert_rules, shorten_for_durations
from tests.processes import Process, eventually, free_port, http_json, http_ok

CREDS: Final = SANDBOX_CREDENTIALS.ninepic
STRIPE: Final = SANDBOX_CREDENTIALS.stripe

SCRAPE_INTERVAL: Final = "1s"
JOB: Final = "pingmon"

# Environment variables pingmon reads its 9pic keys from.
SECRET_ENV: Final = {
    "E2E_NINEPIC_KEY": CREDS.api_key,
    "E2E_NINEPIC_ORG904_KEY": CREDS.other_org_key,
    "E2E_STRIPE_KEY": STRIPE.test_key,
    "E2E_STRIPE_WEBHOOK_SECRET": STRIPE.webhook_secret,
}

# Alertmanager routes everything to a receiver that sends nowhere.
NULL_ALERTMANAGER_CONFIG: Final = {
    "route": {
        "receiver": "null",
        "group_by": ["alertname"],
        "group_wait": "0s",
        "group_interval": "1s",
        "repeat_interval": "1h",
    },
    "receivers": [{"name": "null"}],
}


@dataclass(frozen=True)
class Case:
    """One 9pic target of its own per scenario, keyed in the sandbox by its event id."""

    target: str
    provider: str
    event_id: int

    @property
    def key(self) -> str:
        return str(self.event_id)


STEADY: Final = Case("steady", "ninepic", 4560)
PROVIDER_DOWN: Final = Case("provider-down", "ninepic", 5001)
KEY_REVOKED: Final = Case("key-revoked", "ninepic", 5002)
# Its own key (another 9pic organisation), so its back-off holds back no other target.
STORM: Final = Case("storm", "ninepic-org904", CREDS.other_event_id)
CASES: Final = (STEADY, PROVIDER_DOWN, KEY_REVOKED, STORM)


@dataclass(frozen=True)
class WebhookCase:
    """A Stripe target whose ping's webhook the sandbox delivers back to pingmon."""

    target: str
    provider: str
    destination: str

    @property
    def key(self) -> str:
        return self.destination


# Checked every second, its webhook due within 800 ms: slower than the 9pic cases, so that a
# slow machine never misses a webhook the sandbox delivers at once.
WEBHOOK: Final = WebhookCase("hooks", "stripe", "ed_test_e2e_hooks")


# ---------------------------------------------------------------------------------------------
# The stack.


@dataclass
class Stack:
    """The four processes, their URLs, and the calls the tests make against them."""

    root: Path
    rules_source: Path
    prometheus_bin: str
    alertmanager_bin: str
    promtool_bin: str
    alertmanager_config: dict[str, Any] = field(default_factory=lambda: NULL_ALERTMANAGER_CONFIG)
    processes: list[Process] = field(default_factory=list)
    sandbox_urls: dict[str, str] = field(default_factory=dict)
    pingmon_address: str = ""
    prom_url: str = ""
    am_url: str = ""
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Sandbox, then pingmon, Alertmanager, Prometheus; ready once pingmon is scraped."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.pingmon_address = f"127.0.0.1:{free_port()}"
        self._start_sandbox()
        self._write_pingmon_config()
        self.start_pingmon()
        self._start_alertmanager()
        self._start_prometheus()
        self.wait_scraped()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(process.tail() for process in self.processes)

    def _launch(self, name: str, command: list[str], **options: Any) -> Process:
        process = Process(name, command, self.root / f"{name}.log", **options)
        self.processes.append(process)
        process.start()
        return process

    def _start_sandbox(self) -> None:
        announced = self.root / "sandbox.out"
        receiver = f"http://{self.pingmon_address}/webhooks/{WEBHOOK.target}"
        command = [sys.executable, "-m", "pingmon.sandbox"]
        command += ["--stripe-webhook", f"{WEBHOOK.destination}={receiver}"]
        self._launch("sandbox", command, stdout=announced)

        def urls() -> dict[str, str] | None:
            line = announced.read_text()
            return json.loads(line) if line.endswith("\n") else None

        self.sandbox_urls = eventually(urls, "the sandbox announcing its URLs", self.logs)

    def _write_pingmon_config(self) -> None:
        ninepic = self.sandbox_urls["ninepic"]
        document = {
            "listen": self.pingmon_address,
            "defaults": {"interval": "200ms", "timeout": "150ms", "jitter": 0},
            # A long cap, so a Retry-After makes the back-off as long as the storm asks.
            "backoff": {"initial": "200ms", "multiplier": 2, "max": "15m"},
            "providers": {
                "ninepic": {
                    "type": "ninepic",
                    "base_url": ninepic,
                    "api_key": {"env": "E2E_NINEPIC_KEY"},
                },
                "ninepic-org904": {
                    "type": "ninepic",
                    "base_url": ninepic,
                    "api_key": {"env": "E2E_NINEPIC_ORG904_KEY"},
                },
                WEBHOOK.provider: {
                    "type": "stripe",
                    "base_url": self.sandbox_urls["stripe"],
                    "api_key": {"env": "E2E_STRIPE_KEY"},
                },
            },
            "targets": [
                *(
                    {
                        "name": case.target,
                        "provider": case.provider,
                        "org_id": CREDS.other_org_id if case is STORM else CREDS.org_id,
                        "event_id": case.event_id,
                    }
                    for case in CASES
                ),
                {
                    "name": WEBHOOK.target,
                    "provider": WEBHOOK.provider,
                    "destination_id": WEBHOOK.destination,
                    "interval": "1s",
                    "timeout": "800ms",
                    "webhook": {
                        "timeout": "800ms",
                        "signing_secret": {"env": "E2E_STRIPE_WEBHOOK_SECRET"},
                    },
                },
            ],
        }
        (self.root / "pingmon.yaml").write_text(yaml.safe_dump(document, sort_keys=False))

    @property
    def pingmon(self) -> Process | None:
        return next((p for p in reversed(self.processes) if p.name == "pingmon"), None)

    def start_pingmon(self) -> None:
        """Start ``pingmon run`` (again, after a stop) and wait for its /-/ready."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGMON_")}
        env.update(SECRET_ENV)
        config = str(self.root / "pingmon.yaml")
        command = [sys.executable, "-m", "pingmon", "run", "--config", config]
        old = self.pingmon
        if old is not None:
            old.stop()
            self.processes.remove(old)
        self._launch("pingmon", command, env=env, cwd=self.root)
        url = f"http://{self.pingmon_address}/-/ready"
        eventually(lambda: http_ok(url), "pingmon /-/ready", self.logs)

    def stop_pingmon(self) -> int | None:
        process = self.pingmon
        assert process is not None
        return process.stop()

    def ensure_pingmon_scraped(self) -> None:
        """Restart pingmon if a test stopped it, and wait until Prometheus scrapes it again."""
        process = self.pingmon
        if process is None or not process.running:
            self.start_pingmon()
        eventually(
            lambda: self.query(f'up{{job="{JOB}"}} == 1'),
            "Prometheus scraping pingmon again",
            self.logs,
        )

    def _start_alertmanager(self) -> None:
        port = free_port()
        config = self.root / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.alertmanager_config, sort_keys=False))
        (self.root / "am").mkdir()
        self._launch(
            "alertmanager",
            [
                self.alertmanager_bin,
                f"--config.file={config}",
                f"--storage.path={self.root / 'am'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
        )
        self.am_url = f"http://127.0.0.1:{port}"
        eventually(lambda: http_ok(self.am_url + "/-/ready"), "Alertmanager /-/ready", self.logs)

    def _start_prometheus(self) -> None:
        source = yaml.safe_load(self.rules_source.read_text())
        shortened = shorten_for_durations(source)
        self.rules = alert_rules(shortened)
        rules = self.root / "pingmon.rules.yml"
        rules.write_text(yaml.safe_dump(shortened, sort_keys=False))
        config = self.root / "prometheus.yml"
        document = {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "rule_files": [str(rules)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [self.am_url[7:]]}]}]},
            "scrape_configs": self.scrape_configs(),
        }
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        checked = subprocess.run(
            [self.promtool_bin, "check", "config", str(config)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        port = free_port()
        (self.root / "tsdb").mkdir()
        self._launch(
            "prometheus",
            [
                self.prometheus_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
        )
        self.prom_url = f"http://127.0.0.1:{port}"
        eventually(lambda: http_ok(self.prom_url + "/-/ready"), "Prometheus /-/ready", self.logs)

    def scrape_configs(self) -> list[dict[str, Any]]:
        """Prometheus's ``scrape_configs``: the one pingmon, in job JOB."""
        return [{"job_name": JOB, "static_configs": [{"targets": [self.pingmon_address]}]}]

    def wait_scraped(self) -> None:
        """Prometheus's first scrape comes about 5.5 s after its start (TOOLING.md)."""

        def up() -> bool:
            targets = http_json(self.prom_url + "/api/v1/targets")["data"]["activeTargets"]
            return any(t["health"] == "up" for t in targets)

        eventually(up, "pingmon's scrape target up in Prometheus", self.logs)

    # -- the sandbox ------------------------------------------------------------------------

    def set_scenario(self, case: Case, name: str, retry_after: str | None = None) -> None:
        url = f"{self.sandbox_urls['ninepic']}/_sandbox/scenarios/{case.key}"
        http_json(url, "PUT", {"name": name, "retry_after": retry_after})

    def heal(self, case: Case) -> None:
        self.set_scenario(case, "ok")

    def set_webhook_scenario(self, case: WebhookCase, name: str) -> None:
        url = f"{self.sandbox_urls['stripe']}/_sandbox/webhook-scenarios/{case.key}"
        http_json(url, "PUT", {"name": name})

    # -- Alertmanager and Prometheus --------------------------------------------------------

    def active_alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Alertmanager's active, unsilenced, uninhibited alerts matching every label given."""
        query = [("active", "true"), ("silenced", "false"), ("inhibited", "false")]
        query += [("filter", f'{name}="{value}"') for name, value in labels.items()]
        alerts: list[dict[str, Any]] = http_json(
            f"{self.am_url}/api/v2/alerts?{urllib.parse.urlencode(query)}"
        )
        return alerts

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        """Prometheus's own pending and firing alerts."""
        answer = http_json(self.prom_url + "/api/v1/alerts")
        alerts: list[dict[str, Any]] = answer["data"]["alerts"]
        return alerts

    def wait_alert(self, alertname: str, **labels: str) -> dict[str, Any]:
        """The first active alert of that name and labels in Alertmanager, polled for."""
        found = eventually(
            lambda: self.active_alerts(alertname=alertname, **labels),
            f"{alertname} {labels} active in Alertmanager",
            lambda: self.diagnosis(),
        )
        return found[0]

    def wait_no_alert(self, alertname: str, **labels: str) -> None:
        eventually(
            lambda: not self.active_alerts(alertname=alertname, **labels),
            f"{alertname} {labels} gone from Alertmanager's active alerts",
            lambda: self.diagnosis(),
        )

    def diagnosis(self) -> str:
        """What the alerting pipeline sees right now, for a failure message."""
        try:
            firing = [(a["labels"], a["state"]) for a in self.prometheus_alerts()]
            active = [a["labels"] for a in self.active_alerts()]
        except (OSError, ValueError) as exc:
            return f"(could not ask: {exc})\n{self.logs()}"
        return f"Prometheus alerts: {firing}\nAlertmanager active: {active}\n{self.logs()}"

    @property
    def prometheus(self) -> PromApi:
        return PromApi(self.prom_url)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result; QueryError when Prometheus refuses it."""
        return self.prometheus.query(expr)

    def query_range(self, expr: str, seconds: float, step: str) -> list[dict[str, Any]]:
        return self.prometheus.query_range(expr, seconds, step)

    def label_values(self, label: str, matches: Iterable[str] = ()) -> list[str]:
        return self.prometheus.label_values(label, matches)
