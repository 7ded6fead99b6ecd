"""A copy of a Prometheus rule file in which only the alerts' `for:` durations are shortened."""

from __future__ import annotations

import re
from copy import deepcopy
from typing import Any, Final

_DURATION_PART: Final = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS: Final = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}


def duration_seconds(value: object) -> float:
    """Seconds in a Prometheus duration such as ``0``, ``90s`` or ``1h30m``."""
    text = str(value)
    if text == "0":
        return 0.0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def shorten_for_durations(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a rule file in which the shortest `for` becomes 1s and every longer one 2s.

    The order between alerts is kept (a shorter wait never becomes longer than another one),
    a `for` of 0 stays 0, `keep_firing_for` becomes 1s, and the PromQL is left as it is.
    """
    copy = deepcopy(document)
    alerts = [rule for group in copy["groups"] for rule in group["rules"] if "alert" in rule]
    waits = sorted({duration_seconds(rule.get("for", 0)) for rule in alerts} - {0.0})
    for rule in alerts:
        wait = duration_seconds(rule.get("for", 0))
        if wait > 0:
            rule["for"] = "1s" if wait == waits[0] else "2s"
        if duration_seconds(rule.get("keep_firing_for", 0)) > 0:
            rule["keep_firing_for"] = "1s"
    return copy


def alert_rules(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The alerting rules of a rule file by alert name."""
    return {
        rule["alert"]: rule
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
