"""Rate-limited logging: one line per kind every few seconds, saying how many were left out.

A flood of one event (forged webhooks, malformed requests, an accept loop out of file
descriptors) must not become a flood of log lines: the first of a kind is written, the others
within ``LOG_EVERY_SECONDS`` are counted, and the next line written carries ``suppressed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager

LOG_EVERY_SECONDS = 10.0
# Kinds remembered at once; past this, kinds quiet for a whole window are forgotten first.
MAX_KINDS = 1024
# Loggers of the libraries under pingmon's server whose warnings a client can cause at will:
# aiohttp logs every malformed request with its traceback, asyncio every accept() that fails.
LIBRARY_LOGGERS = ("asyncio", "aiohttp.server", "aiohttp.web", "aiohttp.internal")


class LogThrottle:
    """Admits one event per kind every ``every`` seconds and counts the others."""

    def __init__(
        self, every: float = LOG_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._every = every
        self._clock = clock
        self._kinds: dict[Hashable, tuple[float, int]] = {}  # kind -> (admitted at, left out)

    def admit(self, kind: Hashable) -> int | None:
        """None when this event is to be left out; else how many of its kind were left out
        since the last one admitted (0 for the first)."""
        now = self._clock()
        last = self._kinds.get(kind)
        if last is not None and now - last[0] < self._every:
            self._kinds[kind] = (last[0], last[1] + 1)
            return None
        if last is None and len(self._kinds) >= MAX_KINDS:
            self._forget_quiet(now)
        self._kinds[kind] = (now, 0)
        return 0 if last is None else last[1]

    def _forget_quiet(self, now: float) -> None:
        quiet = [k for k, (at, _) in self._kinds.items() if now - at >= self._every]
        for kind in quiet or list(self._kinds)[: MAX_KINDS // 2]:
            del self._kinds[kind]


class ThrottleFilter(logging.Filter):
    """A logging filter that throttles records at WARNING and above by logger, level and
    message template (the arguments differ from one client to the next, the template not)."""

    def __init__(self, throttle: LogThrottle | None = None) -> None:
        super().__init__()
        self._throttle = throttle or LogThrottle()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        suppressed = self._throttle.admit((record.name, record.levelno, str(record.msg)))
        if suppressed is None:
            return False
        if suppressed:
            record.suppressed = suppressed
        return True


@contextmanager
def throttled(loggers: Sequence[str] = LIBRARY_LOGGERS) -> Iterator[ThrottleFilter]:
    """Throttle these loggers' warnings and errors while the block runs."""
    throttle = ThrottleFilter()
    for name in loggers:
        logging.getLogger(name).addFilter(throttle)
    try:
        yield throttle
    finally:
        for name in loggers:
            logging.getLogger(name).removeFilter(throttle)
