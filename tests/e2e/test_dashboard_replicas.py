"""The dashboard counts pingmon, not Prometheus's other jobs, and each target once per replica set.

A real Prometheus scrapes two pingmon replicas with the same configuration (as two sidecar pods
would: each its own `instance` and `pod`), itself, and an unrelated exporter on loopback, in a job
of its own and, as annotation-based Kubernetes scraping does, in pingmon's job too. Two of the
four targets fail on both replicas. Grafana's "All" is substituted as Grafana does.
"""

from __future__ import annotations

import http.server
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.e2e.conftest import RULES
from tests.e2e.dashboard import (
    Variables,
    is_ranged,
    legend,
    load_dashboard,
    panel_expr,
    queries,
    resolve_variables,
    run,
    scalar,
    substitute,
)
from tests.e2e.promapi import PromApi
from tests.processes import Process, eventually, free_port, http_ok
from tests.tools import require_tool

JOB: Final = "pingmon"
PODS: Final = ("shop-7d9f-a", "shop-7d9f-b")
# target -> path on the loopback endpoint; the endpoint answers 200 on /ok only.
TARGETS: Final = {"ok-1": "/ok", "ok-2": "/ok", "broken-1": "/503", "broken-2": "/500"}
FAILING: Final = frozenset({"broken-1", "broken-2"})
# The unrelated exporter's series carry `target` and `provider` labels on purpose.
UNRELATED_METRICS: Final = (
    b'# TYPE widgets gauge\nwidgets{provider="acme", target="ok-1"} 1\nwidgets{target="x"} 0\n'
)


class Endpoint(http.server.BaseHTTPRequestHandler):
    """The providers pingmon checks (/ok, /503, /500) and an unrelated exporter (/metrics)."""

    def do_GET(self) -> None:
        body = b""
        if self.path == "/metrics":
            status, body = 200, UNRELATED_METRICS
        elif self.path in ("/ok", "/503", "/500"):
            status = 200 if self.path == "/ok" else int(self.path[1:])
        else:
            status = 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class ReplicaStack:
    """The loopback endpoint, two pingmon replicas and Prometheus."""

    root: Path
    endpoint: str = ""
    replicas: list[str] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)
    prometheus: PromApi = field(default_factory=lambda: PromApi(""))

    def logs(self) -> str:
        return "\n".join(process.tail() for process in self.processes)

    def launch(self, name: str, command: list[str], **options: Any) -> None:
        process = Process(name, command, self.root / f"{name}.log", **options)
        self.processes.append(process)
        process.start()

    def start_pingmon_replicas(self) -> None:
        """Two `pingmon run` on one configuration file; only PINGMON_LISTEN differs."""
        config = self.root / "pingmon.yaml"
        document = {
            "defaults": {"interval": "300ms", "timeout": "250ms", "jitter": 0},
            "providers": {
                "local": {"type": "http", "base_url": self.endpoint, "proxy_url": "none"}
            },
            "targets": [{"name": name, "provider": "local", "path": path}
                        for name, path in TARGETS.items()],
        }  # fmt: skip
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        env = {key: value for key, value in os.environ.items() if not key.startswith("PINGMON_")}
        for index in range(2):
            address = f"127.0.0.1:{free_port()}"
            self.replicas.append(address)
            command = [sys.executable, "-m", "pingmon", "run", "--config", str(config)]
            self.launch(f"pingmon-{index}", command, env={**env, "PINGMON_LISTEN": address})
            url = f"http://{address}/-/ready"
            eventually(partial(http_ok, url), f"pingmon replica {index} ready", self.logs)

    def start_prometheus(self) -> None:
        port = free_port()
        pingmons = [
            {"targets": [address], "labels": {"pod": pod}}
            for address, pod in zip(self.replicas, PODS, strict=True)
        ]
        # A job shared with other pods, as annotation-based Kubernetes scraping makes one.
        pingmons.append({"targets": [self.endpoint[7:]], "labels": {"pod": "widgets-0"}})
        document = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": JOB, "static_configs": pingmons},
                {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
                {"job_name": "widgets", "static_configs": [{"targets": [self.endpoint[7:]]}]},
            ],
        }  # fmt: skip
        config = self.root / "prometheus.yml"
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        (self.root / "tsdb").mkdir()
        self.launch(
            "prometheus",
            [
                require_tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
        )
        self.prometheus = PromApi(f"http://127.0.0.1:{port}")
        eventually(lambda: http_ok(f"{self.prometheus.url}/-/ready"), "Prometheus", self.logs)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaStack]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stack = ReplicaStack(tmp_path_factory.mktemp("replicas"))
    stack.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        stack.start_pingmon_replicas()
        stack.start_prometheus()
        api = stack.prometheus
        eventually(
            lambda: api.query("count(up == 1) == 5"), "all five scrape targets up", stack.logs
        )
        # Both replicas have reported every target, failing ones included, a few times over.
        eventually(
            lambda: api.query(
                f'count(pingmon_check_success{{job="{JOB}"}} == 0) == 4'
                " and count(count_over_time(pingmon_build_info[5s]) >= 4) == 2"
            ),
            "both replicas scraped four times with two failing targets each",
            stack.logs,
        )
        yield stack
    finally:
        for process in reversed(stack.processes):
            process.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def resolved(replicas: ReplicaStack) -> Variables:
    return resolve_variables(replicas.prometheus, load_dashboard())


