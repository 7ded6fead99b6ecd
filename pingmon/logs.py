"""Logging: one JSON object per line on stderr, or plain text for people."""

from __future__ import annotations

import json
import logging
import math
import sys
from datetime import UTC, datetime
from typing import Any

from pingmon.redaction import NO_REDACTION, Redactor

# Attributes every LogRecord has; anything else was passed in ``extra`` and is a field.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


def _finite(value: object) -> object:
    """``value`` with every non-finite float as None: JSON has no Infinity or NaN
    (RFC 8259 section 6), and strict parsers (Loki, Go, jq) refuse the whole line."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _exception(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's traceback: as the secret filter left it masked, else formatted here."""
    if record.exc_text:
        return record.exc_text
    return formatter.formatException(record.exc_info) if record.exc_info else None


class SecretFilter(logging.Filter):
    """Masks every wire form of every secret of the configuration in a record: its message,
    every extra field that is (or prints as) text, its traceback and stack. A safety net for
    what the runner does not mask (details are masked before they reach a log line)."""

    def __init__(self) -> None:
        super().__init__()
        self.redactor: Redactor = NO_REDACTION

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self.redactor  # one configuration's, even if a reload swaps it meanwhile
        if not redactor:
            return True
        mask = redactor.mask
        record.msg, record.args = mask(record.getMessage()), None
        for key, value in _fields(record).items():
            if isinstance(value, str):
                setattr(record, key, mask(value))
            elif not isinstance(value, int | float | bool | None):
                text = str(value)  # a list or an exception printed into the line
                if mask(text) != text:
                    setattr(record, key, mask(text))
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


_PLAIN = logging.Formatter()
SECRET_FILTER = SecretFilter()


def mask_secrets(redactor: Redactor) -> None:
    """Mask these secrets in every log line from now on (a loaded configuration's)."""
    SECRET_FILTER.redactor = redactor


class JsonFormatter(logging.Formatter):
    """``{"time": ..., "level": ..., "logger": ..., "message": ..., <extra fields>}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        exception = _exception(self, record)
        if exception:
            entry["exception"] = exception
        return json.dumps(_finite(entry), default=str, allow_nan=False)


class TextFormatter(logging.Formatter):
    """``2026-11-23T13:00:00Z level message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        pairs = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{when} {record.levelname.lower():7} {record.getMessage()}"
        line = f"{line}  {pairs}" if pairs else line
        exception = _exception(self, record)
        if exception:
            line += "\n" + exception
        return line


def setup_logging(log_format: str = "json", level: str = "info") -> None:
    """Send pingmon's logs to stderr in the chosen format; quiet the libraries' chatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(SECRET_FILTER)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every job run at INFO; aiohttp logs every request.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
