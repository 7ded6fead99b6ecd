"""JSON from untrusted text: parsed without ever raising, shown without leaking its content."""

from __future__ import annotations

import json
import json.scanner
import re
from typing import Any, NamedTuple

# Longer scalars, and every object or array, are named by type and size, never quoted.
SCALAR_MAX_CHARS = 64


class ParsedJson(NamedTuple):
    """The outcome of parsing: ``value`` when ``problem`` is None, else why the text was
    refused (a phrase such as ``"not JSON"``, to follow "body is" or "payload is"). A named
    tuple: one is made for every check that judges JSON (a frozen dataclass costs more)."""

    value: Any = None
    problem: str | None = None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__("duplicate key")
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _DuplicateKey(_first_duplicate(pairs))
    return value


def _first_duplicate(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


# One decoder, built once: ``json.loads`` with a hook builds a decoder and its scanner on
# every call (~4 µs, more than parsing a small body). Its memo is cleared after each call.
_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicate_keys)
# JSONDecoder.decode's parts, done here as it does them: its scanner (the C one where there is
# one, as the decoder's own) and the white space it skips around the value (RFC 8259 §2).
# (typeshed wants a make_scanner as its context; any decoder is one, its own TODO says)
_SCAN = json.scanner.make_scanner(_DECODER)  # type: ignore[arg-type]
_SPACES = " \t\n\r"
_SPACE = re.compile(f"[{_SPACES}]*").match


def _decode(text: str) -> Any:
    """``_DECODER.decode(text)``, its two Python layers (``decode``, ``raw_decode``) done
    here as they do them: one JSON value between white space, else ValueError."""
    try:
        # (``in`` of "" holds too: an empty text goes the long way)
        value, end = _SCAN(text, _past_space(text, 0) if text[:1] in _SPACES else 0)
    except StopIteration:
        raise ValueError("Expecting value") from None
    if end != len(text) and _past_space(text, end) != len(text):
        raise ValueError("Extra data")
    return value


def _past_space(text: str, at: int) -> int:
    """Where the white space from ``at`` on ends (``at`` when there is none)."""
    space = _SPACE(text, at)
    return space.end() if space else at


def parse_json(text: str) -> ParsedJson:
    """``text`` parsed as JSON, total: every failure is a ``problem``, never an exception.

    - nesting deeper than the interpreter's recursion limit (json raises RecursionError,
      not ValueError) is refused, so a parsed value is never deeper than Python can walk;
    - an object with a duplicate key is refused: RFC 8259 section 4 leaves its meaning to
      the parser ("the names within an object SHOULD be unique"), so ``{"status": "down",
      "status": "ok"}`` is ambiguous, never a success;
    - an integer longer than Python's int_max_str_digits is refused (a ValueError).
    NaN and Infinity, which Python's own encoder writes, are accepted as json accepts them.
    """
    try:
        return ParsedJson(json_value(text))
    except JsonRefused as refused:
        return ParsedJson(problem=refused.problem)


class JsonRefused(ValueError):
    """Why ``json_value`` refused a text: ``problem`` is ``parse_json``'s."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def json_value(text: str) -> Any:
    """``parse_json(text).value`` without the ``ParsedJson`` (a judge of every check needs
    the value only); JsonRefused with ``parse_json``'s problem where that has one."""
    if text.startswith("\ufeff"):  # as json.loads: a BOM left in a str is not JSON
        raise JsonRefused("not JSON")
    try:
        return _decode(text)
    except _DuplicateKey as error:
        raise JsonRefused(f"ambiguous JSON: duplicate key {shown(error.key)}") from None
    except RecursionError:
        raise JsonRefused("JSON nested too deeply") from None
    except ValueError:
        raise JsonRefused("not JSON") from None


def shown(value: object, limit: int = SCALAR_MAX_CHARS) -> str:
    """A JSON value as a detail may show it: a scalar whose JSON text is at most ``limit``
    characters is quoted as JSON (``"down"``, ``3``, ``true``, ``null``); anything else is
    named by type and size (``an object``, ``an array of 3``, ``a string of 512
    characters``), since a server's object or long string may hold a credential."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, str):
        if len(value) > limit:  # before dumping: the string may be a megabyte long
            return f"a string of {len(value)} characters"
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= limit else f"a string of {len(value)} characters"
    if value is None or isinstance(value, bool | int | float):
        number = _number_text(value)
        return number if number is not None and len(number) <= limit else "a long number"
    return f"a {type(value).__name__}"


def _number_text(value: bool | int | float | None) -> str | None:
    try:
        return json.dumps(value)
    except ValueError:  # an int beyond int_max_str_digits has no decimal text
        return None
