"""Scenario switches, and the loopback server machinery every sandbox fake shares.

A fake answers a request in two steps, as the real provider would: first its documented checks
(credentials, ids, body), then the scenario set for the request's key (a destination, an event,
an account, a path), so a test can make one otherwise healthy resource misbehave in one precise
way. The transport-level misbehaviours (slow, huge, reset, not_http, garbage) live here; each
provider module supplies only its own bodies.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from types import TracebackType
from typing import Any, ClassVar, Final, Self, TypeVar

from aiohttp import web

WILDCARD: Final = "*"

COMMON_SCENARIOS: Final = frozenset(
    {
        "ok",
        "auth",
        "forbidden",
        "not_found",
        "rate_limited",
        "server_error",
        "slow",
        "garbage",
        "huge",
        "reset",
        "not_http",
        "flaky",
        "bad_body",
    }
)

HUGE_BODY_BYTES: Final = 64 * 1024 * 1024
_HUGE_CHUNK: Final = b"x" * 65536
_HUGE_HEAD: Final = b'{"huge": true, "padding": "'
_HUGE_TAIL: Final = b'"}'

# What a client meets when the port it was given belongs to something that does not speak HTTP.
NOT_HTTP_BYTES: Final = b"SSH-2.0-OpenSSH_9.6p1 pingmon-sandbox\r\n\x00\x01\x02 not http\r\n"
GARBAGE_HTML: Final = (
    "<html><head><title>Welcome</title></head><body>\x00\x7f{{ this is not json ]] "
    "<!-- captive portal --></body></html>"
)

T = TypeVar("T")


@dataclass(frozen=True)
class Scenario:
    """How a fake should misbehave for one key; the default answers as the documents say."""

    name: str = "ok"
    retry_after: str | None = None
    delay: float = 30.0
    failures: int = 1

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")
        if self.failures < 0:
            raise ValueError(f"failures must be >= 0, got {self.failures}")


OK: Final = Scenario()


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """One request that reached a provider route, kept so tests can count and inspect them."""

    at: float
    key: str
    method: str
    path: str
    headers: dict[str, str]


Reply = Callable[[Scenario], web.Response]
"""Builds a provider's own answer (success or a documented error) for a body-level scenario."""


def scenario_from_json(payload: object) -> Scenario:
    """Read a scenario sent to a control route; raise ValueError naming what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    known = {f.name for f in fields(Scenario)}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}")
    name = payload.get("name", "ok")
    retry_after = payload.get("retry_after")
    delay = payload.get("delay", OK.delay)
    failures = payload.get("failures", OK.failures)
    if not isinstance(name, str):
        raise ValueError("name must be a string")
    if retry_after is not None and not isinstance(retry_after, str):
        raise ValueError("retry_after must be a string or null")
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise ValueError("delay must be a number")
    if isinstance(failures, bool) or not isinstance(failures, int):
        raise ValueError("failures must be an integer")
    return Scenario(name=name, retry_after=retry_after, delay=float(delay), failures=failures)


class ScenarioBook:
    """The scenarios set per key, and the flaky counters that go with them."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self._by_key: dict[str, Scenario] = {}
        self._failed: Counter[str] = Counter()

    def set(self, key: str, scenario: Scenario | str) -> Scenario:
        """Set key's scenario (WILDCARD: every key); restarts the flaky counters it owns."""
        chosen = Scenario(scenario) if isinstance(scenario, str) else scenario
        if chosen.name not in self.names:
            valid = ", ".join(sorted(self.names))
            raise ValueError(f"unknown scenario {chosen.name!r}; valid: {valid}")
        self._by_key[key] = chosen
        if key == WILDCARD:
            self._failed.clear()
        else:
            self._failed.pop(key, None)
        return chosen

    def clear(self) -> None:
        """Forget every scenario, so each key answers as documented again."""
        self._by_key.clear()
        self._failed.clear()

    def take(self, key: str) -> Scenario:
        """The scenario to play for one request to key; a flaky key fails `failures` times."""
        scenario = self._by_key.get(key) or self._by_key.get(WILDCARD) or OK
        if scenario.name != "flaky":
            return scenario
        if self._failed[key] < scenario.failures:
            self._failed[key] += 1
            return Scenario("server_error")
        return OK


def garbage() -> web.Response:
    """A 200 that is not JSON at all, like a captive portal or a misrouted proxy."""
    return web.Response(status=200, text=GARBAGE_HTML, content_type="text/html")


async def stream_huge(request: web.Request) -> web.StreamResponse:
    """Stream a JSON-looking body of up to 64 MiB, so a client's body size cap is exercised."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    chunks = (HUGE_BODY_BYTES - len(_HUGE_HEAD) - len(_HUGE_TAIL)) // len(_HUGE_CHUNK)
    try:
        await response.prepare(request)
        await response.write(_HUGE_HEAD)
        for _ in range(chunks):
            await response.write(_HUGE_CHUNK)
        await response.write(_HUGE_TAIL)
        await response.write_eof()
    except ConnectionError:
        pass  # the client read what it wanted and hung up, which is the point
    return response


def reset(request: web.Request) -> web.Response:
    """Abort the TCP connection with an RST and no response at all."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0 turns the close into an RST, as a crashing peer or a middlebox would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return _never_sent()


