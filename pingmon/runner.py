"""Run one check: gate, limits, provider request, HTTP attempts with retries, judgement."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pingmon.backoff import RateLimitGate, TokenBucket
from pingmon.client import UrlMemo, send
from pingmon.config import Config
from pingmon.errors import ErrorClass, ResourceExhausted, TransportError
from pingmon.providers import PROVIDER_TYPES, Provider
from pingmon.providers.base import (
    DETAIL_MAX_CHARS,
    PreparedRequest,
    Verdict,
    short,
    url_credentials,
)
from pingmon.proxies import Proxy
from pingmon.redaction import NO_REDACTION, Redactor
from pingmon.results import CheckResult
from pingmon.route import DIRECT, TransportOptions, provider_proxy, transport_options
from pingmon.slots import Slots
from pingmon.targets import Target
from pingmon.timebox import Deadlines
from pingmon.wire import Sessions, WireTrace

log = logging.getLogger("pingmon.runner")
# A detail longer than this is cut before it is masked (and cut again to DETAIL_MAX_CHARS
# after): it bounds the work per check; a secret cut here is masked as a piece at a cut.
DETAIL_SCAN_CHARS = 65_536


# The class of a check ended by an unexpected exception: pingmon could not judge the answer
# as the provider's documented success, which is what bad_response means to an alert.
INTERNAL_ERROR_CLASS = ErrorClass.BAD_RESPONSE


class DetailMemo:
    """A target's last detail as ``final_detail`` shows it, made again only when the detail
    changes: a healthy target's is the same at every check ("HTTP 200"). One per target
    (``TargetPlan``), whose redactor is fixed, so it is bounded by the configuration."""

    __slots__ = ("_detail", "_shown")

    def __init__(self) -> None:
        self._detail: str | None = None
        self._shown = ""

    def __call__(self, redactor: Redactor, detail: str) -> str:
        """``final_detail(redactor, detail)``; ``redactor`` is the same at every call."""
        if detail != self._detail:
            self._shown = final_detail(redactor, detail)
            self._detail = detail
        return self._shown


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """Everything needed to check one target, built once per configuration."""

    target: Target
    provider: Provider[Any, Any]
    credential: str
    provider_slots: Slots | None
    budget: TokenBucket | None
    transport: TransportOptions = DIRECT
    # Masks every wire form of the provider's and the target's secrets in its details.
    redactor: Redactor = NO_REDACTION
    # The target's URL as aiohttp parses it, kept between its checks: each plan its own
    # (not copied by ``replace``), built and dropped with the configuration.
    url: UrlMemo = field(default_factory=UrlMemo, init=False, repr=False, compare=False)
    # Its last detail as results show it, likewise.
    detail: DetailMemo = field(default_factory=DetailMemo, init=False, repr=False, compare=False)


def build_plans(
    config: Config,
    previous: dict[str, TargetPlan] | None = None,
    rate_shares: Callable[[str], int] = lambda credential: 1,
) -> dict[str, TargetPlan]:
    """One plan per target. What a provider entry needs (its instance, transport options and
    slots) is built once and shared by its targets; targets of one credential share its
    token bucket, kept across reloads while the rate stays the same. ``rate_shares`` says
    between how many processes a credential's rate_limit is split (``sharding.by: target``)."""
    old_budgets = {p.credential: p.budget for p in (previous or {}).values() if p.budget}
    budgets: dict[str, TokenBucket] = {}
    shared: dict[str, TargetPlan] = {}  # by provider name: a template for its targets
    plans: dict[str, TargetPlan] = {}
    for target in config.targets:
        template = shared.get(target.provider_name)
        if template is None:
            template = _provider_template(target, old_budgets, budgets, rate_shares)
            shared[target.provider_name] = template
        own = (secret.reveal() for secret in target.params.secrets())
        plans[target.name] = replace(
            template, target=target, redactor=template.redactor.extended(own)
        )
    return plans


def config_redactor(config: Config) -> Redactor:
    """One redactor for every secret a configuration holds, in every form its providers
    send it, their proxies' from the environment included: the log filter's."""
    values: list[str] = []
    for settings in config.settings.providers.values():
        provider = PROVIDER_TYPES[settings.type](settings)
        values.extend(wire_secrets(provider, provider_proxy(settings)))
    values.extend(
        secret.reveal() for target in config.targets for secret in target.params.secrets()
    )
    return Redactor(values)


def wire_secrets(provider: Provider[Any, Any], proxy: Proxy | None) -> tuple[str, ...]:
    """What a provider entry's requests carry: the provider's credentials, and those of the
    proxy they go through (from proxy_username/password or the environment's proxy URL),
    which aiohttp sends as ``Proxy-Authorization: Basic`` (RFC 9110 §11.7.2)."""
    through = url_credentials(proxy.address) if proxy is not None else ()
    return (*provider.wire_secrets(), *through)


