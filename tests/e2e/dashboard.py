"""Read the Grafana dashboard and run its PromQL as Grafana would, against a real Prometheus.

Grafana's variables are replaced as Grafana does while "All" is selected (the dashboard's
default): a variable with a custom "All" value (``allValue``) by that value, any other
multi-value variable by the alternation of the values its ``label_values(...)`` finds; the
built-in intervals by fixed durations that suit a 1 s scrape interval.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

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

_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
_LABEL_VALUES: Final = re.compile(
    r"\s*label_values\(\s*(?:(?P<match>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*"
)
_REGEX_SPECIAL: Final = re.compile(r"([\\.^$*+?()\[\]{}|])")
_LEGEND_LABEL: Final = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class PrometheusApi(Protocol):
    """The calls the dashboard needs: instant and range queries, and the labels API."""

    def query(self, expr: str) -> list[dict[str, Any]]: ...

    def query_range(self, expr: str, seconds: float, step: str) -> list[dict[str, Any]]: ...

    def label_values(self, label: str, matches: Iterable[str] = ()) -> list[str]: ...


@dataclass(frozen=True)
class Variables:
    """Each variable's substitution (``values``), and the options Grafana would list for it."""

    values: dict[str, str]
    options: dict[str, list[str]]


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


def panel_expr(dashboard: Mapping[str, Any], title: str, ref_id: str = "A") -> str:
    """The expression of one panel's query."""
    found = [t["expr"] for name, t in queries(dashboard) if name == title and t["refId"] == ref_id]
    assert len(found) == 1, f"no single query {ref_id} in panel {title!r}"
    return str(found[0])


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


def resolve_variables(api: PrometheusApi, dashboard: Mapping[str, Any]) -> Variables:
    """Each template variable's options (labels API) and substitution with "All" selected."""
    values = dict(BUILTINS)
    options: dict[str, list[str]] = {}
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
        found = api.label_values(parsed["label"], matches)
        assert found, f"${name}: {query} found no value"
        options[name] = found
        if variable.get("includeAll") and variable.get("allValue"):
            values[name] = str(variable["allValue"])
        elif variable.get("multi") or variable.get("includeAll"):
            values[name] = regex_alternation(found)
        else:
            values[name] = found[0]
    return Variables(values, options)


def run(api: PrometheusApi, expr: str, ranged: bool) -> list[dict[str, Any]]:
    """The query's result; the API raises when Prometheus refuses or fails it."""
    if ranged:
        return api.query_range(expr, RANGE_SECONDS, RANGE_STEP)
    return api.query(expr)


def is_ranged(target: Mapping[str, Any]) -> bool:
    return bool(target.get("range", not target.get("instant", False)))


def legend(target: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """The series' name in the panel: the legend format with ``{{label}}`` filled in."""
    form = str(target.get("legendFormat") or "__auto")
    if form == "__auto":
        return json.dumps(dict(sorted(labels.items())))
    return _LEGEND_LABEL.sub(lambda m: labels.get(m.group(1), ""), form)


def scalar(result: list[dict[str, Any]]) -> float:
    """The value of an instant query that returns exactly one series."""
    assert len(result) == 1, f"expected one series, got {result}"
    return float(result[0]["value"][1])
