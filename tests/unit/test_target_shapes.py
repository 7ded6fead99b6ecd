"""Odd shapes of a file's targets and defaults: each fault named once at its own path, and
no problem that only the wrong defaults would raise."""

from __future__ import annotations

from pathlib import Path

import pytest

from pingmon.config import load_config
from pingmon.errors import ConfigError

UNKNOWN_KEY = "unknown key (refused so that a typo never silently changes a check)"
PROVIDERS = 'providers:\n  web: {type: http, base_url: "https://status.example.com"}\n'


def _lines(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "pingmon.yaml"
    path.write_text(PROVIDERS + text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    return [line.removeprefix(f"{path}: ") for line in refused.value.lines()]


@pytest.mark.parametrize(
    ("key", "path"),
    [("1", "targets[0].1"), ("true", "targets[0].True"), ("null", "targets[0].None")],
)
def test_a_target_key_that_is_not_a_string_is_one_unknown_key(
    tmp_path: Path, key: str, path: str
) -> None:
    text = f"targets:\n  - {{name: a, provider: web, {key}: x}}\n"
    assert _lines(tmp_path, text) == [f"{path}: {UNKNOWN_KEY}"]


def test_targets_are_judged_against_the_overridden_defaults_when_settings_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Valid as a whole with concurrency fixed: the interval is 5m, the target's timeout 90s.
    monkeypatch.setenv("PINGMON_DEFAULTS__INTERVAL", "5m")
    text = "concurrency: 0\ntargets:\n  - {name: a, provider: web, timeout: 90s}\n"
    assert _lines(tmp_path, text) == ["concurrency: Input should be greater than 0"]


def test_targets_are_not_judged_when_the_defaults_override_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_DEFAULTS__INTERVAL", "soon")
    text = "concurrency: 0\ntargets:\n  - {name: a, provider: web, timeout: 90s}\n"
    lines = _lines(tmp_path, text)
    assert "concurrency: Input should be greater than 0" in lines
    assert not [line for line in lines if line.startswith("targets")]


NOT_A_NUMBER = "must be a number, not true or false"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("targets:\n  - {name: a, provider: web, retries: true}\n", "targets[0].retries"),
        ("targets:\n  - {name: a, provider: web, max_body_bytes: true}\n",
         "targets[0].max_body_bytes"),
        ("targets:\n  - {name: a, provider: web, jitter: false}\n", "targets[0].jitter"),
        ("defaults: {retries: yes}\n", "defaults.retries"),
        ("defaults: {max_body_bytes: on}\n", "defaults.max_body_bytes"),
        ("concurrency: true\n", "concurrency"),
        ("server: {max_connections: true}\n", "server.max_connections"),
        ("backoff: {multiplier: true}\n", "backoff.multiplier"),
    ],
    ids=["target-retries", "target-max-body", "target-jitter", "defaults-retries",
         "defaults-max-body", "concurrency", "server", "backoff"],
)  # fmt: skip
def test_a_boolean_where_a_number_goes_is_refused_not_read_as_1_or_0(
    tmp_path: Path, text: str, problem: str
) -> None:
    assert _lines(tmp_path, text) == [f"{problem}: {NOT_A_NUMBER}"]


def test_a_boolean_in_a_provider_types_own_number_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_NINEPIC_API_KEY", "ninepic-secret-value")
    text = (
        "  nine: {type: ninepic, api_key: {env: TEST_NINEPIC_API_KEY}, max_concurrency: true}\n"
        "targets:\n  - {name: a, provider: nine, org_id: true, event_id: 4}\n"
    )
    assert _lines(tmp_path, text) == [
        f"providers.nine.max_concurrency: {NOT_A_NUMBER}",
        f"targets[0].org_id: {NOT_A_NUMBER}",
    ]


def test_a_boolean_in_the_environments_json_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_DEFAULTS", '{"retries": true}')
    assert _lines(tmp_path, "targets: []\n") == [f"defaults.retries: {NOT_A_NUMBER}"]


def test_numbers_and_nulls_still_pass(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(
        PROVIDERS + "defaults: {retries: 5.0, jitter: 0}\n"
        "targets:\n  - {name: a, provider: web, retries: null, max_body_bytes: 10}\n"
    )
    [target] = load_config(path).targets
    assert (target.schedule.retries, target.schedule.jitter) == (5, 0.0)
    assert target.schedule.max_body_bytes == 10
