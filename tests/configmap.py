"""A directory laid out and updated the way the kubelet maintains a ConfigMap or Secret volume.

Each publication writes a fresh timestamped folder, points a temporary ``..data_tmp`` symlink at
it, renames that over ``..data`` (atomic), and removes the old folder; the visible files are
symlinks through ``..data``. This is the kubelet's AtomicWriter, so a watcher that works here
works on a mounted ConfigMap.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path


class ConfigMapDir:
    """A mounted-volume imitation whose files are replaced only by symlink swaps."""

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root
        self._generation = itertools.count(1)
        root.mkdir(parents=True, exist_ok=True)
        self.publish(files)
        for name in files:
            (root / name).symlink_to(Path("..data") / name)

    def path(self, name: str) -> Path:
        return self.root / name

    def publish(self, files: dict[str, str]) -> None:
        """Replace every file at once, as a ConfigMap update does."""
        folder = self.root / f"..2026_11_23_00_00_00.{next(self._generation):06d}"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        data = self.root / "..data"
        previous = data.resolve() if data.is_symlink() else None
        staging = self.root / "..data_tmp"
        staging.symlink_to(folder.name)
        os.replace(staging, data)
        if previous is not None:
            shutil.rmtree(previous)
