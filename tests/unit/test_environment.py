"""``PINGMON_*`` overrides that cannot be decoded are problem lines naming their variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pingmon.config import load_config
from pingmon.errors import ConfigError


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("PINGMON_"):
            monkeypatch.delenv(name)
    path = tmp_path / "pingmon.yaml"
    path.write_text("providers: {}\n", encoding="utf-8")
    return path


def refusal_lines(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return [str(problem) for problem in raised.value.problems]


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        (
            "PINGMON_PROVIDERS",
            "not json",
            "PINGMON_PROVIDERS: not valid JSON (Expecting value: line 1 column 1 (char 0))",
        ),
        (
            "PINGMON_DEFAULTS",
            "{",
            "PINGMON_DEFAULTS: not valid JSON (Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1))",
        ),
    ],
)
def test_an_override_that_is_not_json_is_one_line_naming_the_variable(
    config: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, line: str
) -> None:
    monkeypatch.setenv(name, value)
    assert refusal_lines(config) == [line]


@pytest.mark.parametrize("field", ["providers", "defaults", "backoff", "watch", "targets"])
@pytest.mark.parametrize("value", ["not json", "{", "[1", "{'single': 'quotes'}"])
def test_every_structured_setting_names_its_variable_when_not_json(
    config: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: str
) -> None:
    monkeypatch.setenv(f"pingmon_{field}", value)  # matched whatever the case, named in capitals
    (line,) = refusal_lines(config)
    assert line.startswith(f"PINGMON_{field.upper()}: not valid JSON (")


def test_an_override_nested_past_the_json_parsers_depth_is_one_line(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_TARGETS", "[" * 100_000)
    assert refusal_lines(config) == ["PINGMON_TARGETS: not valid JSON (nested too deeply)"]


def test_a_valid_json_override_still_applies(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_DEFAULTS", '{"interval": "30s"}')
    assert load_config(config).settings.defaults.interval == 30.0


def test_a_bad_nested_override_is_refused_at_its_path(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_BACKOFF__MAX", "1000000000d")
    assert refusal_lines(config) == [
        "backoff.max: 1000000000d is longer than 7d, the longest duration pingmon accepts"
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PINGMON_LISTEN", "127.0.0.1\udcff:9108"),  # reached bind(): a traceback at `run`
        ("PINGMON_PROVIDERS__H__BASE_URL", "http://h\udcff"),
        ("PINGMON_DEFAULTS", '{"interval": "\udcff"}'),
    ],
)
def test_an_override_whose_bytes_are_not_utf8_is_one_line_naming_the_variable(
    config: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert refusal_lines(config) == [f"{name}: not UTF-8 text"]
