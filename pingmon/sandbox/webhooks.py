"""Webhooks the fakes send after a successful ping, as Stripe and Simotel do, with misbehaviours.

A fake answers its ping first and only then hands the delivery to a :class:`WebhookSender`, which
POSTs it from a background task so the fake never waits on (or breaks because of) the receiver.
What each provider puts in the request (body, signature, credentials) is built by the provider
module; what is shared here is when and how often it is sent, per :class:`WebhookScenario`.
Signing is deliberately independent of the daemon's verification: both must agree.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import Any, ClassVar, Final

import aiohttp
from aiohttp import web

from pingmon.sandbox.scenarios import WILDCARD, FakeProvider

WEBHOOK_SCENARIOS: Final = frozenset({"delivered", "delayed", "never", "badly_signed", "replayed"})
DELIVERY_TIMEOUT_SECONDS: Final = 5.0
# A capture replayed this long after it was signed is outside Stripe's default 300 s tolerance.
OLD_SIGNATURE_AGE_SECONDS: Final = 600

# Delivery.copy: which request of a scenario's sequence a record is about.
ORIGINAL: Final = "original"
REPLAY: Final = "replay"
OLD_REPLAY: Final = "old_replay"


@dataclass(frozen=True)
class WebhookScenario:
    """How a fake should deliver the webhook of a successful ping; the default delivers at once.

    ``delay`` (seconds, sub-second allowed) is only used by ``delayed``.
    """

    name: str = "delivered"
    delay: float = 1.0

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")


DELIVERED: Final = WebhookScenario()


@dataclass(frozen=True, slots=True)
class OutgoingWebhook:
    """One request to send, built by the provider module: its bytes are sent as they are."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    copy: str = ORIGINAL

    def __repr__(self) -> str:
        # Headers carry signatures and Basic credentials: never show them.
        return f"OutgoingWebhook(url={self.url!r}, copy={self.copy!r}, {len(self.body)} bytes)"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery attempt and what the receiver answered, for tests to inspect.

    ``status`` is None when no answer came (refused connection, timeout, reset) and ``error``
    then names the exception class. ``sent_at`` is ``time.monotonic()`` when the request left.
    ``copy`` says which request of the scenario this is: original, replay or old_replay.
    """

    kind: str
    key: str
    url: str
    status: int | None
    scenario: str
    sent_at: float
    copy: str = ORIGINAL
    error: str | None = None


def webhook_scenario_from_json(payload: object) -> WebhookScenario:
    """Read a webhook scenario sent to the control route; raise ValueError naming what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    known = {f.name for f in fields(WebhookScenario)}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}")
    name = payload.get("name", DELIVERED.name)
    delay = payload.get("delay", DELIVERED.delay)
    if not isinstance(name, str):
        raise ValueError("name must be a string")
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise ValueError("delay must be a number")
    return WebhookScenario(name=name, delay=float(delay))


class WebhookScenarioBook:
    """The webhook scenarios set per key, WILDCARD standing for every key."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self._by_key: dict[str, WebhookScenario] = {}

    def set(self, key: str, scenario: WebhookScenario | str) -> WebhookScenario:
        """Set key's scenario; raise ValueError for a name this provider does not play."""
        chosen = WebhookScenario(scenario) if isinstance(scenario, str) else scenario
        if chosen.name not in self.names:
            valid = ", ".join(sorted(self.names))
            raise ValueError(f"unknown webhook scenario {chosen.name!r}; valid: {valid}")
        self._by_key[key] = chosen
        return chosen

    def get(self, key: str) -> WebhookScenario:
        """The scenario for one delivery to key."""
        return self._by_key.get(key) or self._by_key.get(WILDCARD) or DELIVERED

    def clear(self) -> None:
        """Every key is delivered at once again."""
        self._by_key.clear()


Build = Callable[[], Sequence[OutgoingWebhook]]
"""Builds a scenario's requests at sending time, so a signature timestamp is the send time."""


class WebhookSender:
    """POSTs webhooks from background tasks on one client session; never raises to the fake."""

    def __init__(self, kind: str, timeout: float = DELIVERY_TIMEOUT_SECONDS) -> None:
        self.kind = kind
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Deliveries scheduled or in flight (a delayed one counts while it waits)."""
        return len(self._tasks)

    async def start(self) -> None:
        """Open the client session; must run inside the event loop that will send."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def stop(self) -> None:
        """Cancel every pending delivery, wait for them to end, then close the session."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def dispatch(self, key: str, scenario: WebhookScenario, build: Build) -> None:
        """Send build()'s requests in order in the background, as scenario says (never: none).

        Does nothing while the sender is stopped: a fake that no longer runs delivers nothing.
        """
        if self._session is None or scenario.name == "never":
            return
        delay = scenario.delay if scenario.name == "delayed" else 0.0
        task = asyncio.create_task(self._deliver(self._session, key, scenario.name, delay, build))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Return once no delivery is pending; bound it with asyncio.timeout in tests."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(
        self,
        session: aiohttp.ClientSession,
        key: str,
        scenario: str,
        delay: float,
        build: Build,
    ) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        for outgoing in build():
            sent_at = time.monotonic()
            status, error = await self._post(session, outgoing)
            self.deliveries.append(
                Delivery(
                    kind=self.kind,
                    key=key,
                    url=outgoing.url,
                    status=status,
                    scenario=scenario,
                    sent_at=sent_at,
                    copy=outgoing.copy,
                    error=error,
                )
            )

    @staticmethod
    async def _post(
        session: aiohttp.ClientSession, outgoing: OutgoingWebhook
    ) -> tuple[int | None, str | None]:
        """The receiver's status, or None and the exception class name when none came."""
        try:
            async with session.post(
                outgoing.url,
                data=outgoing.body,
                headers=dict(outgoing.headers),
                allow_redirects=False,
            ) as response:
                return response.status, None  # the body is not read: only the status matters
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            # ValueError: a malformed URL given by the caller; the fake must keep answering.
            return None, type(exc).__name__