def not_http(request: web.Request) -> web.Response:
    """Write bytes that are not HTTP and close, as a wrong service on the port would."""
    transport = request.transport
    if transport is not None:
        transport.write(NOT_HTTP_BYTES)
        transport.close()
    return _never_sent()


def _never_sent() -> web.Response:
    # aiohttp needs a response object; writing it fails on the closed transport and is ignored.
    return web.Response(status=500)


_RAW_ANSWERS: Final[dict[str, Callable[[web.Request], web.Response]]] = {
    "reset": reset,
    "not_http": not_http,
}


def with_retry_after(response: web.Response, scenario: Scenario) -> web.Response:
    """Add the scenario's raw Retry-After to a 429, and only then: no provider documents it."""
    if response.status == 429 and scenario.retry_after is not None:
        response.headers["Retry-After"] = scenario.retry_after
    return response


class FakeProvider:
    """One provider imitation on its own loopback aiohttp server, with scenario switches."""

    kind: ClassVar[str] = ""
    scenario_names: ClassVar[frozenset[str]] = COMMON_SCENARIOS

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[SeenRequest] = []
        self._book = ScenarioBook(self.scenario_names)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._stalled: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        """The base URL to configure, e.g. ``http://127.0.0.1:40123``; only once started."""
        if self._url is None:
            raise RuntimeError(f"the {self.kind} fake is not started")
        return self._url

    def add_control_routes(self, app: web.Application) -> None:
        """Register the ``/_sandbox/...`` routes, before the provider's catch-all ones."""
        app.add_routes(CONTROL_ROUTES)

    def add_routes(self, app: web.Application) -> None:
        """Register the provider's own routes (after the control routes)."""
        raise NotImplementedError

    async def start(self) -> None:
        """Listen on host:port (port 0 picks a free one)."""
        if self._runner is not None:
            return
        app = web.Application()
        app[FAKE] = self
        self.add_control_routes(app)
        self.add_routes(app)
        # handler_cancellation stops a slow or huge answer as soon as its client hangs up.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop listening; cancel slow and huge answers still in flight instead of waiting."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for task in list(self._stalled):
            task.cancel()
        await runner.cleanup()
        self._url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def set_scenario(self, key: str, scenario: Scenario | str) -> None:
        """Make key ("*" for every key) misbehave; raises ValueError for an unknown name."""
        self._book.set(key, scenario)

    def clear_scenarios(self) -> None:
        """Every key answers as documented again."""
        self._book.clear()

    @property
    def in_flight(self) -> int:
        """Slow or huge answers still running: 0 once their clients have hung up."""
        return len(self._stalled)

    def count(self, key: str | None = None) -> int:
        """How many provider requests arrived, in total or for one key."""
        if key is None:
            return len(self.requests)
        return sum(1 for seen in self.requests if seen.key == key)

    def counts_by_key(self) -> dict[str, int]:
        """Provider requests per key, for the control route."""
        return dict(Counter(seen.key for seen in self.requests))

    def record(self, request: web.Request, key: str) -> None:
        """Remember a provider request before anything is checked, so tests see every attempt."""
        seen = SeenRequest(
            at=time.monotonic(),
            key=key,
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
        )
        self.requests.append(seen)

    async def play(self, request: web.Request, key: str, reply: Reply) -> web.StreamResponse:
        """Answer a request that passed the documented checks, as key's scenario says."""
        scenario = self._book.take(key)
        if scenario.name == "slow":
            await self._stall(asyncio.sleep(scenario.delay))
            return reply(OK)
        if scenario.name == "huge":
            return await self._stall(stream_huge(request))
        if scenario.name == "garbage":
            return garbage()
        if scenario.name in _RAW_ANSWERS:
            return _RAW_ANSWERS[scenario.name](request)
        return with_retry_after(reply(scenario), scenario)

    async def _stall(self, work: Awaitable[T]) -> T:
        # Tracked so stop() can cancel it rather than wait out a 30 s sleep or a 64 MiB body.
        task = asyncio.current_task()
        assert task is not None
        self._stalled.add(task)
        try:
            return await work
        finally:
            self._stalled.discard(task)


FAKE: Final = web.AppKey("pingmon_sandbox_fake", FakeProvider)

CONTROL_ROUTES: Final = web.RouteTableDef()


@CONTROL_ROUTES.put("/_sandbox/scenarios/{key:.+}")
async def put_scenario(request: web.Request) -> web.Response:
    """Set a scenario from another process (the demo, an end-to-end test)."""
    fake = request.app[FAKE]
    key = request.match_info["key"]
    try:
        scenario = scenario_from_json(await request.json())
        fake.set_scenario(key, scenario)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        valid = sorted(fake.scenario_names)
        return web.json_response({"error": str(exc), "valid": valid}, status=400)
    return web.json_response({"key": key, "scenario": asdict(scenario)})


@CONTROL_ROUTES.delete("/_sandbox/scenarios")
async def delete_scenarios(request: web.Request) -> web.Response:
    """Clear every scenario of this fake."""
    request.app[FAKE].clear_scenarios()
    return web.json_response({"cleared": True})


@CONTROL_ROUTES.get("/_sandbox/requests")
async def get_requests(request: web.Request) -> web.Response:
    """Count the provider requests seen, in total and per key."""
    fake = request.app[FAKE]
    return web.json_response({"total": fake.count(), "by_key": fake.counts_by_key()})
