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
