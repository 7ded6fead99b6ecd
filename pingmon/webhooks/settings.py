"""What a target says about the webhook its ping makes the provider send."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from pydantic import ConfigDict, Field, field_validator

from pingmon.fields import Duration, NumbersNotBooleans

DEFAULT_TIMEOUT_SECONDS = 120.0

Network = IPv4Network | IPv6Network


class WebhookSettings(NumbersNotBooleans):
    """Settings every provider's webhook shares; a webhook kind subclasses it with its
    credentials (``Secret`` fields, masked and never shown)."""

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

    def replay_window(self) -> float:
        """Seconds an accepted signature is remembered, to refuse its replay: a kind whose
        signatures carry a timestamp gives its tolerance (older ones are refused as stale).
        0: remembered only up to the tracker's memory bound."""
        return 0.0


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
