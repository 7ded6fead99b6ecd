"""A target's URL is parsed once and kept with its plan (``TargetPlan.url``): every check
still reaches exactly the URL its provider built, a URL that changes is parsed again, and one
aiohttp cannot parse still fails as aiohttp says (``InvalidURL``, client_error)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from yarl import URL

from pingmon.backoff import RateLimitGate
from pingmon.client import UrlMemo, parse_url, send
from pingmon.config import BackoffSettings, load_config
from pingmon.daemon import new_sessions
from pingmon.errors import ErrorClass, TransportError
from pingmon.providers.base import PreparedRequest
from pingmon.runner import Runner, build_plans
from tests.integration.origin import serve_origin

PATHS = ["/a", "/b/c?x=1&y=two", "/a"]


def test_a_memo_parses_a_url_once_and_again_only_when_it_changes() -> None:
    memo = UrlMemo()
    first = memo("http://127.0.0.1:1/a?q=1")
    assert first == URL("http://127.0.0.1:1/a?q=1")
    assert memo("http://127.0.0.1:1/a?q=1") is first
    other = memo("http://127.0.0.1:1/b")
    assert other == URL("http://127.0.0.1:1/b")
    assert memo("http://127.0.0.1:1/a?q=1") == first


@pytest.mark.parametrize("url", ["http://[::1", "http://h:99999/"])
def test_a_url_that_does_not_parse_is_kept_as_text_for_aiohttp(url: str) -> None:
    assert parse_url(url) == url
    assert UrlMemo()(url) == url


async def test_a_url_that_does_not_parse_is_aiohttps_invalid_url_a_client_error() -> None:
    async with new_sessions() as sessions:
        with pytest.raises(TransportError) as caught:
            await send(
                sessions,
                PreparedRequest("GET", "http://user:pw@[::1/x"),
                timeout=5.0,
                max_body_bytes=1024,
            )
    assert caught.value.error_class is ErrorClass.CLIENT_ERROR
    assert "InvalidUrlClientError" in caught.value.detail
    assert "pw" not in caught.value.detail


def test_each_plan_keeps_its_own_memo_and_a_reload_builds_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "providers": {"p": {"type": "http", "base_url": "http://127.0.0.1:1"}},
                "targets": [
                    {"name": name, "provider": "p", "path": f"/{name}"} for name in ("a", "b")
                ],
            }
        )
    )
    config = load_config(path)
    plans = build_plans(config)
    assert plans["a"].url is not plans["b"].url
    again = build_plans(config, plans)
    assert {id(plan.url) for plan in again.values()}.isdisjoint(
        id(plan.url) for plan in plans.values()
    )


async def test_checks_of_targets_sharing_a_provider_reach_each_its_own_url(tmp_path: Path) -> None:
    """Targets of one provider checked in turn, twice: each request goes to its own path,
    query and all, as aiohttp sends it from the text."""
    async with serve_origin() as origin:
        path = tmp_path / "pingmon.yaml"
        targets = [
            {"name": f"t{index}", "provider": "p", "path": where}
            for index, where in enumerate(PATHS)
        ]
        path.write_text(
            yaml.safe_dump(
                {"providers": {"p": {"type": "http", "base_url": origin.url}}, "targets": targets}
            )
        )
        plans = build_plans(load_config(path))
        async with new_sessions() as sessions:
            runner = Runner(sessions, RateLimitGate(BackoffSettings()), concurrency=2)
            results = [await runner.run(plan) for _ in range(2) for plan in plans.values()]
    assert [result.error_class for result in results if result] == [ErrorClass.NONE] * 6
    assert [seen.path for seen in origin.requests] == PATHS * 2
