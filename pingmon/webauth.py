"""Basic auth, response headers and cross-site refusal for pingmon's own server.

Basic auth follows exporter-toolkit's web/handler.go: every request on the server needs the
credentials of a user in ``basic_auth_users`` (bcrypt hashes), an unknown user costs the same
bcrypt as a known one, and outcomes are cached so that a scrape every 15 s does not pay a
50-250 ms bcrypt each time. The configured headers go on every response, 401s included.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import bcrypt
from aiohttp import hdrs, web

from pingmon.webconfig import BasicAuthUser, LiveWebConfig

# exporter-toolkit's stand-in for an unknown user: the bcrypt hash of "fakepassword", cost 10,
# so that a wrong name takes as long as a wrong password (no user enumeration by timing).
UNKNOWN_USER_HASH = b"$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
# RFC 7617 section 2.1: the charset parameter says the credentials are read as UTF-8.
CHALLENGE = 'Basic realm="pingmon", charset="UTF-8"'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Bounded:
    """A small LRU map of outcomes, so a flood of distinct credentials cannot grow memory."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, key: bytes) -> bool:
        if key in self._items:
            self._items.move_to_end(key)
            return True
        return False

    def add(self, key: bytes) -> None:
        self._items[key] = None
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class BasicAuthVerifier:
    """Checks ``Authorization: Basic`` headers against the configured users.

    Outcomes are cached under an HMAC (a key of this process) of the user, the hash it was
    checked against and the password, as exporter-toolkit caches them under user, hash and
    password; a changed hash is a new key. Granted and refused outcomes are cached apart, so a
    flood of wrong passwords never evicts Prometheus' entry. bcrypt runs in a worker thread
    (it releases the GIL), one at a time, so checks never wait for it on the event loop.
    """

    def __init__(self, granted_size: int = 64, refused_size: int = 1024) -> None:
        self._key = secrets.token_bytes(32)
        self._granted = _Bounded(granted_size)
        self._refused = _Bounded(refused_size)
        self._bcrypt = asyncio.Lock()

    async def verify(self, users: tuple[BasicAuthUser, ...], authorization: str | None) -> bool:
        """Whether the header names a configured user with that user's password."""
        credentials = _credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        hashed = _lookup(users, user)
        known = hashed is not None
        hashed = hashed or UNKNOWN_USER_HASH
        key = self._cache_key(user, hashed, password)
        if key in self._granted:
            return True
        if key in self._refused:
            return False
        async with self._bcrypt:
            if key not in self._granted and key not in self._refused:  # not while we waited
                matches = await asyncio.to_thread(_checkpw, password, hashed)
                (self._granted if matches and known else self._refused).add(key)
        return key in self._granted

    def _cache_key(self, user: bytes, hashed: bytes, password: bytes) -> bytes:
        message = b"".join((len(user).to_bytes(4, "big"), user, hashed, password))
        return hmac.new(self._key, message, hashlib.sha256).digest()


def _credentials(authorization: str | None) -> tuple[bytes, bytes] | None:
    """The user and password bytes as sent, or None: RFC 7617 section 2, the base64 of
    ``user:password`` after the case-insensitive scheme name ``Basic``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


def _lookup(users: tuple[BasicAuthUser, ...], user: bytes) -> bytes | None:
    """The user's hash, found in time independent of which user (or none) matches: every
    entry is compared, digest against digest, in constant time."""
    digest = hashlib.sha256(user).digest()
    found = None
    for entry in users:
        if hmac.compare_digest(entry.name_digest, digest):
            found = entry.hashed
    return found


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # bcrypt 5 refuses passwords over 72 bytes, which no hash can match
        return False


def protect(app: web.Application, live: LiveWebConfig) -> None:
    """Every request to ``app`` needs basic auth when the web configuration has users (but
    for the paths it exempts), and every response carries its headers."""
    verifier = BasicAuthVerifier()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        config = live.current()
        if config.users and not _exempt(request, config.exempt_paths):
            authorization = request.headers.get(hdrs.AUTHORIZATION)
            if not await verifier.verify(config.users, authorization):
                raise web.HTTPUnauthorized(headers={hdrs.WWW_AUTHENTICATE: CHALLENGE})
        return await handler(request)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(live.current().headers)

    app.middlewares.append(authenticate)
    app.on_response_prepare.append(add_headers)


def _exempt(request: web.Request, paths: frozenset[str]) -> bool:
    """Exempt by the route that will serve the request, not by the path as written, so that
    ``/-/healthy/`` or a percent-encoded spelling never reaches another handler unchecked."""
    if not paths or request.match_info.http_exception is not None:
        return False
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical in paths


def cross_site(request: web.Request) -> bool:
    """Whether a browser sent this request on behalf of another site: the check of Go's
    net/http CrossOriginProtection. ``Sec-Fetch-Site`` (Fetch Metadata) other than
    same-origin or none; without it, an ``Origin`` whose host is not the request's Host.
    Programs (curl, Prometheus, kubectl) send neither header and pass."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return False
    try:
        origin_host = urlsplit(origin).netloc
    except ValueError:
        return True
    host = request.headers.get(hdrs.HOST, "")
    return not origin_host or origin_host.lower() != host.lower()
