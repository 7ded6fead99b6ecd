"""Fixtures shared by the sandbox's fidelity tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.sandbox import CLIENT_TIMEOUT


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client with a bounded timeout, so a fake that hangs fails the test, not the run."""
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as client:
        yield client
