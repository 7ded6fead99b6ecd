"""buildah on the local base that .ci/prepare-image-base made: the offline image build's tools."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE_DIR = REPO / ".tools" / "image"  # made by .ci/prepare-image-base
CONFIG_IN_IMAGE = "/etc/pingmon/pingmon.yaml"
EXAMPLE_IN_IMAGE = "/usr/share/pingmon/pingmon.example.yaml"
PREPARE = "run .ci/prepare-image-base (as root; it downloads the base and the wheels)"


def unavailable(message: str) -> None:
    """Fail in CI, where the prepare step must have run; skip on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True, slots=True)
class Buildah:
    """buildah on the vfs storage the prepare step filled, where the local base image lives."""

    path: str

    def argv(self, *args: str) -> list[str]:
        """The command line of ``buildah ARGS`` on that storage."""
        storage = ("--storage-driver=vfs", f"--root={IMAGE_DIR / 'storage'}")
        return [self.path, *storage, f"--runroot={IMAGE_DIR / 'run'}", *args]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def ok(self, *args: str, timeout: float = 120) -> str:
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"buildah {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout.strip()


def run_in(
    buildah: Buildah, container: str, *command: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`buildah run`: the container's own user, environment and (host) network."""
    return buildah.run("run", "--isolation=chroot", *options, container, "--", *command)