BuildFor = Callable[[str], Sequence[OutgoingWebhook]]
"""Builds the requests of one delivery for a webhook scenario's name."""


class WebhookSendingFake(FakeProvider):
    """A fake whose successful pings deliver a webhook, as the scenario for their key says."""

    webhook_scenario_names: ClassVar[frozenset[str]] = WEBHOOK_SCENARIOS

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.webhook_scenarios = WebhookScenarioBook(self.webhook_scenario_names)
        self.webhook_sender = WebhookSender(self.kind)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook delivery attempt so far, in the order they were answered."""
        return self.webhook_sender.deliveries

    async def start(self) -> None:
        await super().start()
        await self.webhook_sender.start()

    async def stop(self) -> None:
        """Stop answering first, then cancel the deliveries still pending (a delayed one too)."""
        await super().stop()
        await self.webhook_sender.stop()

    def add_control_routes(self, app: web.Application) -> None:
        super().add_control_routes(app)
        app[WEBHOOK_SCENARIO_BOOK] = self.webhook_scenarios
        app[WEBHOOK_SENDER] = self.webhook_sender
        app.add_routes(WEBHOOK_CONTROL_ROUTES)

    def set_webhook_scenario(self, key: str, scenario: WebhookScenario | str) -> None:
        """Make key's webhooks ("*": every key's) misbehave; ValueError for an unknown name."""
        self.webhook_scenarios.set(key, scenario)

    def clear_webhook_scenarios(self) -> None:
        """Deliver every webhook at once again."""
        self.webhook_scenarios.clear()

    def clear_scenarios(self) -> None:
        """Every key answers, and delivers its webhooks, as documented again."""
        super().clear_scenarios()
        self.clear_webhook_scenarios()

    async def answer_then_deliver(
        self, request: web.Request, response: web.StreamResponse, key: str, build: BuildFor
    ) -> web.StreamResponse:
        """Send the ping's answer, then schedule its webhook, so it never overtakes the answer."""
        scenario = self.webhook_scenarios.get(key)
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError:
            pass  # the caller hung up; the provider did the work and still sends the event
        self.webhook_sender.dispatch(key, scenario, partial(build, scenario.name))
        return response


WEBHOOK_SCENARIO_BOOK: Final = web.AppKey("pingmon_sandbox_webhook_scenarios", WebhookScenarioBook)
WEBHOOK_SENDER: Final = web.AppKey("pingmon_sandbox_webhook_sender", WebhookSender)

WEBHOOK_CONTROL_ROUTES: Final = web.RouteTableDef()


@WEBHOOK_CONTROL_ROUTES.put("/_sandbox/webhook-scenarios/{key:.+}")
async def put_webhook_scenario(request: web.Request) -> web.Response:
    """Set how the webhooks of one key ("*": every key) are delivered."""
    book = request.app[WEBHOOK_SCENARIO_BOOK]
    key = request.match_info["key"]
    try:
        scenario = book.set(key, webhook_scenario_from_json(await request.json()))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        return web.json_response({"error": str(exc), "valid": sorted(book.names)}, status=400)
    return web.json_response({"key": key, "scenario": asdict(scenario)})


@WEBHOOK_CONTROL_ROUTES.delete("/_sandbox/webhook-scenarios")
async def delete_webhook_scenarios(request: web.Request) -> web.Response:
    """Deliver every webhook at once again."""
    request.app[WEBHOOK_SCENARIO_BOOK].clear()
    return web.json_response({"cleared": True})


@WEBHOOK_CONTROL_ROUTES.get("/_sandbox/webhook-deliveries")
async def get_webhook_deliveries(request: web.Request) -> web.Response:
    """Every delivery attempt so far and the status its receiver answered."""
    sender = request.app[WEBHOOK_SENDER]
    deliveries: list[dict[str, Any]] = [asdict(delivery) for delivery in sender.deliveries]
    return web.json_response({"pending": sender.pending, "deliveries": deliveries})
