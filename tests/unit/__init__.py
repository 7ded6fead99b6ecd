"""Unit tests: pure providers, configuration, back-off, metrics, scheduling."""

from __future__ import annotations

import json

from multidict import CIMultiDict

from pingmon.providers.base import HttpResponse


def response(
    status: int, body: object = b"", headers: dict[str, str] | None = None
) -> HttpResponse:
    """A response as the HTTP client hands it to a provider: headers case-insensitive, and a
    JSON body from any value (bytes are sent as they are)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status=status, headers=CIMultiDict(headers or {}), body=raw)
