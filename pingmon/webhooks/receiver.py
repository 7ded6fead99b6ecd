"""``POST /webhooks/{target}``: take a provider's webhook, prove it authentic, match it.

Nothing from the request reaches a log line or a label but the target's configured name, the
reason, and the peer's address: never a header value, a signature or the body.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import web

from pingmon.throttle import LOG_EVERY_SECONDS, LogThrottle
from pingmon.webhooks.reasons import STATUS, Reason
from pingmon.webhooks.settings import source_allowed
from pingmon.webhooks.tracker import Delivered, Held, WebhookTarget, WebhookTracker
from pingmon.webhooks.verify import Authentic, Refused

log = logging.getLogger("pingmon.webhooks")

# A provider's ping event is under 1 KB (a thin event, a form of a few fields); nothing
# legitimate comes near this, and nothing larger is read.
WEBHOOK_MAX_BODY_BYTES = 65536
# The default wait for a body once its headers have come (the server's header_timeout).
BODY_TIMEOUT_SECONDS = 10.0


class RefusalLog:
    """One warning per target and reason every ``LOG_EVERY_SECONDS``, with how many were
    left out meanwhile: a flood of forged requests must not flood the log."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._throttle = LogThrottle(LOG_EVERY_SECONDS, clock)

    def __call__(self, target: str, refused: Refused, peer: str | None) -> None:
        suppressed = self._throttle.admit((target, refused.reason))
        if suppressed is None:
            return
        fields: dict[str, object] = {
            "target": target,
            "reason": refused.reason.value,
            "detail": refused.detail,
            "peer": peer,
        }
        if suppressed:
            fields["suppressed"] = suppressed
        level = logging.INFO if STATUS[refused.reason] == 200 else logging.WARNING
        log.log(level, "webhook not counted", extra=fields)


def add_webhook_routes(
    app: web.Application,
    tracker: WebhookTracker,
    prefix: str,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
) -> None:
    """The receiver's routes; a second segment (an event's name, as some providers append it
    to the URL) reaches the kind's verification as ``path_event``. A body that has not
    arrived ``body_timeout`` seconds after the headers is answered 408."""
    refusal_log = RefusalLog()

    async def receive(request: web.Request) -> web.Response:
        return await _receive(request, tracker, refusal_log, body_timeout)

    app.router.add_post(prefix + "/webhooks/{target}", receive)
    app.router.add_post(prefix + "/webhooks/{target}/{event}", receive)


async def _receive(
    request: web.Request, tracker: WebhookTracker, refusal_log: RefusalLog, body_timeout: float
) -> web.Response:
    name = request.match_info["target"]
    target = tracker.target(name)
    if target is None:
        tracker.refuse(None, Reason.UNKNOWN_TARGET)
        # The name is the sender's, not ours: never a label, and only shortened in the log.
        refused = Refused(Reason.UNKNOWN_TARGET, f"no webhook target named {name[:64]!r}")
        refusal_log("", refused, request.remote)
        return _answer(refused)
    outcome = await _judge(request, target, tracker, body_timeout)
    if isinstance(outcome, Refused):
        refusal_log(name, outcome, request.remote)
        return _answer(outcome)
    if isinstance(outcome, Held):
        log.debug("webhook held for its ping", extra={"target": name, "detail": outcome.detail})
    else:
        log.debug(
            "webhook delivered",
            extra={"target": name, "roundtrip_seconds": round(outcome.roundtrip_seconds, 4)},
        )
    return web.json_response({"received": True})


async def _judge(
    request: web.Request, target: WebhookTarget, tracker: WebhookTracker, body_timeout: float
) -> Delivered | Held | Refused:
    if not source_allowed(request.remote, target.networks):
        refused = Refused(Reason.FORBIDDEN_SOURCE, "the peer address is not in allowed_sources")
        tracker.refuse(target.name, refused.reason)
        return refused
    body = await _read_bounded(request, body_timeout)
    if body is None:
        refused = Refused(Reason.TOO_LARGE, f"body above {WEBHOOK_MAX_BODY_BYTES} bytes")
        tracker.refuse(target.name, refused.reason)
        return refused
    verdict = _verify(request, target, body)
    if isinstance(verdict, Refused):
        tracker.refuse(target.name, verdict.reason)
        return verdict
    return tracker.accept(target.name, verdict)


def _verify(request: web.Request, target: WebhookTarget, body: bytes) -> Authentic | Refused:
    """The provider type's webhook kind judges the delivery (pure; see WebhookKind)."""
    path_event = request.match_info.get("event")
    return target.kind.verify(body, request.headers, path_event, target.settings, time.time())


async def _read_bounded(request: web.Request, timeout: float) -> bytes | None:
    """The body, or None when it is larger than the limit (never read past it).

    Raises HTTPRequestTimeout (408, and the connection is closed) when it has not all
    arrived within ``timeout``: a body sent a byte at a time must not hold a connection."""
    length = request.content_length
    if length is not None and length > WEBHOOK_MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while chunk := await request.content.read(WEBHOOK_MAX_BODY_BYTES + 1 - size):
                chunks.append(chunk)
                size += len(chunk)
                if size > WEBHOOK_MAX_BODY_BYTES:
                    return None
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text="the body did not arrive in time\n", headers={"Connection": "close"}
        ) from None
    return b"".join(chunks)


def _answer(refused: Refused) -> web.Response:
    status = refused.status or STATUS[refused.reason]
    headers = {"WWW-Authenticate": 'Basic realm="pingmon"'} if status == 401 else None
    body: dict[str, object] = {"received": False, "reason": refused.reason.value}
    if status == 200:
        body["detail"] = refused.detail
    return web.json_response(body, status=status, headers=headers)
