"""Durations, rates and secret references: the value types of the configuration file."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from pingmon.fields import Secret, format_duration, parse_duration, parse_rate

SYNTAX_HINT = "is not a duration; use a form such as 500ms, 30s, 5m or 1h"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1m30s500ms", 90.5),
        ("1.5s", 1.5),
        (" 5m ", 300.0),
        (5, 5.0),
        (0.25, 0.25),
        ("30", 30.0),  # a bare number from an environment variable is seconds
    ],
)
def test_parse_duration_reads_prometheus_durations_and_numbers(
    value: str | float, seconds: float
) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "must be a positive duration"),
        ("0s", "must be a positive duration"),
        (-1, "must be a positive duration"),
        ("-1s", "must be a positive duration"),
        (math.nan, "must be a positive duration"),
        (math.inf, "must be a finite duration"),
        ("5 minutes", f"'5 minutes' {SYNTAX_HINT}"),
        ("", f"'' {SYNTAX_HINT}"),
        ("5x", f"'5x' {SYNTAX_HINT}"),
        ("5M", f"'5M' {SYNTAX_HINT}"),
        ("1h 30m", f"'1h 30m' {SYNTAX_HINT}"),
        (None, f"None {SYNTAX_HINT}"),
        (True, "must be a duration such as 500ms, 30s, 5m or 1h"),
        (False, "must be a duration such as 500ms, 30s, 5m or 1h"),
    ],
)
def test_parse_duration_refuses_with_a_message_saying_what_to_write(
    value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "500ms"),
        (0.001, "1ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (30.0, "30s"),
        (60.0, "1m"),
        (90.0, "90s"),
        (300.0, "5m"),
        (3600.0, "1h"),
        (5400.0, "90m"),
    ],
)
def test_format_duration_gives_the_shortest_exact_string(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=7 * 86400))
def test_format_duration_of_whole_seconds_parses_back_to_the_same_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=1, max_value=999))
def test_format_duration_of_milliseconds_parses_back_to_the_same_seconds(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000)


@pytest.mark.parametrize(
    ("value", "per_second"),
    [("5/s", 5.0), ("100/m", 100 / 60), ("1000/h", 1000 / 3600), ("1/ms", 1000.0), ("5 / s", 5.0)],
)
def test_parse_rate_reads_requests_per_unit_as_requests_per_second(
    value: str, per_second: float
) -> None:
    assert parse_rate(value) == pytest.approx(per_second)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 per second", "'5 per second' is not a rate; use a form such as 5/s, 100/m or 1000/h"),
        ("5/d", "'5/d' is not a rate; use a form such as 5/s, 100/m or 1000/h"),
        (5, "5 is not a rate; use a form such as 5/s, 100/m or 1000/h"),
        ("0/s", "must be a positive rate"),
    ],
)
def test_parse_rate_refuses_with_a_message_saying_what_to_write(
    value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_rate(value)


def test_secret_repr_shows_only_where_the_value_came_from() -> None:
    assert repr(Secret("hunter2", "env:API_KEY")) == "Secret(env:API_KEY)"


def test_secret_str_is_masked() -> None:
    assert str(Secret("hunter2", "env:API_KEY")) == "**********"


def test_secret_formatting_never_shows_the_value() -> None:
    secret = Secret("hunter2", "literal")
    assert "hunter2" not in f"{secret} {secret!r} {[secret]} {secret.value!r} {secret.value}"


def test_secret_reveal_gives_the_value() -> None:
    assert Secret("hunter2", "env:API_KEY").reveal() == "hunter2"


def test_secrets_with_the_same_value_and_source_are_equal_and_hash_alike() -> None:
    first, second = Secret("hunter2", "env:API_KEY"), Secret("hunter2", "env:API_KEY")
    assert first == second
    assert hash(first) == hash(second)


@pytest.mark.parametrize(
    "other",
    [Secret("hunter3", "env:API_KEY"), Secret("hunter2", "env:OTHER_KEY"), "hunter2"],
)
def test_secret_differs_from_another_value_another_source_and_a_plain_string(
    other: object,
) -> None:
    assert Secret("hunter2", "env:API_KEY") != other


def test_secret_resolves_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGMON_TEST_SECRET", "hunter2")
    assert Secret.resolve({"env": "PINGMON_TEST_SECRET"}) == Secret(
        "hunter2", "env:PINGMON_TEST_SECRET"
    )


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\n\n"])
def test_secret_resolves_a_file_without_its_trailing_newline(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "api-key"
    path.write_text(f"hunter2{ending}", encoding="utf-8", newline="")
    assert Secret.resolve({"file": str(path)}).reveal() == "hunter2"


def test_secret_from_a_file_names_the_file_as_its_source(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    path.write_text("hunter2\n", encoding="utf-8")
    assert Secret.resolve({"file": str(path)}).source == f"file:{path}"


def test_secret_accepts_a_literal_and_marks_it_literal() -> None:
    secret = Secret.resolve("hunter2")
    assert (secret.reveal(), secret.is_literal) == ("hunter2", True)


def test_secret_from_a_reference_is_not_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGMON_TEST_SECRET", "hunter2")
    assert not Secret.resolve({"env": "PINGMON_TEST_SECRET"}).is_literal


def test_secret_resolve_passes_a_resolved_secret_through() -> None:
    secret = Secret("hunter2", "env:API_KEY")
    assert Secret.resolve(secret) is secret


def test_secret_resolve_names_an_unset_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PINGMON_TEST_UNSET", raising=False)
    with pytest.raises(ValueError, match=r"^environment variable PINGMON_TEST_UNSET is not set$"):
        Secret.resolve({"env": "PINGMON_TEST_UNSET"})


def test_secret_resolve_names_an_empty_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PINGMON_TEST_SECRET", "")
    with pytest.raises(ValueError, match=r"^environment variable PINGMON_TEST_SECRET is empty$"):
        Secret.resolve({"env": "PINGMON_TEST_SECRET"})


def test_secret_resolve_names_an_unreadable_file_and_why(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    message = f"cannot read secret file {missing}: No such file or directory"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Secret.resolve({"file": str(missing)})


def test_secret_resolve_names_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"^{re.escape(f'secret file {path} is empty')}$"):
        Secret.resolve({"file": str(path)})


@pytest.mark.parametrize(
    "reference",
    [
        {"env": "API_KEY", "file": "/run/secrets/api-key"},
        {"environment": "API_KEY"},
        {"env": ""},
        {"env": 5},
        {},
        ["API_KEY"],
        12345,
        None,
    ],
)
def test_secret_resolve_refuses_a_malformed_reference(reference: object) -> None:
    with pytest.raises(
        ValueError, match=r"^must be \{env: NAME\} or \{file: PATH\} \(or a literal string\)$"
    ):
        Secret.resolve(reference)


def test_secret_resolve_refuses_an_empty_literal() -> None:
    with pytest.raises(ValueError, match=r"^is empty$"):
        Secret.resolve("")


def test_secret_resolve_error_never_echoes_a_literal_in_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"^must be") as raised:
        Secret.resolve({"sk_live_hunter2": None})
    assert "hunter2" not in str(raised.value)
