"""The configuration file read and parsed within bounds (size, nesting, values), faults as lines.

The bounds are checked on the parser's event stream before any node is built, so a file past
them costs at most one pass of libyaml's parser, in constant memory: a YAML bomb (aliases of
aliases) is refused at the alias that passes the bound, never expanded.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
)
from yaml.nodes import Node
from yaml.reader import Reader, ReaderError

try:  # libyaml's parser when PyYAML was built with it: 3x faster on a file of 10,000 targets
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

from pingmon.errors import ConfigError, Problem
from pingmon.fields import MAX_NESTING
from pingmon.files import FileRefused, read_bounded

# 4 MiB holds ~120,000 targets of a name and a provider (block YAML or compact JSON), 4 times
# what a Kubernetes ConfigMap can carry; past tens of thousands of targets, pingmon is sharded.
MAX_FILE_BYTES = 4 << 20
# A file with no YAML document at all is refused, at start and on reload alike: it is what a
# watcher sees of a file caught between truncation and writing, and adopting it would drop
# every target. ``{}`` says "all defaults" on purpose.
EMPTY_FILE = "the file is empty (nothing but whitespace or comments); write {} for all defaults"
# Scalars, lists and mappings, each alias counted as the copy it stands for: ~600,000 in a
# realistic file of 4 MiB, while 1,000,000 bounds the densest file and any alias expansion to
# about 450 MB and 10 s of loading.
MAX_VALUES = 1_000_000
# PyYAML's pure-Python parser names what it found ("but got ':'"), and words a fault the same
# whether or not PyYAML has libyaml; it reads about 100 KB/s, so only files up to this size are
# parsed again for its words (larger ones get libyaml's).
_WORDING_MAX_CHARS = 256 << 10
# How many parts of a path a problem shows before "...".
_PATH_PARTS_SHOWN = 8
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def load_yaml(source: str) -> dict[str, Any]:
    """The file's mapping of settings; ConfigError with its one problem when the file cannot
    be read, is empty, is not UTF-8, passes a bound or is not valid YAML."""
    text = read_text(source)
    if _blank(text):
        raise ConfigError(source, [Problem("", EMPTY_FILE)])
    data: object = _json_document(text)
    problem = None
    if data is None:
        problem = _shape_problem(text)
    if data is None and problem is None:
        data, problem = _construct(text)
    if problem is not None:
        raise ConfigError(source, [problem])
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the file must hold a mapping of settings")])
    return data


def _blank(text: str) -> bool:
    """Nothing but whitespace and comment lines (stops at the first line with content)."""
    if text.isspace() or not text:
        return True
    return re.search(r"^[ \t\r\f\v]*[^\s#]", text, re.MULTILINE) is None


def read_text(source: str, limit: int = MAX_FILE_BYTES) -> str:
    """A configuration file's text: a regular file of at most ``limit`` bytes, UTF-8;
    ConfigError with its one problem otherwise."""
    try:
        content = read_bounded(source, limit)
    except FileRefused as refused:
        raise ConfigError(
            source, [Problem("", f"cannot read the file: {refused.reason}")]
        ) from None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(source, [_encoding_problem(content, error.start)]) from None


def _encoding_problem(content: bytes, offset: int) -> Problem:
    """Where the first byte that is not UTF-8 sits; a UTF-16 or UTF-32 file is named as such."""
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            return Problem("", f"the file is {encoding} (it starts with a byte order mark); "
                               "save it as UTF-8")  # fmt: skip
    line_start = content.rfind(b"\n", 0, offset) + 1
    column = len(content[line_start:offset].decode("utf-8", errors="replace")) + 1
    line = content.count(b"\n", 0, offset) + 1
    return Problem(
        "",
        f"line {line}, column {column}: not UTF-8 (byte 0x{content[offset]:02x} at offset "
        f"{offset}); save the file as UTF-8",
    )


def _shape_problem(text: str) -> Problem | None:
    """The first bound the document passes, or its first syntax fault; None when it is within
    bounds. Read from libyaml's events in constant memory, before any node is built."""
    try:
        return _walk(text, _BaseLoader)
    except yaml.YAMLError as error:
        return _syntax_problem(text, error)


def _walk(text: str, loader: type[_BaseLoader] | type[yaml.SafeLoader]) -> Problem | None:
    shape = _Shape()
    for event in yaml.parse(text, Loader=loader):
        message = shape.problem(event)
        if message is not None:
            return Problem(shape.path(), f"{_where(event.start_mark)}: {message}")
    return None


