"""Every PromQL expression of the Grafana dashboard runs against the e2e Prometheus.

Grafana's variables are replaced as Grafana would for "All": query variables by the values the
labels API gives for their ``label_values(...)``, the built-in intervals by fixed durations that
suit the 1 s scrape interval of the e2e Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

import pytest

from tests.e2e.stack import CASES, JOB, WEBHOOK, QueryError, Stack
from tests.processes import eventually
from tests.tools import REPO

DASHBOARD: Final = REPO / "config" / "grafana" / "pingmon.json"

# What Grafana would put for the built-ins, scaled to a 1 s scrape interval: $__rate_interval is
# at least four scrape intervals.
BUILTINS: Final = {
    "__rate_interval": "4s",
    "__interval": "2s",
    "__interval_ms": "2000",
    "__range": "60s",
    "__range_s": "60",
    "__range_ms": "60000",
}
RANGE_SECONDS: Final = 60.0
RANGE_STEP: Final = "2s"
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

_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
_LABEL_VALUES: Final = re.compile(
    r"\s*label_values\(\s*(?:(?P<match>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*"
)
_REGEX_SPECIAL: Final = re.compile(r"([\\.^$*+?()\[\]{}|])")


def load_dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def panels(container: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside (collapsed) rows included."""
    for panel in container.get("panels", []):
        yield panel
        yield from panels(panel)


def queries(dashboard: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every panel target that has an expression."""
    return [
        (panel["title"], target)
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name``, ``${name}``, ``${name:format}`` and ``[[name]]`` as Grafana would."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"unknown Grafana variable {name!r} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)


def regex_alternation(found: list[str]) -> str:
    """A multi-value variable in a ``=~`` matcher: ``(a|b)``, regex characters escaped."""
    return "(" + "|".join(_REGEX_SPECIAL.sub(r"\\\\\1", v) for v in found) + ")"


def variable_query(variable: Mapping[str, Any]) -> str:
    query = variable["query"]
    return str(query["query"] if isinstance(query, dict) else query)


def resolve_variables(stack: Stack, dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Each template variable's substitution, from Prometheus's labels API, in their order."""
    values = dict(BUILTINS)
    for variable in dashboard["templating"]["list"]:
        name = variable["name"]
        if variable["type"] == "datasource":
            assert variable["query"] == "prometheus"
            values[name] = "prometheus"
            continue
        assert variable["type"] == "query", f"${name}: unsupported type {variable['type']}"
        query = substitute(variable_query(variable), values)
        parsed = _LABEL_VALUES.fullmatch(query)
        assert parsed is not None, f"${name}: only label_values(...) is translated: {query}"
        matches = [parsed["match"]] if parsed["match"] else []
        found = stack.label_values(parsed["label"], matches)
        assert found, f"${name}: {query} found no value"
        many = variable.get("multi") or variable.get("includeAll")
        values[name] = regex_alternation(found) if many else found[0]
    return values


def run(stack: Stack, expr: str, ranged: bool) -> list[dict[str, Any]]:
    """The query's result; QueryError when Prometheus refuses or fails it."""
    if ranged:
        return stack.query_range(expr, RANGE_SECONDS, RANGE_STEP)
    return stack.query(expr)


def is_ranged(target: Mapping[str, Any]) -> bool:
    return bool(target.get("range", not target.get("instant", False)))


@pytest.fixture(scope="module")
def variables(stack: Stack) -> dict[str, str]:
    """Substitutions, once pingmon has been scraped several times (again, if a test stopped it)."""
    stack.ensure_pingmon_scraped()
    eventually(
        lambda: stack.query(f'sum_over_time(up{{job="{JOB}"}}[5s]) >= 4'),
        "four scrapes of pingmon within 5 s",
        stack.logs,
    )
    return resolve_variables(stack, load_dashboard())


def test_template_variables_list_the_running_providers_and_targets(
    variables: dict[str, str],
) -> None:
    providers = set(variables["provider"].strip("()").split("|"))
    targets = set(variables["target"].strip("()").split("|"))
    assert variables["job"] == f"({JOB})"
    assert providers == {case.provider for case in CASES} | {WEBHOOK.provider}
    assert targets == {case.target for case in CASES} | {WEBHOOK.target}


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
