"""A result is turned into fields once: the log line, /status and ``check`` show the same
figures under the names each has always used."""

from __future__ import annotations

import json
import logging
import pickle

import pytest

from pingmon.daemon import log_transition
from pingmon.errors import ErrorClass
from pingmon.logs import JsonFormatter
from pingmon.oneshot import as_json, as_table
from pingmon.readmodel import Snapshot
from pingmon.results import CheckResult, TargetInfo, TargetState, result_fields
from pingmon.status import target_status

INFO = TargetInfo("orders", "shop", "http", 30.0, "shop-credential")
# Seven digits after the point: every output rounds it, and all of them alike.
FAILED = CheckResult(
    target="orders",
    provider="shop",
    error_class=ErrorClass.SERVER_ERROR,
    http_status=503,
    duration_seconds=0.1234567,
    attempts=2,
    detail="503 from the server",
    finished_at=1_800_000_000.0,
)


def logged_line(caplog: pytest.LogCaptureFixture, result: CheckResult) -> dict[str, object]:
    before = TargetState(INFO)
    with caplog.at_level(logging.INFO, logger="pingmon"):
        log_transition(before, before.record(result))
    (record,) = [r for r in caplog.records if r.name == "pingmon"]
    line: dict[str, object] = json.loads(JsonFormatter().format(record))
    return line


def status_entry(result: CheckResult) -> dict[str, object]:
    state = TargetState(INFO).record(result)
    return target_status(Snapshot(config="pingmon.yaml", ready=True, targets=(state,)), state)


def test_the_log_line_status_and_check_json_show_the_same_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logged = logged_line(caplog, FAILED)["duration_seconds"]
    shown = status_entry(FAILED)["duration_seconds"]
    (checked,) = json.loads(as_json([FAILED]))
    assert logged == shown == checked["duration_seconds"] == 0.123457


def test_the_check_table_shows_the_same_duration_in_milliseconds() -> None:
    row = as_table([FAILED]).splitlines()[1]
    assert "  123ms  " in row


def test_every_output_shows_the_same_outcome_fields(caplog: pytest.LogCaptureFixture) -> None:
    logged = logged_line(caplog, FAILED)
    shown = status_entry(FAILED)
    (checked,) = json.loads(as_json([FAILED]))
    for name in ("error_class", "http_status", "duration_seconds", "attempts", "detail"):
        assert logged[name] == shown[name] == checked[name], name
    assert shown["success"] is checked["success"] is False


def test_each_output_keeps_the_field_names_it_always_had(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome = ["error_class", "http_status", "duration_seconds", "attempts", "detail"]
    (checked,) = json.loads(as_json([FAILED]))
    assert list(checked) == ["target", "provider", "success", *outcome]
    logged = logged_line(caplog, FAILED)
    assert set(logged) == {"time", "level", "logger", "message", "target", "provider", *outcome}
    assert list(status_entry(FAILED)) == [
        "target",
        "provider",
        "provider_type",
        "interval_seconds",
        "success",
        *outcome,
        "last_run",
        "last_success",
        "consecutive_failures",
        "next_run",
        "backoff_seconds",
        "backoff_remaining_seconds",
    ]


def test_a_target_never_checked_shows_null_outcome_fields() -> None:
    state = TargetState(INFO)
    entry = target_status(Snapshot(config="c", ready=False, targets=(state,)), state)
    assert [entry[name] for name in ("success", "duration_seconds", "detail")] == [None] * 3


def test_durations_are_rounded_to_the_microsecond() -> None:
    assert result_fields(FAILED)["duration_seconds"] == 0.123457
    tiny = CheckResult("t", "p", ErrorClass.NONE, 200, 4e-7, 1, "ok", 0.0)
    assert result_fields(tiny)["duration_seconds"] == 0.0


def test_a_result_is_immutable_compared_by_value_and_shown_by_field_name() -> None:
    """What a result kept of being a frozen dataclass: fields by name (and their defaults),
    equality of every field, a hash, no assignment, the ``repr`` naming each field, a
    pickle round trip; ``success`` follows the error class."""
    same = CheckResult("orders", "shop", ErrorClass.SERVER_ERROR, 503, 0.1234567, 2,
                       "503 from the server", 1_800_000_000.0)  # fmt: skip
    assert same == FAILED
    assert hash(same) == hash(FAILED)
    assert (FAILED.sent_at, FAILED.event_id, FAILED.success) == (0.0, None, False)
    for field, other in (("detail", "x"), ("attempts", 3), ("event_id", "evt"), ("sent_at", 1.0)):
        assert CheckResult(**{**FAILED._asdict(), field: other}) != FAILED
    with pytest.raises(AttributeError):
        FAILED.detail = "changed"  # type: ignore[misc]
    assert repr(FAILED) == (
        "CheckResult(target='orders', provider='shop', error_class=<ErrorClass.SERVER_ERROR: "
        "'server_error'>, http_status=503, duration_seconds=0.1234567, attempts=2, "
        "detail='503 from the server', finished_at=1800000000.0, sent_at=0.0, event_id=None)"
    )
    assert pickle.loads(pickle.dumps(FAILED)) == FAILED
    assert CheckResult("t", "p", ErrorClass.NONE, 200, 0.1, 1, "", 0.0).success