def final_detail(redactor: Redactor, detail: str) -> str:
    """What a result shows of a detail: on one line, every secret masked, valid Unicode, and
    only then cut to ``DETAIL_MAX_CHARS`` (cutting first would leave a secret across the cut
    unmasked).

    A server's text can hold lone surrogates: a JSON string's ``"\\ud800"`` escape, or a
    header's bytes that are not UTF-8 (aiohttp decodes them with ``surrogateescape``). No
    UTF-8 output can carry them (printing one to stdout raises), so each is written as its
    ``\\uXXXX`` escape, after masking (no secret holds one)."""
    masked = well_formed(redactor.mask(short(detail[:DETAIL_SCAN_CHARS])))
    if len(masked) <= DETAIL_MAX_CHARS:
        return masked
    return masked[: DETAIL_MAX_CHARS - 3] + "..."


def well_formed(text: str) -> str:
    """``text`` with every lone surrogate (U+D800..U+DFFF) as a ``\\uXXXX`` escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _provider_template(
    target: Target,
    old_budgets: dict[str, TokenBucket],
    budgets: dict[str, TokenBucket],
    rate_shares: Callable[[str], int],
) -> TargetPlan:
    settings = target.provider
    provider = PROVIDER_TYPES[settings.type](settings)
    transport = transport_options(settings)
    credential = provider.credential_key()
    if settings.rate_limit and credential not in budgets:
        rate = settings.rate_limit / rate_shares(credential)
        old = old_budgets.get(credential)
        keep = old is not None and old.rate == rate
        budgets[credential] = old if old is not None and keep else TokenBucket(rate)
    return TargetPlan(
        target=target,
        provider=provider,
        credential=credential,
        provider_slots=Slots(settings.max_concurrency) if settings.max_concurrency else None,
        budget=budgets.get(credential),
        transport=transport,
        redactor=Redactor(wire_secrets(provider, transport.proxy)),
    )


class RandomBytes:
    """``os.urandom``'s bytes, drawn ``size`` at a time: one system call per 256 check ids
    rather than one per check (it costs several µs on a busy machine). A forked child
    draws its own (``os.register_at_fork``), never its parent's."""

    __slots__ = ("_at", "_buffer", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._buffer = b""
        self._at = 0

    def take(self, count: int) -> bytes:
        """``count`` (at most ``size``) random bytes never handed out before."""
        if self._at + count > len(self._buffer):
            self._buffer, self._at = os.urandom(self._size), 0
        start = self._at
        self._at = start + count
        return self._buffer[start : self._at]

    def forget(self) -> None:
        """Drop what is left of the bytes drawn."""
        self._buffer, self._at = b"", 0


_RANDOM = RandomBytes()
os.register_at_fork(after_in_child=_RANDOM.forget)


def check_id() -> str:
    """A fresh random UUID (version 4) as 32 lowercase hex digits: ``uuid.uuid4().hex``,
    the same bits (from ``os.urandom``), without building a ``uuid.UUID`` or an int, nor a
    system call per check."""
    raw = bytearray(_RANDOM.take(16))
    raw[6] = raw[6] & 0x0F | 0x40  # RFC 9562 §5.4: the version, 4
    raw[8] = raw[8] & 0x3F | 0x80  # and the variant, 0b10
    return raw.hex()


def retry_delay(attempt: int, rand: random.Random) -> float:
    """A short jittered pause before retry ``attempt`` (1-based): 0.25-0.5 s, then doubling,
    at most 2 s, so retries stay well inside one interval."""
    return min(2.0, 0.5 * 2.0 ** (attempt - 1)) * rand.uniform(0.5, 1.0)


class Runner:
    """Checks targets on the shared client sessions, within the global and provider limits."""

    def __init__(
        self,
        sessions: Sessions,
        gate: RateLimitGate,
        concurrency: int,
        rand: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        on_internal_error: Callable[[], None] = lambda: None,
        on_exhausted: Callable[[ResourceExhausted], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.gate = gate
        self.slots = Slots(concurrency)
        self._deadlines = Deadlines()  # every attempt's timeout on one timer
        self._rand = rand or random.Random()
        self._clock = clock
        self._on_internal_error = on_internal_error
        # Given: a check pingmon had no resources for is skipped and handed to it (a daemon
        # must not page for its own fault); None: it is the target's `connect` failure.
        self._on_exhausted = on_exhausted

    async def run(self, plan: TargetPlan) -> CheckResult | None:
        """Check a target, or return None when its credential is backing off or (with
        ``on_exhausted``) pingmon ran out of file descriptors for it.

        Total: an unexpected exception anywhere in the check (a pingmon bug, never a
        provider's answer) becomes this target's result instead of escaping, so no other
        target's result is lost (``_internal_error``)."""
        started = time.perf_counter()
        try:
            return await self._run(plan)
        except Exception as error:  # noqa: BLE001 - the safety net; cancellation passes
            verdict = self._internal_error(plan, error)
            return CheckResult(
                target=plan.target.name,
                provider=plan.target.provider_name,
                error_class=verdict.error_class,
                http_status=None,
                duration_seconds=time.perf_counter() - started,
                attempts=0,
                detail=final_detail(plan.redactor, verdict.detail),
                finished_at=self._clock(),
            )

    async def _run(self, plan: TargetPlan) -> CheckResult | None:
        if self.gate.is_closed(plan.credential):
            return None
        if plan.budget is not None and (wait := plan.budget.reserve()) > 0:
            await asyncio.sleep(wait)
        slots = self.slots  # a reload may replace it: the one taken is the one given back
        if not slots.try_acquire():
            await slots.acquire()
        try:
            if plan.provider_slots is None:
                checked = await self._check_in_slot(plan)
            else:
                checked = await self._check_in_provider_slot(plan, plan.provider_slots)
        finally:
            slots.release()
        if checked is None:
            return None
        result, retry_after = checked
        self._apply_backoff(plan, result, retry_after)
        return result

    async def _check_in_provider_slot(
        self, plan: TargetPlan, slots: Slots
    ) -> tuple[CheckResult, str | None] | None:
        """``_check_in_slot`` holding one of the provider's slots (``max_concurrency``)."""
        if not slots.try_acquire():
            await slots.acquire()
        try:
            return await self._check_in_slot(plan)
        finally:
            slots.release()

    async def _check_in_slot(self, plan: TargetPlan) -> tuple[CheckResult, str | None] | None:
        """All attempts of one check once the slots are taken, and the last response's
        Retry-After header; None when the credential's gate closed meanwhile or (with
        ``on_exhausted``) pingmon ran out of resources for it."""
        if self.gate.is_closed(plan.credential):  # a sibling got a 429 while we waited
            return None
        target = plan.target
        provider = plan.provider
        request = provider.request(target.params, check_id() if provider.check_ids else "")
        started = time.perf_counter()
        tries = requests = 0  # pingmon's attempts; the requests they put on the wire
        try:
            while True:
                tries += 1
                sent_at = self._clock()
                verdict, status, retry_after, sent = await self._attempt(plan, request)
                requests += sent
                if not self._may_retry(verdict, tries, target.schedule.retries):
                    break
                await asyncio.sleep(retry_delay(tries, self._rand))
        except ResourceExhausted as error:  # raised only when on_exhausted is given
            if self._on_exhausted is not None:
                self._on_exhausted(error)
            return None
        result = CheckResult(
            target=target.name,
            provider=target.provider_name,
            error_class=verdict.error_class,
            http_status=status,
            duration_seconds=time.perf_counter() - started,
            attempts=requests,
            detail=plan.detail(plan.redactor, verdict.detail),
            finished_at=self._clock(),
            sent_at=sent_at,
            event_id=verdict.event_id,
        )
        return result, retry_after

    async def _attempt(
        self, plan: TargetPlan, request: PreparedRequest
    ) -> tuple[Verdict, int | None, str | None, int]:
        """One attempt's verdict, status and Retry-After, and the requests it put on the
        wire (at least one: an attempt that never reached the server still counts)."""
        target = plan.target
        wire = WireTrace()
        try:
            response = await send(
                self.sessions,
                request,
                timeout=target.schedule.timeout,
                max_body_bytes=target.schedule.max_body_bytes,
                transport=plan.transport,
                wire=wire,
                url=plan.url(request.url),
                deadlines=self._deadlines,
            )
        except TransportError as error:
            if isinstance(error, ResourceExhausted) and self._on_exhausted is not None:
                raise
            return Verdict(error.error_class, error.detail), None, None, max(1, wire.requests)
        try:
            verdict = plan.provider.assess(target.params, request, response)
        except Exception as error:  # noqa: BLE001 - a judge's bug keeps the status it judged
            verdict = self._internal_error(plan, error)
        requests = max(1, wire.requests)
        return verdict, response.status, response.headers.get("Retry-After"), requests

    def _internal_error(self, plan: TargetPlan, error: Exception) -> Verdict:
        """The verdict for an unexpected exception: logged once with its traceback, counted
        in ``pingmon_internal_errors_total``. The detail names the exception's type only:
        its message may quote a credential or a server's body."""
        name = type(error).__name__
        log.error(
            f"internal error while checking a target, recorded as {INTERNAL_ERROR_CLASS}",
            exc_info=error,
            extra={
                "target": plan.target.name,
                "provider": plan.target.provider_name,
                "exception_type": name,
            },
        )
        self._on_internal_error()
        return Verdict(INTERNAL_ERROR_CLASS, f"internal error: {name}", retry=False)

    @staticmethod
    def _may_retry(verdict: Verdict, attempts: int, retries: int) -> bool:
        return attempts <= retries and verdict.error_class.retryable and verdict.retry is not False

    def _apply_backoff(
        self, plan: TargetPlan, result: CheckResult, retry_after: str | None
    ) -> None:
        if result.error_class is ErrorClass.RATE_LIMITED:
            decision = self.gate.on_rate_limited(plan.credential, retry_after)
            log.warning(
                "rate limited: backing off every target of this credential",
                extra={
                    "target": result.target,
                    "provider": result.provider,
                    "backoff_seconds": round(decision.delay, 3),
                    "consecutive_429": decision.consecutive,
                    "retry_after_seconds": decision.retry_after,
                    "capped": decision.capped,
                },
            )
        elif result.success:
            self.gate.on_success(plan.credential)
