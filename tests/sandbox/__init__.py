"""Tests proving the sandbox fakes follow their providers' documents, and shared helpers."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from pingmon.sandbox import SANDBOX_CREDENTIALS, FakeProvider

CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=5)

STRIPE = SANDBOX_CREDENTIALS.stripe
NINEPIC = SANDBOX_CREDENTIALS.ninepic
SIMOTEL = SANDBOX_CREDENTIALS.simotel
HTTP = SANDBOX_CREDENTIALS.http


def basic(username: str, password: str = "") -> str:
    """An ``Authorization`` value for HTTP Basic."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


@dataclass(frozen=True)
class Call:
    """A request a fake answers with its documented success, and the key it is filed under."""

    method: str
    path: str
    key: str
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None


def good_call(fake: FakeProvider) -> Call:
    """The well-formed, authenticated ping for each kind of fake."""
    if fake.kind == "stripe":
        path = f"/v2/core/event_destinations/{STRIPE.test_destination}/ping"
        headers = {"Authorization": f"Bearer {STRIPE.test_key}"}
        return Call("POST", path, STRIPE.test_destination, headers, b"{}")
    if fake.kind == "ninepic":
        path = f"/api/v1/ext/{NINEPIC.org_id}/event/{NINEPIC.event_id}/ping"
        return Call("GET", path, str(NINEPIC.event_id), {"X-API-Key": NINEPIC.api_key})
    if fake.kind == "simotel":
        account = SIMOTEL.both
        headers = {
            "Authorization": basic(account.username, account.password),
            "X-APIKEY": account.api_key,
            "Content-Type": "application/json",
        }
        return Call("POST", "/api/v4/setting/ping/act", account.username, headers, b"{}")
    return Call("GET", HTTP.path, HTTP.path)


@dataclass(frozen=True)
class Answer:
    """One answer, read in full: headers stay case-insensitive, body is parsed JSON or None."""

    status: int
    headers: Mapping[str, str]
    text: str
    body: Any


async def fetch(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
) -> Answer:
    """Send one request without following redirects and read the whole answer."""
    async with session.request(
        method, url, headers=headers, data=data, allow_redirects=False, timeout=timeout
    ) as response:
        text = await response.text()
        is_json = response.content_type == "application/json"
        body = json.loads(text) if is_json and text else None
        return Answer(response.status, response.headers, text, body)


async def send(session: aiohttp.ClientSession, fake: FakeProvider, call: Call) -> Answer:
    """Send call to fake."""
    return await fetch(
        session, call.method, fake.url + call.path, headers=call.headers, data=call.data
    )
