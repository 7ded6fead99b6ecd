"""Durations, rates and secret references: the value types of the configuration file."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from pingmon.fields import (
    MAX_SECRET_FILE_BYTES,
    Secret,
    format_duration,
    parse_duration,
    parse_rate,
    secrets_in,
)
from pingmon.providers.http import HttpParams, HttpSettings

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
        # Only ASCII digits: Python's \d and float() also take Arabic-Indic ones.
        ("\u0663s", f"'\u0663s' {SYNTAX_HINT}"),
        ("\u0663", f"'\u0663' {SYNTAX_HINT}"),
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
        ("\u0663/s", "'\u0663/s' is not a rate; use a form such as 5/s, 100/m or 1000/h"),
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


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
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


# Durations have an upper bound: what the scheduler's datetime arithmetic is given stays sane.

TOO_LONG = "is longer than 7d, the longest duration pingmon accepts"


@pytest.mark.parametrize("value", ["7d", "168h", "6d23h59m59s999ms", 604800, 604800.0])
def test_parse_duration_accepts_up_to_seven_days(value: str | float) -> None:
    assert parse_duration(value) <= 7 * 86400


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1000000000d", f"1000000000d {TOO_LONG}"),
        ("7d1ms", f"7d1ms {TOO_LONG}"),
        ("8d", f"8d {TOO_LONG}"),
        (" 169h ", f"169h {TOO_LONG}"),
        ("604801", f"604801 {TOO_LONG}"),
        (604801, f"604801s {TOO_LONG}"),
        (1e300, f"1e+300s {TOO_LONG}"),
    ],
)
def test_parse_duration_refuses_more_than_seven_days_saying_the_bound(
    value: str | float, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(value)


# One trailing newline is dropped from every secret source alike, and nothing else.


def _resolve_from(
    source: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Secret:
    if source == "env":
        monkeypatch.setenv("PINGMON_TEST_SECRET", value)
        return Secret.resolve({"env": "PINGMON_TEST_SECRET"})
    if source == "file":
        path = tmp_path / "secret"
        path.write_text(value, encoding="utf-8", newline="")
        return Secret.resolve({"file": str(path)})
    return Secret.resolve(value)


SOURCES = ["env", "file", "literal"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_every_secret_source_drops_one_trailing_newline(
    source: str, ending: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _resolve_from(source, f"hunter2{ending}", tmp_path, monkeypatch).reveal() == "hunter2"


CONTROL_CHARACTERS = [
    ("hunter2\n\n", "U+000A line feed"),  # only one newline is dropped
    ("hunter2\nsecond line\n", "U+000A line feed"),
    ("hunter2\r", "U+000D carriage return"),
    ("hun\tter2", "U+0009 tab"),
    ("hunter2\x00", "U+0000 NUL"),
    ("hunter2\x1b[0m", "U+001B"),
    ("hunter2\x7f", "U+007F"),
]


@pytest.mark.parametrize(
    ("source", "value", "named"),
    [
        (source, value, named)
        for source in SOURCES
        for value, named in CONTROL_CHARACTERS
        if not (source == "env" and "\x00" in value)  # an environment variable cannot hold NUL
    ],
)
def test_every_secret_source_refuses_a_control_character_naming_it_and_not_the_value(
    source: str, value: str, named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"holds a control character ({named})")
    ) as raised:
        _resolve_from(source, value, tmp_path, monkeypatch)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("value", ["sk_live_\u00e9t\u00e9", "pa$$ word", "=+/~!"])
def test_a_secret_may_hold_any_printable_text(value: str) -> None:
    assert Secret.resolve(value).reveal() == value


# A secret file is a regular file, read up to 64 KiB, never blocking.


def test_a_secret_file_of_exactly_64_kib_is_read(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"k" * MAX_SECRET_FILE_BYTES)
    assert len(Secret.resolve({"file": str(path)}).reveal()) == 64 * 1024


def test_a_secret_file_past_64_kib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"k" * (MAX_SECRET_FILE_BYTES + 1))
    message = f"cannot read secret file {path}: larger than 64 KiB, the most pingmon reads of it"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Secret.resolve({"file": str(path)})


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/dev/zero", "a character device"),
        ("/dev/urandom", "a character device"),
        (".", "a directory"),
    ],
)
def test_a_secret_file_that_is_not_a_regular_file_is_refused_unread(path: str, kind: str) -> None:
    message = f"cannot read secret file {path}: it is {kind}, not a regular file"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Secret.resolve({"file": path})


def test_a_secret_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    message = f"cannot read secret file {fifo}: it is a FIFO, not a regular file"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Secret.resolve({"file": str(fifo)})


def test_a_secret_file_that_is_not_utf8_is_refused_without_its_content(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"hunter2\xff\n")
    with pytest.raises(
        ValueError, match=f"^{re.escape(f'secret file {path} is not UTF-8 text')}$"
    ):
        Secret.resolve({"file": str(path)})


# Secrets are found by the model's structure, never by walking free-form values.


def test_secrets_in_finds_provider_header_secrets() -> None:
    settings = HttpSettings(base_url="https://status.example.com", headers={"X-K": "hunter2"})
    assert settings.secrets() == (Secret("hunter2", "literal"),)


def test_secrets_in_never_walks_an_expect_json_value() -> None:
    # A Secret inside free-form JSON is data, not a credential; and a walk of free-form values
    # is as large as the file makes it (a YAML alias graph of 10^9 paths).
    shared: dict[str, object] = {"leaf": Secret("hunter2", "literal")}
    for _ in range(60):
        shared = {"left": shared, "right": shared}  # 2^60 paths, 61 distinct objects
    params = HttpParams.model_validate({"expect": {"json": shared}})
    assert secrets_in(params) == ()


# Below 1ms a timer cannot tell runs apart (1e-9 s is a zero timedelta) and no request answers
# within it: such a value passed validation and ran twice in 4 s, or timed out every check.
TOO_SHORT = "is shorter than 1ms, the shortest duration pingmon accepts"


@pytest.mark.parametrize("value", ["1ms", 0.001, "0.001s", "1.0ms"])
def test_parse_duration_accepts_one_millisecond(value: str | float) -> None:
    assert parse_duration(value) == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("value", "given"),
    [
        ("0.5ms", "0.5ms"),
        ("0.001ms", "0.001ms"),
        (1e-9, "1e-09s"),
        (0.0009, "0.0009s"),
        ("0.0001", "0.0001"),
    ],
)
def test_parse_duration_refuses_less_than_one_millisecond_saying_the_bound(
    value: str | float, given: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{given} {TOO_SHORT}")):
        parse_duration(value)


@pytest.mark.parametrize("value", ["1/h", "0.0002/s", "0.15/h"])
def test_parse_rate_accepts_a_rate_of_at_least_one_request_per_seven_days(value: str) -> None:
    assert parse_rate(value) * 7 * 86400 >= 1


@pytest.mark.parametrize("value", ["0.0000000001/h", "0.005/h", "0.000001/s"])
def test_parse_rate_refuses_a_rate_whose_wait_would_pass_seven_days(value: str) -> None:
    # A check waits its turn in the budget: `pingmon check` of two targets sharing
    # 0.0000000001/h never ended.
    with pytest.raises(ValueError, match="allows less than one request per 7d"):
        parse_rate(value)


@pytest.mark.parametrize("value", ["hunter2\udcff", "\udc80hunter2\n", "hun\udce9ter2"])
def test_an_environment_secret_whose_bytes_are_not_utf8_is_refused_without_its_value(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.environ decodes such bytes as lone surrogates; they reached the log redactor's
    # percent-encoding and `config validate` ended in a UnicodeEncodeError traceback.
    monkeypatch.setenv("PINGMON_TEST_SECRET", value)
    with pytest.raises(
        ValueError, match="environment variable PINGMON_TEST_SECRET is not UTF-8"
    ) as raised:
        Secret.resolve({"env": "PINGMON_TEST_SECRET"})
    assert "hunter2" not in str(raised.value)
