"""The e2e copy of the rule file differs from the shipped one in its `for:` durations only."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e.conftest import rules_file
from tests.e2e.rules import alert_rules, duration_seconds, shorten_for_durations

WAITS = ("for", "keep_firing_for")


def without_waits(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in rule.items() if key not in WAITS}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("0s", 0.0), ("500ms", 0.5), ("90s", 90.0), ("1h30m", 5400.0), ("2d", 172800.0)],
)
def test_prometheus_durations_are_read_in_seconds(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "5 m", "m5", "1.5h"])
def test_a_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        duration_seconds(text)


def test_the_shipped_rules_copy_changes_nothing_but_the_waits() -> None:
    shipped = yaml.safe_load(rules_file().read_text())
    copy = shorten_for_durations(shipped)
    pairs = [
        (old, new)
        for old_group, new_group in zip(shipped["groups"], copy["groups"], strict=True)
        for old, new in zip(old_group["rules"], new_group["rules"], strict=True)
    ]
    assert [without_waits(new) for _, new in pairs] == [without_waits(old) for old, _ in pairs]
    for old, new in pairs:
        if duration_seconds(old.get("for", 0)) > 0:
            assert new["for"] in ("1s", "2s"), old.get("alert")
        else:
            assert new.get("for") == old.get("for"), old.get("alert")


def test_shortened_waits_keep_the_order_between_alerts() -> None:
    waits = {"Now": None, "Zero": "0s", "Short": "30s", "Medium": "5m", "Long": "1h"}
    document = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {"alert": name, "expr": "vector(1)", **({"for": wait} if wait else {})}
                    for name, wait in waits.items()
                ],
            }
        ]
    }
    copy = alert_rules(shorten_for_durations(document))
    shortened = {name: copy[name].get("for") for name in waits}
    assert shortened == {"Now": None, "Zero": "0s", "Short": "1s", "Medium": "2s", "Long": "2s"}
    assert alert_rules(document)["Long"]["for"] == "1h", "the original is left untouched"
