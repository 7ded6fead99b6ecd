"""Loopback imitations of Stripe, 9pic, Simotel and a status page, for tests and ``pingmon demo``.

Each fake follows its provider's document (shared/seeds, PROVIDERS.md) and can be switched into
one precise misbehaviour per key with a :class:`Scenario`, from Python or, for other processes,
through ``PUT /_sandbox/scenarios/{key}``. Nothing here imports the daemon.

The Stripe and Simotel fakes also deliver a webhook after each successful ping once told where
(``set_webhook``), signed on their own so the daemon's verification is checked against an
independent implementation. How it is delivered is a :class:`WebhookScenario` per key
(destination id for Stripe, pinging username for Simotel, ``*`` for every key), set with
``set_webhook_scenario`` or ``PUT /_sandbox/webhook-scenarios/{key}`` with a JSON body such as
``{"name": "delayed", "delay": 0.5}``; ``DELETE /_sandbox/webhook-scenarios`` clears them and
``GET /_sandbox/webhook-deliveries`` lists every attempt with the status its receiver answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

from pingmon.sandbox.http import HttpCredentials, HttpFake
from pingmon.sandbox.ninepic import NinepicCredentials, NinepicFake, NinepicKey
from pingmon.sandbox.scenarios import (
    COMMON_SCENARIOS,
    FakeProvider,
    Scenario,
    SeenRequest,
)
from pingmon.sandbox.simotel import (
    SimotelAccount,
    SimotelCredentials,
    SimotelFake,
    SimotelWebhook,
)
from pingmon.sandbox.stripe import (
    STRIPE_WEBHOOK_SCENARIOS,
    StripeCredentials,
    StripeFake,
    StripeKey,
)
from pingmon.sandbox.stripe_webhooks import StripeWebhook, stripe_signature
from pingmon.sandbox.webhooks import (
    WEBHOOK_SCENARIOS,
    Delivery,
    WebhookScenario,
    WebhookSender,
    WebhookSendingFake,
)

KINDS: Final = ("stripe", "ninepic", "simotel", "http")


@dataclass(frozen=True)
class SandboxCredentials:
    """Every credential and resource id the fakes accept, to configure pingmon against them."""

    stripe: StripeCredentials = field(default_factory=StripeCredentials)
    ninepic: NinepicCredentials = field(default_factory=NinepicCredentials)
    simotel: SimotelCredentials = field(default_factory=SimotelCredentials)
    http: HttpCredentials = field(default_factory=HttpCredentials)


SANDBOX_CREDENTIALS: Final = SandboxCredentials()


class Sandbox:
    """All four fakes on loopback, each on its own port (a free one unless ``ports`` says)."""

    def __init__(self, host: str = "127.0.0.1", ports: Mapping[str, int] | None = None) -> None:
        chosen = dict(ports or {})
        unknown = sorted(set(chosen) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown fake(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
        self.stripe = StripeFake(host, chosen.get("stripe", 0), SANDBOX_CREDENTIALS.stripe)
        self.ninepic = NinepicFake(host, chosen.get("ninepic", 0), SANDBOX_CREDENTIALS.ninepic)
        self.simotel = SimotelFake(host, chosen.get("simotel", 0), SANDBOX_CREDENTIALS.simotel)
        self.http = HttpFake(host, chosen.get("http", 0), SANDBOX_CREDENTIALS.http)

    @property
    def fakes(self) -> tuple[FakeProvider, ...]:
        """The four fakes, in KINDS order."""
        return (self.stripe, self.ninepic, self.simotel, self.http)

    async def start(self) -> None:
        """Start every fake; if one cannot bind, stop the others so no port is left open."""
        started: list[FakeProvider] = []
        try:
            for fake in self.fakes:
                await fake.start()
                started.append(fake)
        except BaseException:
            for fake in reversed(started):
                await fake.stop()
            raise

    async def stop(self) -> None:
        """Stop every fake, cancelling slow answers still in flight."""
        for fake in self.fakes:
            await fake.stop()

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

    def urls(self) -> dict[str, str]:
        """``{"stripe": "http://127.0.0.1:PORT", ...}``: the base_url of each fake."""
        return {fake.kind: fake.url for fake in self.fakes}

    def clear_scenarios(self) -> None:
        """Every fake answers as documented again."""
        for fake in self.fakes:
            fake.clear_scenarios()


__all__ = [
    "COMMON_SCENARIOS",
    "KINDS",
    "SANDBOX_CREDENTIALS",
    "STRIPE_WEBHOOK_SCENARIOS",
    "WEBHOOK_SCENARIOS",
    "Delivery",
    "FakeProvider",
    "HttpCredentials",
    "HttpFake",
    "NinepicCredentials",
    "NinepicFake",
    "NinepicKey",
    "Sandbox",
    "SandboxCredentials",
    "Scenario",
    "SeenRequest",
    "SimotelAccount",
    "SimotelCredentials",
    "SimotelFake",
    "SimotelWebhook",
    "StripeCredentials",
    "StripeFake",
    "StripeKey",
    "StripeWebhook",
    "WebhookScenario",
    "WebhookSender",
    "WebhookSendingFake",
    "stripe_signature",
]
