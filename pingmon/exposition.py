"""Every target's series kept ready as bytes, rendered when its result changes, so that a
scrape is a join of ready pieces (and, when asked, one gzip of the joined body).

The text formats group a family's series under one HELP/TYPE, so the pieces are kept per
family and per target: ``pieces[family][target]`` holds that target's lines of that family.
A recorded result re-renders the target's families whose values follow results (a few
microseconds: each target keeps a ``%`` template of its lines, built again only when the
series it has change, e.g. a new error class); the interval changes only with the
configuration, and the back-off gauge when its credential's delay in force does
(``refresh_backoff``, at every scrape: only credentials whose delay changed cost anything).

The gzip form is kept compressed by slice (``Exposition.compressed``): each family's targets
in runs of about ``SLICE_BYTES``, each run compressed on its own as a raw deflate segment
ending on a byte boundary (a sync flush), until one of its pieces changes. A scrape
compresses the runs that changed since the last one (the families that follow every check:
about half the bytes in the default profile) and stitches the segments into one gzip member
(``gzip_member``: RFC 1951 lets a stream's blocks come from separate compressors, RFC 1952's
CRC-32 is combined from the segments'), so the scraper reads a single ordinary member.
"""

from __future__ import annotations

import functools
import math
import struct
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from math import isfinite
from typing import Any, NamedTuple

from isal import isal_zlib

from pingmon.families import ONE, Family, TargetView, steady
from pingmon.results import TargetState

# ISA-L's level 1: about zlib level 1's ratio (25:1 on an exposition) at a sixth of its CPU.
# (client_golang compresses with Go's default level, client_python with zlib's 9.)
GZIP_LEVEL = 1
# A gzip member's header (RFC 1952): deflate, no flags, no time, ISA-L's extra flags and OS.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
# The last block of a deflate stream (RFC 1951): final, fixed Huffman codes, no data.
DEFLATE_END = b"\x03\x00"
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
        # What each piece shows now: its values (a tuple), _UNSET before the first render.
        self.values: list[Any] = [_UNSET] * width


