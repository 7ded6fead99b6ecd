"""Every PromQL expression of the Grafana dashboard runs against the e2e Prometheus.

Variables are substituted as Grafana does with "All" selected (see tests/e2e/dashboard.py).
"""

from __future__ import annotations

import json
import re
from typing import Final

import pytest

from tests.e2e.dashboard import (
    Variables,
    is_ranged,
    load_dashboard,
    panels,
    queries,
    resolve_variables,
    run,
    substitute,
)
from tests.e2e.promapi import QueryError
from tests.e2e.stack import CASES, JOB, WEBHOOK, Stack
from tests.processes import eventually

# The panels a person opens the dashboard for: they must show data, not only parse.
CORE_PANELS: Final = frozenset(
    {
        "Check success",
        "Success ratio by provider",
        "Last check duration",
        "Check latency quantiles",
        "Checks by error class",
        "Webhook delivered",
        "Webhook round trip (last delivery)",
    }
)


@pytest.fixture(scope="module")
def resolved(stack: Stack) -> Variables:
    """Substitutions, once pingmon has been scraped several times (again, if a test stopped it)."""
    stack.ensure_pingmon_scraped()
    eventually(
        lambda: stack.query(f'sum_over_time(up{{job="{JOB}"}}[5s]) >= 4'),
        "four scrapes of pingmon within 5 s",
        stack.logs,
    )
    return resolve_variables(stack, load_dashboard())


@pytest.fixture(scope="module")
def variables(resolved: Variables) -> dict[str, str]:
    return resolved.values


def test_template_variables_list_the_running_providers_and_targets(resolved: Variables) -> None:
    assert resolved.options["job"] == [JOB]
    assert resolved.values["job"] == f"({JOB})"
    assert set(resolved.options["provider"]) == {case.provider for case in CASES} | {
        WEBHOOK.provider
    }
    assert set(resolved.options["target"]) == {case.target for case in CASES} | {WEBHOOK.target}


def test_substitution_leaves_no_variable_behind(variables: dict[str, str]) -> None:
    left = [
        (title, substitute(target["expr"], variables))
        for title, target in queries(load_dashboard())
        if re.search(r"\$|\[\[", substitute(target["expr"], variables))
    ]
    assert left == []


def test_every_dashboard_query_succeeds_in_prometheus(
    stack: Stack, variables: dict[str, str]
) -> None:
    failures: list[str] = []
    checked = 0
    for title, target in queries(load_dashboard()):
        for ranged in {False, is_ranged(target)}:
            try:
                run(stack, substitute(target["expr"], variables), ranged)
                checked += 1
            except (QueryError, KeyError) as exc:
                failures.append(f"{title} [{target['refId']}]: {exc}")
    assert failures == []
    assert checked >= len(queries(load_dashboard()))


def test_core_panels_show_data(stack: Stack, variables: dict[str, str]) -> None:
    found = {title for title, _ in queries(load_dashboard())}
    assert found >= CORE_PANELS, f"core panels missing: {sorted(CORE_PANELS - found)}"
    empty = [
        f"{title} [{target['refId']}]"
        for title, target in queries(load_dashboard())
        if title in CORE_PANELS
        and not run(stack, substitute(target["expr"], variables), is_ranged(target))
    ]
    assert empty == []


def test_a_broken_expression_is_reported(stack: Stack, variables: dict[str, str]) -> None:
    broken = substitute("sum(rate(pingmon_checks_total[$__rate_interval])", variables)
    with pytest.raises(QueryError, match="parse error"):
        run(stack, broken, ranged=False)
    with pytest.raises(QueryError, match="parse error"):
        run(stack, broken, ranged=True)
    with pytest.raises(KeyError, match="nosuchvar"):
        substitute('pingmon_check_success{target=~"$nosuchvar"}', variables)


def test_dashboard_takes_its_datasource_from_the_template_variable() -> None:
    dashboard = load_dashboard()
    variable = dashboard["templating"]["list"][0]
    assert (variable["type"], variable["name"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    sources = {
        json.dumps(item["datasource"], sort_keys=True)
        for panel in panels(dashboard)
        if panel["type"] != "row"
        for item in (panel, *panel.get("targets", []))
    }
    assert sources == {json.dumps({"type": "prometheus", "uid": "${datasource}"}, sort_keys=True)}
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
