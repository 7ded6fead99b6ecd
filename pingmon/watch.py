"""Reload when the configuration file, or a secret file it names, changes on disk.

Polling, as Prometheus' ``auto-reload-config`` does, rather than inotify: a Kubernetes
ConfigMap or Secret volume updates by swapping a ``..data`` symlink in the mounted directory,
which a watch on the file itself never sees, while a poll that follows the symlink does. A cheap
``stat`` every interval decides whether to read the files; a reload happens only when their
contents differ, so a ``touch`` or a swap to identical contents costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pingmon.config import Config, WatchSettings

log = logging.getLogger("pingmon")

Signature = tuple[str, int, int, int] | None
"""(resolved path, inode, mtime in ns, size) of a file, or None when it cannot be read."""


def file_signature(path: str) -> Signature:
    """What changes when a file is rewritten, replaced, or re-pointed by a symlink swap."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)


def file_digest(path: str) -> str | None:
    """The contents' sha256, or None when the file cannot be read (absent mid-swap, say)."""
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class Seen:
    signature: Signature
    digest: str | None


class FileWatch:
    """Remembers what a set of files looked like, and says when their contents changed."""

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._seen: dict[str, Seen] = {}
        self.changed(paths)

    def changed(self, paths: Iterable[str]) -> list[str]:
        """The files whose contents differ from the last look. A file seen for the first time
        (a secret file a reload just added) is remembered, not reported: the reload that
        named it has read it."""
        seen: dict[str, Seen] = {}
        changed: list[str] = []
        for path in paths:
            signature = file_signature(path)
            before = self._seen.get(path)
            if before is not None and before.signature == signature:
                seen[path] = before
                continue
            now = Seen(signature, file_digest(path))
            if before is not None and before.digest != now.digest:
                changed.append(path)
            seen[path] = now
        self._seen = seen
        return changed


class ConfigWatcher:
    """Polls the running configuration's files and reloads when one of them changed.

    A file that fails to load is not retried until it changes again: the reload has already
    logged its problems and set ``pingmon_config_last_reload_successful 0``, and the old
    configuration keeps running.
    """

    def __init__(
        self,
        current: Callable[[], Config],
        reload: Callable[[], Awaitable[tuple[bool, list[str]]]],
    ) -> None:
        self._current = current
        self._reload = reload
        self._watch = FileWatch(current().watched_files())

    @property
    def settings(self) -> WatchSettings:
        return self._current().settings.watch

    async def poll(self) -> None:
        """Look once; reload if something changed."""
        changed = self._watch.changed(self._current().watched_files())
        if changed:
            log.info("configuration changed on disk; reloading", extra={"files": changed})
            await self._reload()

    async def run(self) -> None:
        """Poll at the configured interval until cancelled; a reload can switch it on or off."""
        while True:
            await asyncio.sleep(self.settings.interval)
            if self.settings.enabled:
                await self.poll()