def stat(replicas: ReplicaStack, resolved: Variables, title: str) -> float:
    expr = substitute(panel_expr(load_dashboard(), title), resolved.values)
    return scalar(replicas.prometheus.query(expr))


def test_the_stack_has_other_jobs_and_each_target_twice(replicas: ReplicaStack) -> None:
    """What the dashboard must see past: five scrape targets, every target from two pods."""
    api = replicas.prometheus
    assert scalar(api.query("count(up == 1)")) == 5
    assert scalar(api.query(f'count(up{{job="{JOB}"}} == 1)')) == 3
    assert scalar(api.query('count(pingmon_check_success{target="ok-1"})')) == 2
    assert scalar(api.query("count(pingmon_check_success == 0)")) == 4


def test_the_job_variable_offers_only_jobs_that_export_pingmons_metrics(
    resolved: Variables,
) -> None:
    assert resolved.options["job"] == [JOB]
    assert resolved.values["job"] == f"({JOB})"
    assert set(resolved.options["target"]) == set(TARGETS)
    assert resolved.options["provider"] == ["local"]


def test_instances_up_counts_the_two_pingmon_replicas_only(
    replicas: ReplicaStack, resolved: Variables
) -> None:
    assert stat(replicas, resolved, "pingmon instances up") == 2


def test_targets_failing_counts_each_failing_target_once(
    replicas: ReplicaStack, resolved: Variables
) -> None:
    assert stat(replicas, resolved, "Targets failing") == len(FAILING)
    assert stat(replicas, resolved, "Targets succeeding") == len(TARGETS) - len(FAILING)
    assert stat(replicas, resolved, "Targets backing off") == 0


def test_scrape_up_draws_each_pingmon_replica_and_nothing_else(
    replicas: ReplicaStack, resolved: Variables
) -> None:
    expr = substitute(panel_expr(load_dashboard(), "Scrape up"), resolved.values)
    for ranged in (False, True):
        series = run(replicas.prometheus, expr, ranged)
        assert sorted(s["metric"]["instance"] for s in series) == sorted(replicas.replicas)


def test_per_target_panels_draw_one_series_per_target_not_per_replica(
    replicas: ReplicaStack, resolved: Variables
) -> None:
    """Every query filtered by $target: no series keeps `instance` or `pod`, no legend repeats."""
    split: list[str] = []
    checked = 0
    for title, target in queries(load_dashboard()):
        if "$target" not in target["expr"]:
            continue
        expr = substitute(target["expr"], resolved.values)
        for ranged in {False, is_ranged(target)}:
            series = run(replicas.prometheus, expr, ranged)
            checked += 1
            legends = [legend(target, s["metric"]) for s in series]
            if any({"instance", "pod"} & set(s["metric"]) for s in series) or len(
                set(legends)
            ) != len(legends):
                split.append(f"{title} [{target['refId']}]: {sorted(legends)}")
    assert checked >= 20
    assert split == []


def test_check_success_draws_the_failing_targets_as_zero(
    replicas: ReplicaStack, resolved: Variables
) -> None:
    expr = substitute(panel_expr(load_dashboard(), "Check success"), resolved.values)
    values = {s["metric"]["target"]: float(s["value"][1]) for s in replicas.prometheus.query(expr)}
    assert values == {name: 0.0 if name in FAILING else 1.0 for name in TARGETS}
