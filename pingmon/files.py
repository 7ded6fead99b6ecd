"""Reading a file named in the configuration: a regular file only, and never more than a bound."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(Exception):
    """Why a file was not read, as a phrase that completes "cannot read FILE: ..."."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes.

    Opened without blocking (a FIFO with no writer would block ``open`` forever) and checked
    with ``fstat`` on the open descriptor before any read, so a FIFO, a device such as
    /dev/zero or a directory is refused at once, and a file that grows while it is read is
    read no further than one byte past the bound. Raises FileRefused.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise FileRefused(error.strerror or type(error).__name__) from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise FileRefused(f"it is {_kind(status.st_mode)}, not a regular file")
        if status.st_size > limit:
            raise FileRefused(_too_large(limit))
        content = _read_at_most(descriptor, limit + 1)
    except OSError as error:
        raise FileRefused(error.strerror or type(error).__name__) from None
    finally:
        os.close(descriptor)
    if len(content) > limit:
        raise FileRefused(_too_large(limit))
    return content


def _read_at_most(descriptor: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0 and (chunk := os.read(descriptor, min(size, 1 << 20))):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _too_large(limit: int) -> str:
    return f"larger than {format_size(limit)}, the most pingmon reads of it"


def format_size(size: int) -> str:
    """``4 MiB``, ``64 KiB`` or ``512 bytes``: a bound in the unit it was chosen in."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"
