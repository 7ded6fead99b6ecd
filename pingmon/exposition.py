"""Every target's series kept ready as bytes, rendered when its result changes, so that a
scrape is a join of ready pieces (and, when asked, one gzip of the joined body).

The text formats group a family's series under one HELP/TYPE, so the pieces are kept per
family and per target: ``pieces[family][target]`` holds that target's lines of that family.
A recorded result re-renders the target's families whose values follow results (a few
microseconds: each target keeps a ``%`` template of its lines, built again only when the
series it has change, e.g. a new error class); the interval changes only with the
configuration, and the back-off gauge when its credential's delay in force does
(``refresh_backoff``, at every scrape: only credentials whose delay changed cost anything).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from math import isfinite

from isal import isal_zlib

from pingmon.families import Family, TargetView
from pingmon.results import TargetState

# ISA-L's level 1: about zlib level 1's ratio (25:1 on an exposition) at a sixth of its CPU.
# (client_golang compresses with Go's default level, client_python with zlib's 9.)
GZIP_LEVEL = 1
GZIP_WBITS = 31  # a gzip member (RFC 1952), not a zlib stream
_UNSET = object()  # a shape no family has: the first render builds the template
# About the most bytes of one family's lines joined into one chunk of a scrape.
SLICE_BYTES = 1 << 20


def escape_label_value(value: str) -> str:
    """A label value as the text formats quote it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def format_value(value: float) -> str:
    """A sample value as the text formats take it; ``repr`` is exact and fast."""
    if math.isfinite(value):
        return repr(value)
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


class _Spelled(str):
    """A value's text that a template's ``%r`` writes as it is (no quotes)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def spelled(numbers: tuple[float, ...]) -> tuple[object, ...]:
    """``numbers`` for a template when one is not finite: each written as the text formats
    spell it (``format_value``); ints (what a ``%d`` takes) as they are."""
    return tuple(n if type(n) is int else _Spelled(format_value(n)) for n in numbers)


def template(family: Family, prefix: str, shape: Hashable) -> bytes:
    """A target's lines of ``family`` with ``%d`` (counts) or ``%r`` where the values go;
    ``prefix`` holds its labels, already escaped for the text format and for ``%``."""
    return prefix.join(_around_prefix(family, shape)).encode()


@functools.lru_cache(maxsize=4096)
def _around_prefix(family: Family, shape: Hashable) -> tuple[str, ...]:
    """The lines of ``family`` for ``shape`` cut where a target's label prefix goes: joined
    by a target's prefix, they are its template. The same for every target, so built once
    (a start renders every target's families). A count is written with ``%d`` (bytes'
    ``%d`` of an int is faster than ``%r``: same digits), any other value with ``%r`` (the
    ``repr`` of a float or an int, as ``format_value``)."""
    parts: list[str] = []
    tail = ""
    for suffix, extra in family.series(shape):
        labels = "".join(f',{k}="{escape_label_value(v)}"' for k, v in extra).replace("%", "%%")
        parts.append(f"{tail}{family.name}{suffix}{{")
        conversion = "%d" if family.counts and suffix != "_sum" else "%r"
        tail = f"{labels}}} {conversion}\n"
    parts.append(tail)
    return tuple(parts)


def headers(families: Sequence[Family], openmetrics: bool) -> list[bytes]:
    """Each family's HELP and TYPE lines (OpenMetrics names a counter without ``_total``)."""
    names = [f.base_name if openmetrics else f.name for f in families]
    return [
        f"# HELP {name} {f.help}\n# TYPE {name} {f.type}\n".encode()
        for name, f in zip(names, families, strict=True)
    ]


class _Target:
    """One target's place in the pieces, its label text, and its templates by family."""

    __slots__ = ("credential", "index", "prefix", "shapes", "templates", "values")

    def __init__(self, index: int, state: TargetState, width: int) -> None:
        info = state.info
        self.index = index
        self.credential = info.credential
        provider, name = escape_label_value(info.provider), escape_label_value(info.name)
        self.prefix = f'provider="{provider}",target="{name}"'.replace("%", "%%")
        self.shapes: list[object] = [_UNSET] * width
        self.templates: list[bytes] = [b""] * width
        self.values: list[object] = [_UNSET] * width  # what each piece shows now


