"""The image, built once for tests/image from the working tree, and a container of it (removed
after tests/image, not at the end of the run)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.image.buildah import IMAGE_DIR, PREPARE, REPO, Buildah, unavailable
from tests.tools import require_tool


@pytest.fixture(scope="package")
def buildah() -> Buildah:
    tool = Buildah(require_tool("buildah"))
    if os.geteuid() != 0:
        unavailable("the image build needs root (vfs storage, chroot isolation)")
    base_file = IMAGE_DIR / "base-image"
    if not base_file.is_file() or not (IMAGE_DIR / "wheels" / ".requirements").is_file():
        unavailable(f"the local image base is not prepared: {PREPARE}")
    if tool.run("inspect", "--type", "image", base_file.read_text().strip()).returncode:
        unavailable(f"the local base image is missing from {IMAGE_DIR / 'storage'}: {PREPARE}")
    return tool


@pytest.fixture(scope="package")
def image(buildah: Buildah) -> Iterator[str]:
    """The image built from the working tree, offline: pip reads the wheels, never an index."""
    tag = f"localhost/pingmon-test:{uuid.uuid4().hex[:12]}"
    base = (IMAGE_DIR / "base-image").read_text().strip()
    done = buildah.run(
        *("bud", "--isolation=chroot", "--pull=false", "--format=docker", "--layers=false"),
        *("--build-arg", f"BASE_IMAGE={base}"),
        *("--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/wheels"),
        *("--volume", f"{IMAGE_DIR / 'wheels'}:/wheels:ro"),
        *("--file", str(REPO / "Dockerfile"), "--tag", tag, str(REPO)),
        timeout=900,
    )
    try:
        assert done.returncode == 0, f"build failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        yield tag
    finally:
        buildah.run("rmi", "--force", tag)


@pytest.fixture(scope="package")
def container(buildah: Buildah, image: str) -> Iterator[str]:
    name = f"pingmon-test-{uuid.uuid4().hex[:12]}"
    buildah.ok("from", "--pull=false", "--name", name, image)
    try:
        yield name
    finally:
        buildah.run("rm", name)


@pytest.fixture(scope="package")
def image_config(buildah: Buildah, image: str) -> dict[str, Any]:
    inspected: dict[str, Any] = json.loads(buildah.ok("inspect", "--type", "image", image))
    config: dict[str, Any] = inspected["Docker"]["config"]
    return config
