"""What goes into a request, checked at load against what aiohttp and ssl will do with it.

Each check raises ValueError with a message fit for a problem line; none echoes a value that
may hold a credential (a base URL's password, a secret header).
"""

from __future__ import annotations

import re
import ssl
from typing import Annotated

from pydantic import AfterValidator
from pydantic.json_schema import WithJsonSchema
from yarl import URL

from pingmon.fields import control_name
from pingmon.files import FileRefused, read_bounded

# RFC 9110 5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 5.5: a field value holds no control character but HTAB; aiohttp refuses exactly these.
_FORBIDDEN_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9112 6: the message body's length, which aiohttp derives from the body it sends.
_FRAMING = frozenset({"content-length", "transfer-encoding"})
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# A CA bundle of every public root (Mozilla's) is about 220 KB.
MAX_CA_FILE_BYTES = 1 << 20
BASE_URL_EXAMPLE = "https://api.example.com"


def check_header_name(name: str) -> str:
    """A header name must be an RFC 9110 token: aiohttp would send anything else as is.
    The headers that frame the body are aiohttp's to set from it."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a header name: an RFC 9110 token holds only letters, digits "
            "and !#$%&'*+-.^_`|~"
        )
    if name.lower() in _FRAMING:
        raise ValueError(
            f"{name} frames the body, and is set from it (RFC 9112 6): one written here "
            "makes aiohttp raise, the server wait for bytes that never come (a timeout), "
            "or answer 400"
        )
    return name


def check_header_value(value: str) -> str:
    """A header value holds no CR, LF or other control character (aiohttp refuses the request)."""
    control = _FORBIDDEN_IN_VALUE.search(value)
    if control is not None:
        raise ValueError(
            f"holds a control character ({control_name(control.group())}); "
            "a header value is one line"
        )
    return value


HeaderName = Annotated[
    str,
    AfterValidator(check_header_name),
    WithJsonSchema({"type": "string", "pattern": f"^{_TOKEN.pattern}$"}),
]
HeaderValue = Annotated[str, AfterValidator(check_header_value)]


def check_base_url(url: str) -> str:
    """An absolute http(s) URL with a host, as aiohttp parses it (yarl), to which a target's
    path can be appended: no query, no fragment, no space or control character anywhere
    (yarl would drop a newline from the host, and keep a space in it)."""
    if "${" in url:
        raise ValueError(
            "holds ${...}, which pingmon does not expand: write the URL itself "
            "(only secrets take {env: NAME})"
        )
    absolute = f"must be an absolute http:// or https:// URL with a host, e.g. {BASE_URL_EXAMPLE}"
    if url != url.strip():
        raise ValueError("has a leading or trailing space; write the URL alone")
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(absolute)
    if _SPACE_OR_CONTROL.search(url):
        raise ValueError("holds a space or a control character; write the URL alone")
    try:
        parsed = URL(url)
    except ValueError as error:  # yarl's messages name the fault, never the URL
        raise ValueError(f"is not a valid URL ({error})") from None
    if not parsed.absolute or not parsed.host:
        raise ValueError(absolute)
    if parsed.explicit_port == 0:
        raise ValueError("port 0 cannot be connected to")
    _check_host(parsed.raw_host or "")
    _check_userinfo(parsed)
    if parsed.query_string or parsed.fragment or url.endswith(("?", "#")):
        raise ValueError("must not have a query or fragment: a target's path is appended to it")
    return url


def _check_host(host: str) -> None:
    """The host as the resolver will encode it (Python's ``idna`` codec, under
    ``getaddrinfo``): a label of more than 63 characters, or an empty one, raises
    UnicodeError at every check (RFC 1035 2.3.4)."""
    try:
        host.encode("idna")
    except UnicodeError:
        raise ValueError(
            "has a host name with an empty label or one longer than 63 characters "
            "(RFC 1035); it cannot be looked up"
        ) from None


def _check_userinfo(parsed: URL) -> None:
    """``user:password@`` as aiohttp sends it (``BasicAuth.from_url``): RFC 7617 Basic, the
    pair encoded in latin-1, the user name without a colon. Anything else raises at every
    check. The message never shows either part."""
    if parsed.user is None and parsed.password is None:
        return
    user, password = parsed.user or "", parsed.password or ""
    if ":" in user:
        raise ValueError(
            "has a user name holding ':' (%3A) in user:password@; HTTP Basic cannot send it "
            "(RFC 7617 2)"
        )
    try:
        f"{user}:{password}".encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            "has a user name or password in user:password@ with a character outside "
            "latin-1, which aiohttp cannot send as HTTP Basic; put the credential in a "
            "provider that takes it as a secret"
        ) from None


def has_userinfo(url: str) -> bool:
    """Whether the URL carries ``user[:password]@``, which aiohttp sends as Basic auth."""
    try:
        parsed = URL(url)
    except ValueError:
        return False
    return parsed.user is not None or parsed.password is not None


def check_ca_file(path: str) -> str:
    """A regular file of PEM certificates, loaded exactly as a check will load it
    (``ssl.create_default_context(cafile=...)``), after the bounded read that keeps a FIFO or
    /dev/zero from blocking or filling memory."""
    try:
        read_bounded(path, MAX_CA_FILE_BYTES)
    except FileRefused as refused:
        raise ValueError(f"cannot read {path}: {refused.reason}") from None
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as error:
        raise ValueError(f"{path} holds no usable PEM certificate ({error.reason})") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    return path
