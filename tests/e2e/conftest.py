"""The end-to-end stack, started once for tests/e2e, and the failure-to-alert figures measured."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.e2e.report import DELAYS, NOTES, RESOLVED, hand_over
from tests.e2e.stack import Stack
from tests.tools import REPO, require_tool

RULES: Final = REPO / "config" / "alerts" / "pingmon.rules.yml"
ALERTMANAGER_EXAMPLE: Final = REPO / "config" / "alertmanager.example.yaml"


def rules_file() -> Path:
    """The shipped rule file, or the one ``PINGMON_E2E_RULES`` names (e.g. the chart's)."""
    chosen = Path(os.environ.get("PINGMON_E2E_RULES") or RULES)
    if not chosen.is_file():
        pytest.fail(f"no alert rule file at {chosen}", pytrace=False)
    return chosen


def alertmanager_config() -> tuple[dict[str, Any], str]:
    """The example Alertmanager config, its routes and inhibitions as shipped, with each
    receiver reduced to its name: nothing is sent anywhere, yet Alertmanager's API still
    names the receiver every alert is routed to."""
    document: dict[str, Any] = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())
    document["receivers"] = [{"name": r["name"]} for r in document.get("receivers", [])]
    return document, f"Alertmanager: {ALERTMANAGER_EXAMPLE.name}, receivers reduced to names"


@pytest.fixture(scope="package")  # stopped after tests/e2e, not left running to the end
def stack(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Stack]:
    """Sandbox, pingmon, Alertmanager and Prometheus, scraping pingmon, for tests/e2e."""
    config, note = alertmanager_config()
    pytestconfig.stash.setdefault(NOTES, []).append(note)
    running = Stack(
        root=tmp_path_factory.mktemp("e2e"),
        rules_source=rules_file(),
        prometheus_bin=require_tool("prometheus"),
        alertmanager_bin=require_tool("prometheus-alertmanager"),
        promtool_bin=require_tool("promtool"),
        alertmanager_config=config,
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def alert_delays(pytestconfig: pytest.Config) -> list[tuple[str, float]]:
    """Append (alertname, seconds from the failure to the alert active in Alertmanager)."""
    return pytestconfig.stash.setdefault(DELAYS, [])


@pytest.fixture(scope="session")
def resolve_delays(pytestconfig: pytest.Config) -> list[tuple[str, float]]:
    """Append (alertname, seconds from the healing to the alert gone from Alertmanager)."""
    return pytestconfig.stash.setdefault(RESOLVED, [])


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In an xdist worker, hand the figures to the controller, which prints them (the top
    conftest's ``pytest_terminal_summary``)."""
    hand_over(session.config)
