"""Find the real programs the tests drive: on PATH, in the venv, or in .tools/bin.

In CI (`CI` set) a missing program fails the test, so a broken install can never pass as a skip;
on a developer's machine it skips with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_SEARCH = (Path(sys.executable).parent, REPO / ".tools" / "bin")


def find_tool(name: str) -> str | None:
    """The program's path, or None when it is not installed anywhere we look."""
    found = shutil.which(name)
    if found:
        return found
    for folder in _SEARCH:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require_tool(name: str) -> str:
    """The program's path; skips the test locally, fails it in CI, when it is missing."""
    found = find_tool(name)
    if found is not None:
        return found
    message = f"{name} is not installed: run .ci/install-tools and pip install -e '.[test]'"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
