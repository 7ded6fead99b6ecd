"""What ``wire.TracedRequest`` relies on in aiohttp's own code: these fail when aiohttp
changes it, before a count of requests goes wrong."""

from __future__ import annotations

import inspect

import aiohttp

from pingmon.wire import TracedRequest


def test_aiohttp_awaits_a_requests_send_as_it_calls_it() -> None:
    """``TracedRequest.send`` counts a request when it is called and hands aiohttp the
    coroutine of ``ClientRequest.send``: right only while aiohttp awaits it in the same
    expression, once per request it sends (its own re-send builds a new request)."""
    source = inspect.getsource(aiohttp.ClientSession._request)
    assert source.count(".send(conn)") == 1
    assert "resp = await req.send(conn)" in source


def test_traced_send_overrides_the_method_aiohttp_calls() -> None:
    assert TracedRequest.send is not aiohttp.ClientRequest.send
    assert inspect.iscoroutinefunction(aiohttp.ClientRequest.send)
    assert not inspect.iscoroutinefunction(TracedRequest.send)  # no coroutine of its own
