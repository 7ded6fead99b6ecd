"""Reading a response body: bounded, decoded, and judged absent where HTTP says there is none."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import aiohttp
from aiohttp import http_exceptions
from aiohttp.compression_utils import (
    BrotliDecompressor,
    DecompressionBaseHandler,
    ZLibDecompressor,
    ZSTDDecompressor,
)

READ_CHUNK_BYTES = 65_536

# RFC 9110 §9.3.2: an answer to HEAD has no content; §15.2, §15.3.5, §15.4.5: neither has a
# 1xx, a 204 or a 304, whatever Content-Length says (it describes the representation).
BODILESS_METHODS = frozenset({"HEAD"})
BODILESS_STATUSES = frozenset({*range(100, 200), 204, 304})

# aiohttp decodes a body itself when Content-Encoding is exactly one of these (its parser's
# rule, case aside); anything else reaches pingmon still coded.
AIOHTTP_DECODES = frozenset({"gzip", "deflate", "br", "zstd"})
# RFC 9110 §8.4.1.3: a recipient SHOULD take x-gzip as gzip; §8.4.1 identity is no coding.
_CODING_ALIASES = {"x-gzip": "gzip"}
_NO_CODING = frozenset({"", "identity"})
_DECODERS: dict[str, Callable[[], DecompressionBaseHandler]] = {
    "gzip": lambda: ZLibDecompressor(encoding="gzip"),
    "deflate": lambda: ZLibDecompressor(encoding="deflate"),
    "br": BrotliDecompressor,
    "zstd": ZSTDDecompressor,
}


def bodiless(method: str, status: int) -> bool:
    """Whether an answer to ``method`` with ``status`` carries no body by definition."""
    return method.upper() in BODILESS_METHODS or status in BODILESS_STATUSES


@dataclass(slots=True)
class Body:
    """What was read of one body: the decoded bytes (at most the limit), whether more came,
    and why it broke off, if it did (then ``chunks`` hold what was read)."""

    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    truncated: bool = False
    error: str | None = None

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


async def read_body(body: Body, response: aiohttp.ClientResponse, method: str, limit: int) -> None:
    """Read ``response``'s body into ``body``, decoded from its content coding, at most
    ``limit`` bytes; nothing at all for a bodiless answer.

    ``limit`` counts decoded bytes (as blackbox_exporter's body_size_limit does); aiohttp
    decodes incrementally, so a small compressed body that expands without end is cut at
    the limit, never held whole. Raises what aiohttp raises when the body breaks off; what
    was read stays in ``body``.
    """
    if bodiless(method, response.status):
        return
    content_encoding = response.headers.get("Content-Encoding", "")
    decode: Callable[[bytes], Iterable[bytes]] = _as_it_is
    if content_encoding.strip().lower() not in _NO_CODING:
        decode = _Decoding(leftover_codings(content_encoding))
    elif (response.content_length or 0) > limit:  # Content-Length is the decoded size too
        body.truncated = True  # known too large without reading a byte of it
        return
    content = response.content
    while not _ended(content) and (chunk := await content.read(READ_CHUNK_BYTES)):
        for piece in decode(chunk):
            body.size += len(piece)
            if body.size > limit:
                body.truncated = True
                return
            body.chunks.append(piece)


def _ended(content: aiohttp.StreamReader) -> bool:
    """Whether ``content.read`` would give b"" (all of the body read, nothing went wrong):
    a body read whole in one chunk is not asked for its end once more (a coroutine)."""
    return content.at_eof() and content.exception() is None


def _as_it_is(chunk: bytes) -> tuple[bytes]:
    """A chunk of a body with no content coding left on it."""
    return (chunk,)


def leftover_codings(content_encoding: str) -> tuple[str, ...]:
    """The content codings still on a body after aiohttp, in the order they were applied
    (RFC 9110 §8.4: Content-Encoding lists them so), for pingmon to undo last first.

    Empty when there is none, when aiohttp decoded the one coding itself, or when one of
    them is unknown (such a body is passed through undecoded, as before). Left over are
    what aiohttp does not read: ``x-gzip`` and lists such as ``gzip, identity`` or
    ``deflate, gzip``.
    """
    if content_encoding.strip().lower() in AIOHTTP_DECODES:
        return ()
    codings = [token.strip().lower() for token in content_encoding.split(",")]
    named = tuple(_CODING_ALIASES.get(c, c) for c in codings if c not in _NO_CODING)
    return named if all(coding in _DECODERS for coding in named) else ()


class _Decoding:
    """Undoes ``codings`` chunk by chunk with aiohttp's decoders; each call yields pieces of
    at most ``READ_CHUNK_BYTES``, lazily, so a caller that stops at its limit never makes
    a decoder expand more (a bomb in any layer stays bounded). A decoder that fails raises
    ``ClientPayloadError`` caused by ``ContentEncodingError``, as aiohttp's own do."""

    def __init__(self, codings: Sequence[str]) -> None:
        self._codings = tuple(reversed(codings))
        self._decoders = [_DECODERS[coding]() for coding in self._codings]

    def __call__(self, chunk: bytes) -> Iterator[bytes]:
        if not self._decoders:
            return iter((chunk,))
        return self._through(0, chunk)

    def _through(self, layer: int, data: bytes) -> Iterator[bytes]:
        if layer == len(self._decoders):
            yield data
            return
        decoder = self._decoders[layer]
        piece = self._step(layer, data)
        while piece:
            yield from self._through(layer + 1, piece)
            piece = self._step(layer, b"") if decoder.data_available else b""

    def _step(self, layer: int, data: bytes) -> bytes:
        try:
            return self._decoders[layer].decompress_sync(data, READ_CHUNK_BYTES)
        except Exception:  # noqa: BLE001 - zlib, brotli and zstd each raise their own
            coding = self._codings[layer]
            cause = http_exceptions.ContentEncodingError(f"Can not decode {coding}")
            raise aiohttp.ClientPayloadError(f"content coding {coding}") from cause


def describe_body_error(error: BaseException) -> str:
    """Why a body broke off, in our words: aiohttp's messages invent a "400" and quote bytes."""
    if isinstance(error, TimeoutError):
        return "the body did not arrive whole within the timeout"
    cause = http_cause(error)
    if isinstance(cause, http_exceptions.ContentEncodingError):
        return "its content coding could not be decoded"
    if isinstance(cause, http_exceptions.ContentLengthError):
        return "the connection closed before Content-Length bytes came"
    if isinstance(cause, http_exceptions.TransferEncodingError):
        return "its chunked framing is broken or cut short"
    if isinstance(cause, http_exceptions.HttpProcessingError):
        return f"its framing is broken ({type(cause).__name__})"
    if isinstance(error, aiohttp.ClientConnectionError | OSError):
        return "the connection closed before the body was complete"
    return type(error).__name__


def http_cause(error: BaseException) -> http_exceptions.HttpProcessingError | None:
    """The parser's own exception behind an aiohttp client error (the deepest in its chain:
    aiohttp wraps a ``LineTooLong`` in a plain ``HttpProcessingError``), if there is one."""
    found = None
    seen: BaseException | None = error
    for _ in range(8):  # chains are short; a bound guards against a cycle
        if seen is None:
            break
        if isinstance(seen, http_exceptions.HttpProcessingError):
            found = seen
        seen = seen.__cause__ or seen.__context__
    return found
