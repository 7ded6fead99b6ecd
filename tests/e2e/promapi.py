"""Prometheus's HTTP API as the end-to-end tests call it: queries and the labels API."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.processes import http_json


class QueryError(AssertionError):
    """Prometheus refused or failed a query."""


@dataclass(frozen=True)
class PromApi:
    """The API of the Prometheus at ``url`` (``http://127.0.0.1:PORT``)."""

    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result; QueryError when Prometheus refuses it."""
        result: list[dict[str, Any]] = self._api("query", {"query": expr})["result"]
        return result

    def query_range(self, expr: str, seconds: float, step: str) -> list[dict[str, Any]]:
        """A range query over the last ``seconds``, one point per ``step``."""
        now = time.time()
        params = {"query": expr, "start": now - seconds, "end": now, "step": step}
        result: list[dict[str, Any]] = self._api("query_range", params)["result"]
        return result

    def label_values(self, label: str, matches: Iterable[str] = ()) -> list[str]:
        query = urllib.parse.urlencode([("match[]", m) for m in matches])
        answer = http_json(f"{self.url}/api/v1/label/{label}/values?{query}")
        values: list[str] = answer["data"]
        return values

    def _api(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        try:
            answer = http_json(url)
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read().decode(errors="replace")
            raise QueryError(f"{params['query']!r}: HTTP {exc.code}: {body}") from None
        if answer.get("status") != "success":
            raise QueryError(f"{params['query']!r}: {answer}")
        data: dict[str, Any] = answer["data"]
        return data