def _json_document(text: str) -> dict[str, Any] | None:
    """The file's mapping when the file is JSON that YAML reads as the same values, read as
    JSON (a generated file often is: 100,000 targets in 0.1 s rather than 10); else None, and
    YAML reads it (and words any fault).

    JSON is YAML's flow style, read the same but where this refuses it: a backslash escape
    (YAML reads ``\\ud83d\\ude00`` as two code points), a tab or a character YAML does not
    allow or reads as a line break, whitespace before a key's colon or a key past 200
    characters (a YAML key ends on its line, within 1,024 characters), a float that YAML 1.1
    reads as a string (``1e3``, ``1.5e3``; ``1.5e+3`` is a float to both), NaN or Infinity,
    a key twice in one object; and past the bounds on nesting and values, counted as the
    parser's events count them.
    """
    if not text.lstrip(" \r\n").startswith("{") or _NOT_PLAIN_JSON.search(text) is not None:
        return None
    try:
        data = json.loads(
            text,
            object_pairs_hook=_json_object,
            parse_float=_json_float,
            parse_constant=_json_constant,
        )
    except (ValueError, RecursionError, _NotAsYaml):  # JSONDecodeError is a ValueError
        return None
    if not isinstance(data, dict) or not 0 <= _json_values(data, 1) <= MAX_VALUES:
        return None
    return data


# A backslash, a tab, whitespace before a colon, and what YAML refuses or reads as a line break.
_NOT_PLAIN_JSON = re.compile(
    r"[\\\t\x85\u2028\u2029\ufeff]|\"\s+:|" + Reader.NON_PRINTABLE.pattern
)
_JSON_KEY_MAX_CHARS = 200
_YAML_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+(?:[eE][-+][0-9]+)?")