class Exposition:
    """The per-target families of one profile, kept rendered; a ``results.StoreWatcher``."""

    def __init__(self, families: Sequence[Family]) -> None:
        self._families: tuple[Family, ...] = ()
        self._states: list[TargetState] = []
        self._targets: dict[str, _Target] = {}
        self._pieces: list[list[bytes]] = []
        self._backoff: dict[str, float] = {}  # the delays the back-off pieces show, non-zero
        # By family: 1 for each target whose piece changed since the last ``compressed``.
        self._changed: list[bytearray] = []
        # By family: its runs of targets as the last ``compressed`` took them.
        self._runs: list[list[_Run]] = []
        # The scrapes joining pieces now (``_Take``): a piece is kept for them before it is
        # overwritten.
        self._takes: list[weakref.ref[_Take]] = []
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
        self._on_result = _entries(families, lambda family: family.on_result)
        self._on_change = _entries(families, lambda family: family.on_result and not family.steady)
        self._headers = {om: headers(families, om) for om in (False, True)}
        self._header_runs: dict[bool, list[_Run]] = {}  # compressed when first asked
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
        self._changed = [bytearray(len(states)) for _ in self._families]
        self._runs = [[] for _ in self._families]  # taken afresh at the next ``compressed``
        self._takes = []  # scrapes under way keep the old lists, which nothing writes now
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
        (``_render``, inlined: this runs for every check), but for the ``Family.steady``
        ones when the result left what they show as it was (``families.steady`` of the
        state rendered last and this one)."""
        target = self._targets.get(state.info.name)
        if target is None:
            return
        index = target.index
        old, self._states[index] = self._states[index], state
        view = TargetView(state, self._backoff.get(target.credential, 0.0))
        shapes, shown, templates, pieces, changed, takes = (
            target.shapes,
            target.values,
            target.templates,
            self._pieces,
            self._changed,
            self._takes,
        )
        for f, family, values_of, shape_of, twin in (
            self._on_change if steady(old, state) else self._on_result
        ):
            numbers = values_of(view)
            shape = len(numbers) if shape_of is None else shape_of(view)  # ``Family.shape_of``
            if shape != shapes[f]:
                shapes[f] = shape
                templates[f] = template(family, target.prefix, shape)
            elif numbers == shown[f]:
                continue
            shown[f] = numbers
            if takes:  # a scrape under way still shows the piece
                self._keep(f, index)
            if (
                twin is not None
                and shape == 1
                and shapes[twin.of] == 1
                and numbers[0] is shown[twin.of][0]
            ):
                # The very number another plain family shows (a success's run and success
                # times): its piece with the name swapped, not a second ``repr`` of it.
                twin_piece = pieces[twin.of][index]
                pieces[f][index] = twin.name + twin_piece[twin.cut :]
            else:  # a sum of finite numbers is finite (but for an overflow: then only slower)
                pieces[f][index] = templates[f] % (
                    numbers if isfinite(sum(numbers)) else spelled(numbers)
                )
            changed[f][index] = 1

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
        chunk (``_sliced``), the pieces as they are now (taken at once, ``_Take``: later
        results do not change what this iterator yields). A consumer that yields to the
        event loop between chunks holds it for one slice's join at most (a family of 10,000
        latency histograms is 13 MB: joined whole, milliseconds to tens of them)."""
        take = _Take(self._pieces, [run_length(family) for family in self._pieces])
        take.pending = 1  # until the iterator ends
        self._register(take)
        return _sliced(self._headers[openmetrics], self._pieces, take)

    def compressed(self, openmetrics: bool) -> list[_Run]:
        """The per-target part of the gzip form as it is now: each family's header, then its
        runs of targets (about ``SLICE_BYTES`` each), in order, taken at once (later results
        do not change what a run holds). A run whose pieces did not change since the last
        call is the same object as then, its ``segment`` made already; the others are new
        and the caller's to join, in order, and compress (``_Run.join``, ``deflate``,
        ``_Run.made``); one the caller did not (an error) is taken again next time.

        Costs a few objects per run that changed, and none per piece: the pieces are read
        where they are when a run is joined, and a piece overwritten before that is kept for
        it (``_Take``)."""
        if openmetrics not in self._header_runs:
            self._header_runs[openmetrics] = [
                _Run.ready(deflate(header)) for header in self._headers[openmetrics]
            ]
        take = _Take(self._pieces, [1] * len(self._pieces))
        taken: list[_Run] = []
        for f, header in enumerate(self._header_runs[openmetrics]):
            taken.append(header)
            taken.extend(self._take_runs(f, take))
        if take.pending:
            self._register(take)
        return taken

    def _register(self, take: _Take) -> None:
        """Keep ``take`` up to date from now on (``_keep``), and let go of the takes that
        ended: without a result between scrapes (no targets, or none checked yet) nothing
        else would, and the list would grow by one per scrape."""
        self._takes = [ref for ref in self._takes if (t := ref()) is not None and t.pending]
        self._takes.append(weakref.ref(take))

    def _keep(self, f: int, index: int) -> None:
        """Piece ``index`` of family ``f`` is about to be overwritten: the scrapes under way
        that have not joined it yet keep it (and those that ended are let go of)."""
        piece = self._pieces[f][index]
        live = []
        for ref in self._takes:
            take = ref()
            if take is not None and take.pending:
                take.keep(f, index, piece)
                live.append(ref)
        if len(live) != len(self._takes):
            self._takes = live

    def _take_runs(self, f: int, take: _Take) -> list[_Run]:
        """Family ``f``'s runs now: the ones with a changed piece taken again (by ``take``),
        the rest as they were; its marks cleared. All taken again when there were none, or
        when the size of its pieces moved the run length by more than a factor 2 (pieces
        grow with a target's first result)."""
        pieces, changed, runs = self._pieces[f], self._changed[f], self._runs[f]
        step = run_length(pieces)
        if not runs or not (runs[0].stop // 2 < min(step, len(pieces)) < 2 * runs[0].stop):
            take.steps[f] = step
            runs[:] = [
                _Run.taken(take, f, start, min(start + step, len(pieces)))
                for start in range(0, len(pieces), step)
            ]
        else:
            take.steps[f] = runs[0].stop  # runs[0] is 0:step, or all of a short family
            for r, run in enumerate(runs):
                # A run another scrape is compressing is taken again (the same pieces): each
                # run not compressed yet belongs to the one scrape that took it.
                if run.segment is None or changed.find(1, run.start, run.stop) >= 0:
                    runs[r] = _Run.taken(take, f, run.start, run.stop)
        self._changed[f] = bytearray(len(pieces))
        return list(runs)

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
        if self._takes:
            self._keep(f, target.index)
        self._pieces[f][target.index] = target.templates[f] % values
        self._changed[f][target.index] = 1


class _Twin(NamedTuple):
    """Family ``of``, a plain family (``_plain``) before another plain one in a list of
    families to render: while the two show the very same number object, the latter's piece
    is ``name`` (its own name) and the rest of the former's from ``cut`` (the former's
    name's length) on, since both are ``NAME{labels} VALUE``."""

    of: int
    name: bytes
    cut: int


# (index, family, its values, its shape, the plain family before it): ``recorded``'s loop.
_Entry = tuple[
    int,
    Family,
    Callable[[TargetView], tuple[float, ...]],
    Callable[[TargetView], Hashable] | None,
    _Twin | None,
]


def _plain(family: Family) -> bool:
    """A family whose target has one series, without labels of its own, once it has one
    value, written with ``%r`` (a gauge of the last result)."""
    return family.shape is None and not family.counts and family.series(1) == ONE


def _entries(families: Sequence[Family], chosen: Callable[[Family], bool]) -> list[_Entry]:
    """The ``chosen`` families, in order, for ``recorded``'s loop: each with its values and
    shape functions and, for a plain family right after another, its ``_Twin``."""
    entries: list[_Entry] = []
    before: int | None = None
    for f, family in enumerate(families):
        if not chosen(family):
            continue
        twin = None
        if before is not None and _plain(family) and _plain(families[before]):
            twin = _Twin(before, family.name.encode(), len(families[before].name.encode()))
        entries.append((f, family, family.values, family.shape, twin))
        before = f
    return entries


def run_length(pieces: Sequence[bytes]) -> int:
    """How many of a family's pieces make about ``SLICE_BYTES``. A family's pieces are
    alike (one template, other labels and numbers): the size of its first, middle and last
    piece says it, and a family of small pieces stays one run."""
    size = max(len(pieces[i]) for i in (0, len(pieces) // 2, -1)) if pieces else 0
    return max(1, SLICE_BYTES // (size or 1))


def _sliced(
    headers: Sequence[bytes], families: list[list[bytes]], take: _Take | None = None
) -> Iterator[bytes]:
    """Each family's header with its first slice of pieces (``run_length`` of them), then
    its other slices; through ``take`` (the pieces as they were when it was made) if given,
    which is let go of when the last slice is made."""
    if take is None:
        take = _Take(families, [run_length(family) for family in families])
    try:
        for f, header in enumerate(headers):
            step, size = take.steps[f], len(families[f])
            yield take.join(f, 0, step, header)
            for start in range(step, size, step):
                yield take.join(f, start, start + step)
    finally:
        take.pending = 0


class _Take:
    """The pieces as they were when a scrape took them, while it joins them a slice at a
    time, in order (copy on write): the lists of pieces themselves, and by family and slice
    the pieces overwritten since (``keep``). Taking costs nothing per piece: a reference
    to each piece (a tuple of them, 130,000 at 10,000 targets) cost an increment and a
    decrement of each piece's count, scattered over the heap, and the collector walked
    those tuples once a scrape (15 ms at 10,000 targets, default profile)."""

    __slots__ = ("__weakref__", "before", "family", "pending", "pieces", "start", "steps")

    def __init__(self, pieces: list[list[bytes]], steps: list[int]) -> None:
        self.pieces = pieces  # by family: its list of pieces (not a copy)
        self.steps = steps  # by family: how many pieces make a slice
        # By family: slice number -> piece number -> the piece when taken.
        self.before: list[dict[int, dict[int, bytes]]] = [{} for _ in pieces]
        self.family = self.start = 0  # the pieces before this one are joined
        self.pending = 0  # slices still to join: kept up to date while above 0

    def keep(self, f: int, index: int, piece: bytes) -> None:
        """``piece`` is piece ``index`` of family ``f`` as taken, about to be overwritten."""
        if f > self.family or (f == self.family and index >= self.start):
            self.before[f].setdefault(index // self.steps[f], {}).setdefault(index, piece)

    def join(self, f: int, start: int, stop: int, head: bytes = b"") -> bytes:
        """``head``, then pieces ``start:stop`` of family ``f`` as taken, joined; ``start``
        is a multiple of ``steps[f]`` and no slice before it is joined later."""
        part = self.pieces[f][start:stop]
        kept = self.before[f].pop(start // self.steps[f], None)
        if kept:
            for index, piece in kept.items():
                part[index - start] = piece
        self.family, self.start = f, stop
        if head:
            part.insert(0, head)
        return b"".join(part)


class Segment:
    """Bytes compressed on their own as raw deflate blocks (RFC 1951), none of them final,
    ending on a byte boundary (a sync flush), so that segments may follow one another in
    one stream: ``deflated``, and the CRC-32 and length of the bytes they hold."""

    __slots__ = ("crc", "deflated", "size")

    def __init__(self, deflated: bytes, crc: int, size: int) -> None:
        self.deflated = deflated
        self.crc = crc
        self.size = size


def deflate(data: bytes, level: int = GZIP_LEVEL) -> Segment:
    """``data`` as a ``Segment``. ISA-L lets go of the GIL while it compresses: a worker
    thread may run this."""
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    deflated = compressor.compress(data) + compressor.flush(isal_zlib.Z_SYNC_FLUSH)
    return Segment(deflated, isal_zlib.crc32(data), len(data))


def deflate_all(chunks: Sequence[bytes], level: int = GZIP_LEVEL) -> list[Segment]:
    """``deflate`` of each chunk, in order (one call for a worker thread)."""
    return [deflate(chunk, level) for chunk in chunks]


def gzip_member(segments: Sequence[Segment]) -> tuple[bytes, ...]:
    """One gzip member (RFC 1952) of the segments' bytes one after the other, in pieces:
    the header, each segment's blocks, a last empty block and the trailer (the CRC-32
    combined from the segments', and the length modulo 2**32)."""
    crc = size = 0
    for segment in segments:
        crc = isal_zlib.crc32_combine(crc, segment.crc, segment.size)
        size += segment.size
    trailer = DEFLATE_END + struct.pack("<II", crc, size & 0xFFFFFFFF)
    return (GZIP_HEADER, *(s.deflated for s in segments if s.size), trailer)


def gzip_chunks(chunks: Sequence[bytes], level: int = GZIP_LEVEL) -> tuple[bytes, ...]:
    """``chunks`` joined and compressed as one gzip member, in pieces (``gzip_member``)."""
    return gzip_member(deflate_all(chunks, level))


class _Run:
    """Targets ``start:stop`` of family ``f`` in the gzip form: to be joined from ``take``
    until compressed, then its ``segment`` (a family's header: a run made ready)."""

    __slots__ = ("f", "segment", "start", "stop", "take")

    def __init__(
        self, take: _Take | None, f: int, start: int, stop: int, segment: Segment | None
    ) -> None:
        self.take = take
        self.f = f
        self.start = start
        self.stop = stop
        self.segment = segment

    @classmethod
    def taken(cls, take: _Take, f: int, start: int, stop: int) -> _Run:
        take.pending += 1
        return cls(take, f, start, stop, None)

    @classmethod
    def ready(cls, segment: Segment) -> _Run:
        return cls(None, 0, 0, 0, segment)

    def join(self) -> bytes:
        """The run's bytes as taken, once (while it is not compressed yet)."""
        take, self.take = self.take, None
        if take is None:
            raise RuntimeError("the run is joined already")
        take.pending -= 1
        return take.join(self.f, self.start, self.stop)

    def drop(self) -> None:
        """Not to be joined after all (the scrape failed or was cancelled): let go of the
        take, which then keeps no piece for this run; the next ``compressed`` takes the run
        again (it has no segment). Nothing if it is joined already."""
        take, self.take = self.take, None
        if take is not None:
            take.pending -= 1

    def made(self, segment: Segment) -> None:
        """Keep ``segment`` (the joined bytes compressed) as this run's."""
        self.segment = segment

    def done(self) -> Segment:
        """The run's segment, once made."""
        if self.segment is None:
            raise RuntimeError("the run is not compressed yet")
        return self.segment
