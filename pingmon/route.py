"""How one provider's requests travel: TLS verification and server name, and the proxy."""

from __future__ import annotations

import ipaddress
import re
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pingmon.proxies import PROXY_NONE, Proxy, environment_proxy, parse_proxy

if TYPE_CHECKING:
    from pingmon.providers.base import ProviderSettings, TLSSettings

_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?")


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Built once per provider entry, passed with every request to it.

    ``ssl`` is what aiohttp's ``ssl=`` takes; ``server_hostname`` is the TLS server name (SNI,
    and the name the certificate must carry), None for base_url's host; ``proxy`` is None for
    a direct connection.
    """

    ssl: ssl.SSLContext | bool = True
    server_hostname: str | None = None
    proxy: Proxy | None = None

    @property
    def proxy_address(self) -> str | None:
        """The proxy as aiohttp's ``proxy=`` takes it (credentials included), or None."""
        return None if self.proxy is None else self.proxy.address


DIRECT = TransportOptions()


def transport_options(settings: ProviderSettings) -> TransportOptions:
    """The options for one provider entry; its proxy is read from the environment now, when
    the configuration is (re)loaded, unless ``proxy_url`` names one or says ``none``."""
    return TransportOptions(
        ssl=ssl_context(settings.tls),
        server_hostname=settings.tls.server_name,
        proxy=provider_proxy(settings),
    )


def ssl_context(tls: TLSSettings) -> ssl.SSLContext | bool:
    """What to pass as aiohttp's ``ssl=``: True (verify with the system CAs), a context
    trusting ``ca_file``, or False when verification is switched off on purpose."""
    if tls.insecure_skip_verify:
        return False
    if tls.ca_file:
        return ssl.create_default_context(cafile=tls.ca_file)
    return True


def provider_proxy(settings: ProviderSettings) -> Proxy | None:
    """The provider's own proxy, none when it says ``none``, else the environment's."""
    if settings.proxy_url == PROXY_NONE:
        return None
    if settings.proxy_url is None:
        return environment_proxy(settings.base_url)
    proxy = parse_proxy(settings.proxy_url, "proxy_url")
    username, password = settings.proxy_username, settings.proxy_password
    if username is None or password is None:
        return proxy
    return Proxy(proxy.url, proxy.source, username.reveal(), password.reveal())


def check_server_name(value: str) -> str:
    """A TLS server name: a DNS name (``pbx.internal``) or an IP address, as a certificate
    names it (RFC 6066 3: SNI carries DNS names; an IP address is only verified)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if len(value.rstrip(".")) > 253 or not _DNS_NAME.fullmatch(value):
            raise ValueError(
                "must be a DNS name such as pbx.internal or an IP address, without scheme or port"
            ) from None
    return value
