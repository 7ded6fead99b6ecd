"""Rate-limited logging: one line per kind per window, the next one saying how many were left
out; library loggers throttled only while ``throttled()`` is in force."""

from __future__ import annotations

import logging

import pytest

from pingmon.throttle import MAX_KINDS, LogThrottle, ThrottleFilter, throttled


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_first_of_a_kind_is_admitted_and_the_rest_of_its_window_counted() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    assert throttle.admit("accept") == 0
    assert [throttle.admit("accept") for _ in range(5)] == [None] * 5
    clock.now = 9.9
    assert throttle.admit("accept") is None
    clock.now = 10.0
    assert throttle.admit("accept") == 6  # the window's left-out events, said once
    assert throttle.admit("accept") is None


def test_kinds_are_throttled_each_on_its_own() -> None:
    throttle = LogThrottle(10.0, Clock())
    assert throttle.admit(("t1", "bad_signature")) == 0
    assert throttle.admit(("t2", "bad_signature")) == 0
    assert throttle.admit(("t1", "stale")) == 0
    assert throttle.admit(("t1", "bad_signature")) is None


def test_the_kinds_remembered_are_bounded() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    for kind in range(MAX_KINDS):
        throttle.admit(kind)
    clock.now = 20.0
    assert throttle.admit("one more") == 0
    assert len(throttle._kinds) <= MAX_KINDS


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_the_filter_keys_on_the_message_template_not_its_arguments() -> None:
    clock = Clock()
    flood = ThrottleFilter(LogThrottle(10.0, clock))
    first = record("aiohttp.server", logging.ERROR, "Error handling request from %s", "a")
    assert flood.filter(first)
    assert not hasattr(first, "suppressed")
    for peer in ("b", "c", "d"):
        assert not flood.filter(
            record("aiohttp.server", logging.ERROR, "Error handling request from %s", peer)
        )
    clock.now = 10.0
    later = record("aiohttp.server", logging.ERROR, "Error handling request from %s", "e")
    assert flood.filter(later)
    assert later.suppressed == 3  # type: ignore[attr-defined]


def test_the_filter_lets_every_record_below_warning_through() -> None:
    flood = ThrottleFilter(LogThrottle(10.0, Clock()))
    assert all(flood.filter(record("asyncio", logging.DEBUG, "poll took %s")) for _ in range(3))


def test_library_loggers_are_throttled_only_inside_the_block(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    accept = logging.getLogger("asyncio")
    with throttled():
        for _ in range(100):
            accept.error("socket.accept() out of system resource")
    for _ in range(2):
        accept.error("socket.accept() out of system resource")
    assert len(caplog.records) == 3
