"""A hostile provider on loopback that echoes the credentials it receives in every way a
server can: in a JSON error, a 200 body, a redirect's Location (percent-encoded), an
invalid status or header line (quoted back by aiohttp's parser errors), a header line too
long to parse, and placed across the 200-character cut of a detail.

The first path segment picks the behaviour: ``/echo`` (a 401 whose short message quotes
the credentials), ``/echo-token`` (a 200 whose ``status`` is "token <credential> is
expired", the README's example), ``/echo200`` (a 200 whose fields quote every header),
``/echo-status``, ``/echo-header``, ``/echo-long``, ``/echo-redirect``, ``/echo-cut``;
anything else is a healthy ``{"status": "ok"}``. Used as a forward proxy for http:// URLs,
it answers the same way, and echoes ``Proxy-Authorization`` too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote, urlsplit

# Headers that carry a credential, the one placed at a cut first.
SECRETISH = ("authorization", "x-api-key", "x-apikey", "x-k", "proxy-authorization")
# Longer than any header line limit a client sets (aiohttp's 8190 bytes; 64 KiB in curl).
LONG_LINE_BYTES = 80_000


@asynccontextmanager
async def echo_server() -> AsyncIterator[str]:
    """Serve on a free loopback port; yields the base URL ``http://127.0.0.1:PORT``."""
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request_line = (await reader.readline()).decode("latin-1")
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if length := int(headers.get("content-length", "0") or 0):
            await reader.readexactly(length)
        target = request_line.split(" ")[1] if " " in request_line else "/"
        path = urlsplit(target).path or "/"  # absolute-form when it serves as a proxy
        writer.write(answer(path.split("/")[1], headers))
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


def answer(case: str, headers: dict[str, str]) -> bytes:
    """The raw bytes of the answer to a request with these (lower-cased) headers."""
    said = echoed(headers)
    if case == "echo":
        message = f"bad credentials: {_credentials(headers)}"
        error = {"code": "x", "message": message, "type": "invalid_request_error"}
        return _response("401 Unauthorized", {"message": message, "error": error})
    if case == "echo-token":
        return _response("200 OK", {"status": f"token {first_credential(headers)} is expired"})
    if case == "echo200":
        fields = ("status", "responseType", "success", "object", "type", "message")
        return _response("200 OK", dict.fromkeys(fields, said))
    if case == "echo-status":
        return f"HTTP/1.1 XYZ {said}\r\nContent-Length: 0\r\n\r\n".encode("latin-1", "replace")
    if case == "echo-header":
        head = f"HTTP/1.1 200 OK\r\nBad Header {said}\r\nContent-Length: 0\r\n\r\n"
        return head.encode("latin-1", "replace")
    if case == "echo-long":
        # aiohttp quotes the first 100 bytes of a line too long to parse, then "...".
        secret = first_credential(headers)
        line = "X-Echo: " + "y" * (100 - 8 - len(secret) // 2) + secret
        line += "z" * LONG_LINE_BYTES
        return f"HTTP/1.1 200 OK\r\n{line}\r\nContent-Length: 0\r\n\r\n".encode("latin-1")
    if case == "echo-redirect":
        location = "http://127.0.0.1/next?" + "&".join(  # the credentials only: short
            f"{name}={quote(value, safe='')}"
            for name, value in _ordered(headers)
            if name in SECRETISH
        )
        return _response("302 Found", {}, extra=f"Location: {location}\r\n")
    if case == "echo-cut":
        return _response("401 Unauthorized", _across_the_cut(headers))
    return _response("200 OK", {"status": "ok"})


def echoed(headers: dict[str, str]) -> str:
    """Every header as ``name=value``, credentials first; a Basic token decoded; every
    credential also percent-encoded and JSON-escaped as PHP does (``\\/``)."""
    said = " ".join(f"{name}={value}" for name, value in _ordered(headers))
    for name in SECRETISH:
        value = headers.get(name)
        if value is None:
            continue
        said += f" {name}-pct={quote(value, safe='')}"
        said += f" {name}-json={json.dumps(value)[1:-1].replace('/', chr(92) + '/')}"
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "basic":
            said += f" decoded={_decoded(token)}"
    return said


def _ordered(headers: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(headers.items(), key=lambda item: item[0] not in SECRETISH)


def _credentials(headers: dict[str, str]) -> str:
    """The first credential header as ``name=value``, a Basic token also decoded: a short
    message, as servers write them (a judge quotes a message whole only while it is short;
    the long echoes are ``/echo200`` and ``/echo-status``)."""
    name = next((name for name in SECRETISH if name in headers), "none")
    said = f"{name}={headers.get(name, '')}"
    scheme, _, token = headers.get(name, "").partition(" ")
    return f"{said} decoded={_decoded(token)}" if scheme.lower() == "basic" else said


def first_credential(headers: dict[str, str]) -> str:
    """The first credential sent: a header value without its auth-scheme."""
    value = next((headers[name] for name in SECRETISH if name in headers), "")
    scheme, space, token = value.partition(" ")
    return token if space and scheme.lower() in ("bearer", "basic") else value


def _across_the_cut(headers: dict[str, str]) -> dict[str, object]:
    """An error whose message puts the credential across character 197 of the detail
    (the prefix each provider's detail puts before the message, as pingmon wrote it)."""
    secret = first_credential(headers)
    prefix = len("HTTP 401 x: " if "stripe-version" in headers else "HTTP 401: ")
    message = "x" * (198 - len(secret) - prefix) + secret + " and more text after it"
    return {"message": message, "error": {"code": "x", "message": message}, "success": 0}


def _decoded(token: str) -> str:
    try:
        return base64.b64decode(token).decode("latin-1")
    except (binascii.Error, ValueError):
        return ""


def _response(status: str, body: dict[str, object], extra: str = "") -> bytes:
    raw = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + raw