class Exposition:
    """The per-target families of one profile, kept rendered; a ``results.StoreWatcher``."""

    def __init__(self, families: Sequence[Family]) -> None:
        self._families: tuple[Family, ...] = ()
        self._states: list[TargetState] = []
        self._targets: dict[str, _Target] = {}
        self._pieces: list[list[bytes]] = []
        self._backoff: dict[str, float] = {}  # the delays the back-off pieces show, non-zero
        self.set_families(families)

    @property
    def families(self) -> tuple[Family, ...]:
        return self._families

    def set_families(self, families: Sequence[Family]) -> None:
        """Serve these families from now on (a profile change); renders everything again."""
        families = tuple(families)
        if families == self._families:
            return
        self._families = families
        self._on_result = [
            (f, family, family.values, family.shape)
            for f, family in enumerate(families)
            if family.on_result
        ]
        self._headers = {om: headers(families, om) for om in (False, True)}
        self._targets = {}  # rendered for other families: none is kept
        self.configured(self._states)

    def configured(self, states: Sequence[TargetState]) -> None:
        """Adopt the set of targets, in configuration order, and render them: a target
        whose state is the very one rendered before (a reload that left it as it was)
        keeps its pieces, so a reload costs what it changed."""
        width = len(self._families)
        old_states, old_targets, old_pieces = self._states, self._targets, self._pieces
        self._states = list(states)
        self._targets = {}
        self._pieces = [[b""] * len(states) for _ in self._families]
        for index, state in enumerate(self._states):
            name = state.info.name
            old = old_targets.get(name)
            if old is not None and old_states[old.index] is state:
                self._targets[name] = old
                for pieces, before in zip(self._pieces, old_pieces, strict=True):
                    pieces[index] = before[old.index]
                old.index = index
                continue
            target = self._targets[name] = _Target(index, state, width)
            view = self._view(state)
            for f in range(width):
                self._render(target, f, view)

    def recorded(self, state: TargetState) -> None:
        """A target's new result: re-render the families whose values follow results
        (``_render``, inlined: this runs for every check)."""
        target = self._targets.get(state.info.name)
        if target is None:
            return
        index = target.index
        self._states[index] = state
        view = TargetView(state, self._backoff.get(target.credential, 0.0))
        shapes, shown, templates, pieces = (
            target.shapes,
            target.values,
            target.templates,
            self._pieces,
        )
        for f, family, values_of, shape_of in self._on_result:
            numbers = values_of(view)
            shape = len(numbers) if shape_of is None else shape_of(view)  # ``Family.shape_of``
            if shape != shapes[f]:
                shapes[f] = shape
                templates[f] = template(family, target.prefix, shape)
            elif numbers == shown[f]:
                continue
            shown[f] = numbers
            # A sum of finite numbers is finite (but for an overflow: then only slower).
            pieces[f][index] = templates[f] % (
                numbers if isfinite(sum(numbers)) else spelled(numbers)
            )

    def refresh_backoff(self, delays: Mapping[str, float]) -> None:
        """Bring the back-off gauges to ``delays`` (credential -> delay in force, as
        ``RateLimitGate.delays``): only the targets of credentials whose delay changed
        are rendered again."""
        changed = {
            credential
            for credential in self._backoff.keys() | delays.keys()
            if self._backoff.get(credential, 0.0) != delays.get(credential, 0.0)
        }
        self._backoff = {credential: delay for credential, delay in delays.items() if delay}
        if not changed:
            return
        backoff = [f for f, family in enumerate(self._families) if not family.on_result]
        for target in self._targets.values():
            if target.credential in changed:
                view = self._view(self._states[target.index])
                for f in backoff:
                    self._render(target, f, view)

    def chunks(self, openmetrics: bool) -> Iterator[bytes]:
        """Every family's HELP and TYPE, then its targets' lines, about ``SLICE_BYTES`` to a
        chunk (``_sliced``), from the pieces as they are now (taken at once: later results
        do not change what this iterator yields). A consumer that yields to the event loop
        between chunks holds it for one slice's join at most (a family of 10,000 latency
        histograms is 13 MB: joined whole, milliseconds to tens of them)."""
        taken = [tuple(family) for family in self._pieces]
        return _sliced(self._headers[openmetrics], taken)

    def _view(self, state: TargetState) -> TargetView:
        return TargetView(state, self._backoff.get(state.info.credential, 0.0))

    def _render(self, target: _Target, f: int, view: TargetView) -> None:
        """Render one piece again, if what it shows changed (most gauges of a healthy
        target, such as success and status, stay the same from one check to the next)."""
        family = self._families[f]
        numbers = family.values(view)
        shape = family.shape_of(view, numbers)
        if shape != target.shapes[f]:
            target.shapes[f] = shape
            target.templates[f] = template(family, target.prefix, shape)
        elif numbers == target.values[f]:
            return
        target.values[f] = numbers
        values = numbers if isfinite(sum(numbers)) else spelled(numbers)
        self._pieces[f][target.index] = target.templates[f] % values


def _sliced(headers: Sequence[bytes], families: Sequence[Sequence[bytes]]) -> Iterator[bytes]:
    """Each family's header with its first slice of pieces, then its other slices. A
    family's pieces are alike (one template, other labels and numbers), so a slice holds
    ``SLICE_BYTES`` over the size of its first, middle and last piece: a family of small
    pieces stays one chunk."""
    for header, family in zip(headers, families, strict=True):
        size = max(len(family[i]) for i in (0, len(family) // 2, -1)) if family else 0
        step = max(1, SLICE_BYTES // (size or 1))
        yield header + b"".join(family[:step])
        for start in range(step, len(family), step):
            yield b"".join(family[start : start + step])


def gzip_chunks(chunks: Sequence[bytes], level: int = GZIP_LEVEL) -> tuple[bytes, ...]:
    """``chunks`` joined and compressed as one gzip member (RFC 1952), in pieces. Runs in a
    worker thread: ISA-L lets go of the GIL while it compresses."""
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, GZIP_WBITS)
    pieces = [compressor.compress(chunk) for chunk in chunks]
    pieces.append(compressor.flush())
    return tuple(piece for piece in pieces if piece)