class _NotAsYaml(Exception):
    """A JSON value YAML would read otherwise."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs) or any(len(key) > _JSON_KEY_MAX_CHARS for key in mapping):
        raise _NotAsYaml
    return mapping


def _json_float(literal: str) -> float:
    if _YAML_FLOAT.fullmatch(literal) is None:
        raise _NotAsYaml
    return float(literal)


def _json_constant(literal: str) -> float:
    raise _NotAsYaml


def _json_values(collection: dict[str, Any] | list[Any], depth: int) -> int:
    """The values in a collection at ``depth`` (the root's is 1) as ``_Shape`` counts them:
    itself, every key and every value; -1 when one nested in it passes MAX_NESTING."""
    if isinstance(collection, dict):
        items: Any = collection.values()
        total = 1 + len(collection)
    else:
        items, total = collection, 1
    for item in items:
        if isinstance(item, dict | list):
            inner = _json_values(item, depth + 1) if depth < MAX_NESTING else -1
            if inner < 0:
                return -1
            total += inner
        else:
            total += 1
    return total


def _construct(text: str) -> tuple[object, Problem | None]:
    loader = _Loader(text)
    try:
        return loader.get_single_data(), None
    except yaml.YAMLError as error:
        return None, _syntax_problem(text, error)
    finally:
        loader.dispose()


class _Loader(_BaseLoader):
    """PyYAML's safe loader, whose every failure to build a value is a YAMLError with a mark."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as error:
            # e.g. 2024-02-30 (a timestamp), an int past Python's 4,300 digits, !!float "abc"
            kind = str(node.tag).rpartition(":")[2]
            reason = str(error).split(";")[0]
            message = f"not a valid {kind} ({reason})"
            raise ConstructorError(None, None, message, node.start_mark) from None


def _syntax_problem(text: str, error: yaml.YAMLError) -> Problem:
    """The fault in PyYAML's pure-Python words when the file is small enough to parse again
    (events only: no recursion, whatever the nesting), else in libyaml's."""
    if isinstance(error, ReaderError):
        return _unacceptable_character(text)
    if len(text) <= _WORDING_MAX_CHARS and not isinstance(error, ConstructorError):
        try:  # events only, through the same bounds: no recursion, whatever the nesting
            problem = _walk(text, yaml.SafeLoader)
        except yaml.YAMLError as worded:
            error = worded
        else:
            if problem is not None:  # libyaml stopped at its own bound (1,000 levels)
                return problem
    mark = getattr(error, "problem_mark", None)
    reason = getattr(error, "problem", None) or getattr(error, "context", None)
    if reason is not None and "maximum nesting depth" in reason:
        reason = f"nested more than {MAX_NESTING} levels deep"
    where = f"{_where(mark)}: " if mark is not None else ""
    return Problem("", f"{where}{reason or 'not valid YAML'}")


def _unacceptable_character(text: str) -> Problem:
    """A character YAML does not allow in a file (a control character, a lone surrogate)."""
    found = Reader.NON_PRINTABLE.search(text)
    if found is None:
        return Problem("", "a character YAML does not allow")
    offset = found.start()
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    code = ord(found.group())
    return Problem(
        "", f"line {line}, column {column}: character U+{code:04X} is not allowed in YAML"
    )


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


@dataclass(slots=True)
class _Open:
    """A list or mapping being read: where its items are, and how many values it holds."""

    is_mapping: bool
    anchor: str | None
    values: int = 1
    index: int = -1  # a list's item being read
    key: object = None  # a mapping's key whose value is being read
    next_is_key: bool = True
    keys: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Shape:
    """One pass over the parser's events, counting what the document would hold."""

    open: list[_Open] = field(default_factory=list)
    anchors: dict[str, int | None] = field(default_factory=dict)  # None: still open
    values: int = 0
    documents: int = 0

    def problem(self, event: Event) -> str | None:
        """What is wrong with the document once ``event`` is read, or None."""
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            return (
                "a second document (---); the file must hold one" if self.documents > 1 else None
            )
        if isinstance(event, CollectionEndEvent):
            self._close()
            return None
        if not isinstance(event, NodeEvent):
            return None
        problem = self._place(event)
        if problem is not None:
            return problem
        if isinstance(event, AliasEvent):
            return self._alias(str(event.anchor))
        if event.anchor is not None:
            if event.anchor in self.anchors:
                return f"anchor &{event.anchor} is defined a second time"
            self.anchors[event.anchor] = None if isinstance(event, CollectionStartEvent) else 1
        if isinstance(event, CollectionStartEvent):
            if len(self.open) >= MAX_NESTING:
                return f"nested more than {MAX_NESTING} levels deep"
            self.open.append(_Open(isinstance(event, MappingStartEvent), event.anchor))
            return self._count(1)
        self._grow(1)
        return self._count(1)

    def path(self) -> str:
        """Where the last event sits, e.g. ``targets[0].expect.json``, shortened past 8 parts."""
        parts = [
            f".{item.key}" if item.is_mapping else f"[{item.index}]"
            for item in self.open
            if (item.key is not None if item.is_mapping else item.index >= 0)
        ]
        shown = "".join(parts[:_PATH_PARTS_SHOWN])
        return shown.removeprefix(".") + ("..." if len(parts) > _PATH_PARTS_SHOWN else "")

    def _place(self, event: NodeEvent) -> str | None:
        """Move the enclosing collection on to this node: its next item, key or value.
        A key met twice in one mapping is refused: YAML would silently keep the last."""
        if not self.open:
            return None
        parent = self.open[-1]
        if not parent.is_mapping:
            parent.index += 1
        elif parent.next_is_key:
            parent.key = getattr(event, "value", "?")
            parent.next_is_key = False
            if isinstance(event, ScalarEvent):
                if event.value in parent.keys:
                    return "duplicate key; YAML would silently keep only its last value"
                parent.keys.add(event.value)
        else:
            parent.next_is_key = True
        return None

    def _alias(self, anchor: str) -> str | None:
        if anchor not in self.anchors:
            return f"found undefined alias {anchor!r}"
        values = self.anchors[anchor]
        if values is None:
            return f"alias *{anchor} stands for a collection that holds it (a recursive value)"
        self._grow(values)
        return self._count(values)

    def _close(self) -> None:
        closed = self.open.pop()
        if closed.anchor is not None:
            self.anchors[closed.anchor] = closed.values
        self._grow(closed.values)

    def _grow(self, values: int) -> None:
        """Add a finished item's values to the collection that holds it."""
        if self.open:
            self.open[-1].values += values

    def _count(self, values: int) -> str | None:
        self.values += values
        if self.values > MAX_VALUES:
            return (
                f"more than {MAX_VALUES:,} values (scalars, lists and mappings, each alias "
                "counted as the copy it stands for)"
            )
        return None
