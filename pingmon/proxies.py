"""Forward proxies: a provider's own ``proxy_url``, and the environment's read as curl reads it.

curl's rules (lib/url.c ``detect_proxy``, lib/noproxy.c, checked against curl 7.88):
- a URL's scheme picks ``<scheme>_proxy``, then ``<SCHEME>_PROXY``, then ``all_proxy`` and
  ``ALL_PROXY``; a variable set to the empty string counts as unset. (curl skips the uppercase
  ``HTTP_PROXY`` because of CGI's httpoxy; pingmon is no CGI program and reads it, as Go,
  Prometheus and Python do.)
- ``no_proxy``, else ``NO_PROXY``, lists hosts that go direct, separated by commas (or blanks):
  exactly ``*`` means every host; a name matches itself and its subdomains (``example.com`` and
  ``.example.com`` both match ``api.example.com``), case-insensitively, ignoring one leading and
  one trailing dot; an IP address matches only an equal address or a CIDR range
  (``10.0.0.0/8``, ``fd00::/8``); an entry with a port matches nothing. Loopback is not exempt
  unless listed.
- a proxy without a scheme is ``http://``; without a port it is at 1080 (``http``) or 443
  (``https``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

PROXY_NONE = "none"  # proxy_url: none -- straight to the provider, whatever the environment says
_DEFAULT_PORTS = {"http": 1080, "https": 443}  # curl's CURLOPT_PROXYPORT defaults
_NO_PROXY_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class Proxy:
    """A forward proxy. ``url`` is ``scheme://host:port`` and never holds credentials; they
    stay out of ``repr``. ``source`` says where it was configured (``proxy_url``,
    ``HTTPS_PROXY``...)."""

    url: str
    source: str
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """The URL as aiohttp takes it, with the credentials as userinfo: aiohttp turns them
        into ``Proxy-Authorization: Basic`` (RFC 9110 11.7.2), on the request itself for an
        http:// target and on the CONNECT for an https:// one."""
        if self.username is None:
            return self.url
        scheme, rest = self.url.split("://", 1)
        userinfo = f"{quote(self.username, safe='')}:{quote(self.password or '', safe='')}"
        return f"{scheme}://{userinfo}@{rest}"

    def secret_values(self) -> tuple[str, ...]:
        """The credentials, for masking (they come from the environment, not from a Secret)."""
        return tuple(value for value in (self.username, self.password) if value)


def parse_proxy(value: str, source: str) -> Proxy:
    """A proxy from a curl-style value: ``[scheme://][user:password@]host[:port][/]``.

    ValueError says what is wrong without quoting the value, which may hold a password.
    """
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError("is not a proxy URL such as http://proxy.internal:3128") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{scheme}:// proxies are not supported; use an http:// or https:// one")
    host = parts.hostname
    if not host:
        raise ValueError("names no proxy host; use a form such as http://proxy.internal:3128")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be scheme://host:port, with no path, query or fragment")
    hostport = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{hostport}:{port or _DEFAULT_PORTS[scheme]}"
    username = None if parts.username is None else unquote(parts.username)
    password = None if username is None else unquote(parts.password or "")
    if username is not None:
        check_basic_credentials(username, password or "")
    return Proxy(url, source, username, password)


def check_proxy_url(value: str) -> str:
    """A provider's ``proxy_url``: ``none``, or an absolute http(s) URL naming host and port,
    without credentials (they are secrets: ``proxy_username`` and ``proxy_password``)."""
    if value == PROXY_NONE:
        return value
    if not re.match(r"(?i)https?://", value):
        raise ValueError(
            f"must be {PROXY_NONE!r} or an http:// or https:// URL such as "
            "http://proxy.internal:3128"
        )
    proxy = parse_proxy(value, "proxy_url")
    if proxy.username is not None:
        raise ValueError(
            "must not hold credentials: set proxy_username and proxy_password, which are secrets"
        )
    if urlsplit(value).port is None:
        raise ValueError("must name the proxy's port, e.g. http://proxy.internal:3128")
    return proxy.url


def check_basic_credentials(username: str, password: str) -> None:
    """Refuse what Basic authentication cannot carry (RFC 7617 2): a colon in the user name,
    control characters, and (aiohttp encodes proxy credentials as Latin-1) other scripts."""
    if ":" in username:
        raise ValueError("a proxy user name must not contain ':' (RFC 7617)")
    for text in (username, password):
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
            raise ValueError("proxy credentials must not contain control characters")
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("proxy credentials must be Latin-1 text") from None


def environment_proxy(url: str, environ: Mapping[str, str] | None = None) -> Proxy | None:
    """The environment's proxy for ``url``, or None when it goes direct (see the module).

    ValueError names the variable when the proxy it holds cannot be used.
    """
    env = os.environ if environ is None else environ
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    names = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
    source = next((name for name in names if env.get(name)), None)
    if source is None:
        return None
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
    if no_proxy_matches(parts.hostname or "", no_proxy):
        return None
    try:
        return parse_proxy(env[source], source)
    except ValueError as error:
        raise ValueError(f"{source} {error}") from None


def no_proxy_matches(host: str, no_proxy: str) -> bool:
    """Whether ``host`` (a name or an IP address, without port) is exempt by ``no_proxy``."""
    if no_proxy == "*":  # only exactly this: curl reads " * " as a host name
        return True
    entries = [entry for entry in _NO_PROXY_SEPARATORS.split(no_proxy) if entry]
    host = host.strip("[]").lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return any(_address_in(address, entry) for entry in entries)
    name = host.removesuffix(".")
    for entry in entries:
        pattern = entry.lower().removesuffix(".").removeprefix(".")
        if pattern and (name == pattern or name.endswith("." + pattern)):
            return True
    return False


def _address_in(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        network = ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return False
    return network.version == address.version and address in network
