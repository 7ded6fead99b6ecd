"""The log filter: every secret of the configuration masked in every part of a log line,
in both formats: a safety net for text that did not go through the runner."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from pingmon.logs import SECRET_FILTER, JsonFormatter, TextFormatter, mask_secrets, setup_logging
from pingmon.redaction import MARKER, NO_REDACTION, Redactor

KEY = "sk_test_CANARY0123456789abcdef"
TOKEN = "tok-CANARY0123456789"


@pytest.fixture
def masked() -> Iterator[None]:
    mask_secrets(Redactor([KEY, f"Bearer {TOKEN}"]))
    yield
    mask_secrets(NO_REDACTION)


def emit(formatter: logging.Formatter, log: logging.Logger, *args: object, **kw: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(SECRET_FILTER)
    log.addHandler(handler)
    try:
        log.error(*args, **kw)  # type: ignore[arg-type]
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def crash() -> None:
    raise ValueError(f"the server refused Authorization: Bearer {TOKEN}")


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
@pytest.mark.usefixtures("masked")
def test_every_part_of_a_log_line_is_masked(formatter: logging.Formatter) -> None:
    log = logging.getLogger("pingmon.test.masking")
    line = ""
    try:
        crash()
    except ValueError:
        line = emit(
            formatter, log, "key %s refused", KEY, exc_info=True,
            extra={"detail": f"token {TOKEN}", "args_list": [KEY], "count": 3},
        )  # fmt: skip

    assert "CANARY" not in line
    assert line.count(MARKER) >= 4  # message, detail, list, traceback
    assert "ValueError" in line
    assert "3" in line


@pytest.mark.usefixtures("masked")
def test_a_json_line_keeps_its_types_where_nothing_was_masked() -> None:
    log = logging.getLogger("pingmon.test.masking")
    line = emit(JsonFormatter(), log, "plain", extra={"ids": [1, 2], "ok": True})

    entry = json.loads(line)
    assert entry["ids"] == [1, 2]
    assert entry["ok"] is True


def test_without_a_configuration_nothing_is_masked() -> None:
    log = logging.getLogger("pingmon.test.masking")
    assert KEY in emit(JsonFormatter(), log, "key %s", KEY)


def test_setup_logging_installs_the_filter_and_a_load_updates_it() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("json", "info")
        assert SECRET_FILTER in root.handlers[0].filters
        mask_secrets(Redactor([KEY]))
        assert SECRET_FILTER.redactor.mask(KEY) == MARKER
    finally:
        mask_secrets(NO_REDACTION)
        root.handlers[:] = handlers
        root.setLevel(level)
