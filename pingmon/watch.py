"""Reload when the configuration file, or a secret file it names, changes on disk.

Polling, as Prometheus' ``auto-reload-config`` does, rather than inotify: a Kubernetes
ConfigMap or Secret volume updates by swapping a ``..data`` symlink in the mounted directory,
which a watch on the file itself never sees, while a poll that follows the symlink does. A cheap
``stat`` every interval decides whether to read the files; a reload happens only when their
contents differ, so a ``touch`` or a swap to identical contents costs nothing.

A file rewritten in place (same inode) may be caught half-written: a slow copy, an editor, a
shell ``>`` that truncates first. Such a change counts only once the file has stayed the same
(``stat`` signature and contents) for two polls in a row. A file *replaced* by another (a
``rename``, a ConfigMap's symlink swap: the resolved path or the inode changed) was complete
before it appeared, so it counts at once, as fast as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pingmon.config import Config, WatchSettings
from pingmon.errors import describe_exception

log = logging.getLogger("pingmon")

# A file larger than this is never read on the event loop: its identity, size and mtime
# stand for its contents (no configuration or secret file comes near it).
DIGEST_MAX_BYTES = 64 * 1024 * 1024

Signature = tuple[str, int, int, int] | None
"""(resolved path, inode, mtime in ns, size) of a file, or None when it cannot be read."""


def file_signature(path: str) -> Signature:
    """What changes when a file is rewritten, replaced, or re-pointed by a symlink swap."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), status.st_ino, status.st_mtime_ns, status.st_size)


def file_digest(path: str) -> str | None:
    """The contents' sha256, or None when the file cannot be opened (absent mid-swap, say).

    Opened without blocking and read only if it is a regular file of at most
    DIGEST_MAX_BYTES, so a FIFO or a device put in its place never stalls the poll: anything
    else is summed up by its type and identity, which still differ from the old contents.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            return f"special {stat.S_IFMT(status.st_mode):o} {status.st_ino} {status.st_rdev}"
        if status.st_size > DIGEST_MAX_BYTES:
            return f"large {status.st_ino} {status.st_size} {status.st_mtime_ns}"
        with open(descriptor, "rb", closefd=False) as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None
    finally:
        os.close(descriptor)


@dataclass(frozen=True, slots=True)
class Seen:
    """One look at a file."""

    signature: Signature
    digest: str | None


@dataclass(frozen=True, slots=True)
class _Watched:
    settled: Seen  # the contents last reported (or found at the first look)
    last: Seen  # the previous poll's look


def replaced(before: Seen, now: Seen) -> bool:
    """The file is another one than at the last look (a rename over it, a symlink swap), so
    it was complete when it appeared; a file that was missing is not known to be complete."""
    if before.signature is None or now.signature is None:
        return False
    return before.signature[:2] != now.signature[:2]


class FileWatch:
    """Remembers what a set of files looked like, and says when their contents changed for good.

    A change counts when the new contents are the same at two consecutive looks, or at once
    when the file was replaced whole (see ``replaced``).
    """

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._files: dict[str, _Watched] = {}
        self.add(paths)

    def add(self, paths: Iterable[str]) -> None:
        """Take a first look at the files not watched yet: remembered, never reported."""
        for path in paths:
            if path not in self._files:
                seen = Seen(file_signature(path), file_digest(path))
                self._files[path] = _Watched(seen, seen)

    def changed(self, paths: Iterable[str]) -> list[str]:
        """The files whose contents differ from the last ones reported, and are complete. A
        file seen for the first time (a secret file a reload just added) is remembered, not
        reported: the reload that named it has read it."""
        files: dict[str, _Watched] = {}
        changed: list[str] = []
        for path in paths:
            signature = file_signature(path)
            before = self._files.get(path)
            if before is None:
                seen = Seen(signature, file_digest(path))
                files[path] = _Watched(seen, seen)
                continue
            if signature == before.last.signature == before.settled.signature:
                files[path] = before  # untouched since it settled: no need to read it
                continue
            now = Seen(signature, file_digest(path))
            if now.digest == before.settled.digest:  # touched, or back to what it was
                files[path] = _Watched(now, now)
            elif now == before.last or replaced(before.last, now):
                changed.append(path)
                files[path] = _Watched(now, now)
            else:  # still being written, or not yet seen twice the same
                files[path] = _Watched(before.settled, now)
        self._files = files
        return changed


class ConfigWatcher:
    """Polls the running configuration's files and reloads when one of them changed.

    A file that fails to load is not retried until it changes again: the reload has already
    logged its problems and set ``pingmon_config_last_reload_successful 0``, and the old
    configuration keeps running. Nothing a poll or a reload raises ends the watcher.
    """

    def __init__(
        self,
        current: Callable[[], Config],
        reload: Callable[[], Awaitable[tuple[bool, list[str]]]],
        first_look: FileWatch | None = None,
    ) -> None:
        """``first_look``: the configuration file as it was seen *before* it was loaded, so
        that a change made while pingmon starts is still a change."""
        self._current = current
        self._reload = reload
        self._watch = first_look if first_look is not None else FileWatch()
        self._watch.add(current().watched_files())

    @property
    def settings(self) -> WatchSettings:
        return self._current().settings.watch

    async def poll(self) -> None:
        """Look once; reload if something changed for good. Never raises (but cancellation)."""
        try:
            changed = self._watch.changed(self._current().watched_files())
            if changed:
                log.info("configuration changed on disk; reloading", extra={"files": changed})
                await self._reload()
        except Exception as error:  # noqa: BLE001  # the watcher must outlive any failure
            log.error(
                "watching the configuration failed; retrying when the files change",
                extra={"error": describe_exception(error)},
            )

    async def run(self) -> None:
        """Poll at the configured interval until cancelled; a reload can switch it on or off."""
        while True:
            await asyncio.sleep(self.settings.interval)
            if self.settings.enabled:
                await self.poll()
