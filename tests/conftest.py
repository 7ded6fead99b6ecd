"""For every test: no proxy from the machine's environment, so loopback servers are reached
directly unless a test sets a proxy itself (pingmon honours HTTP_PROXY & co. as curl does)."""

from __future__ import annotations

import pytest

PROXY_VARIABLES = tuple(
    name
    for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
