"""What a target says about the webhook its ping makes the provider send."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pingmon.fields import Duration, Secret

DEFAULT_TIMEOUT_SECONDS = 120.0
# stripe-python's Webhook.DEFAULT_TOLERANCE, and what every official Stripe SDK uses.
STRIPE_DEFAULT_TOLERANCE_SECONDS = 300.0

Network = IPv4Network | IPv6Network


class WebhookSettings(BaseModel):
    """Settings every provider's webhook shares."""

    # Validation messages must not echo the input: it may hold a literal secret.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    timeout: Duration = Field(
        default=DEFAULT_TIMEOUT_SECONDS,
        description="How long after its ping the webhook may take (at most the interval).",
    )
    allowed_sources: tuple[str, ...] = Field(
        default=(),
        description="Addresses or CIDRs the delivery may come from (the peer of the connection); "
        "empty allows any.",
    )

    @field_validator("allowed_sources")
    @classmethod
    def _networks(cls, sources: tuple[str, ...]) -> tuple[str, ...]:
        for source in sources:
            try:
                ip_network(source, strict=False)
            except ValueError:
                raise ValueError(
                    f"{source!r} is not an IP address or CIDR, e.g. 192.168.51.0/24"
                ) from None
        return sources

    def networks(self) -> tuple[Network, ...]:
        return tuple(ip_network(source, strict=False) for source in self.allowed_sources)


class StripeWebhookSettings(WebhookSettings):
    """A Stripe event destination's endpoint: deliveries carry a ``Stripe-Signature``."""

    signing_secret: Secret = Field(description="The destination's signing secret, whsec_...")
    tolerance: Duration = Field(
        default=STRIPE_DEFAULT_TOLERANCE_SECONDS,
        description="How old a signature's timestamp may be (Stripe's SDKs: 5 minutes).",
    )


class SimotelWebhookSettings(WebhookSettings):
    """Simotel's Event Webhooks authenticate with HTTP Basic ("API Username"/"API Password")
    and nothing else: no signature, no timestamp."""

    username: Secret = Field(description="Simotel's Event Webhooks 'API Username'.")
    password: Secret = Field(description="Simotel's Event Webhooks 'API Password'.")


def source_allowed(peer: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether the connection's peer address is in the allow list (an empty list allows all)."""
    if not networks:
        return True
    if peer is None:
        return False
    try:
        address = ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
