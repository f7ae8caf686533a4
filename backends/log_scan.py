"""Every line of a file that a LineFilter keeps, found at close to disk speed.

The pattern runs over whole chunks of bytes (SCAN_CHUNK, realigned at the last newline), never line by
line: each match is mapped to the line around it with ``rfind``/``find`` of a newline, and only the lines
kept are cut and decoded. An inverted filter keeps most lines, so it splits the chunk and tests each line.
Matching is on bytes read as UTF-8 (``LineFilter.bytes_regex``, RE2), except that ``$`` does not match before the
``\\r`` of a CRLF line. A line longer than SCAN_CHUNK is matched on its first SCAN_CHUNK bytes (at least: in a
.gz, up to twice that).
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Callable, Iterator

from .log_filter import LineFilter
from .log_reading import MAX_LINE, MAX_STEP, Piece, piece, pread

SCAN_CHUNK = 4 * 1024 * 1024  # measured: 2-4 MiB (within the L2 cache) a little faster than 8
# A region: (offset, buffer, end, length, position). buffer[:end] is whole lines starting at ``offset``;
# or, when ``length`` >= 0, buffer is the start of one line of ``length`` bytes, too long to hold, and
# buffer[:end] the part of it that is matched.
# ``position``: bytes of the file on disk read so far (compressed bytes for a .gz), for progress.
Region = tuple[int, bytes, int, int, int]
Chunks = Callable[..., Iterator[tuple[int, bytes, int]]]


class Finder:
    """The fastest exact way to find a LineFilter's pattern in bytes.

    A literal ASCII pattern is a ``bytes.find``; smart case makes a lowercase one case-insensitive, and
    ``bytes.lower()`` is fast and changes only ASCII letters, so it is found case-sensitively in a lowered copy
    at the same offsets. Anything else is RE2 over the whole chunk (linear time; case folding costs it
    nothing), with ``^`` and ``$`` at every line as line by line."""

    def __init__(self, matcher: LineFilter) -> None:
        self.regex = None
        self.needle: bytes | None = None
        self.fold = False
        if matcher.literal and matcher.pattern.isascii():
            self.fold = matcher.ignore_case
            self.needle = matcher.pattern.lower().encode() if self.fold else matcher.pattern.encode()
        else:
            self.regex = matcher.bytes_regex(multiline=True)

    def haystack(self, data: bytes) -> bytes:
        return data.lower() if self.fold else data

    def search(self, hay: bytes, pos: int, end: int) -> tuple[int, int] | None:
        if self.needle is not None:
            found = hay.find(self.needle, pos, end)
            return None if found < 0 else (found, found + len(self.needle))
        match = self.regex.search(hay, pos, end)
        return None if match is None else match.span()

    def line_matches(self, hay: bytes) -> bool:
        """Whether one line (from ``haystack``) matches."""
        if self.needle is not None:
            return self.needle in hay
        return self.regex.search(hay) is not None

    def within(self, hay: bytes, start: int, stop: int) -> bool:
        """Whether the line ``hay[start:stop]`` matches on its own (for a match that ran past its newline)."""
        return self.needle is None and self.regex.search(hay, start, stop) is not None


def matching_lines(finder: Finder, hay: bytes, end: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of every line of ``hay[:end]`` that matches; ``stop`` is its newline (or ``end``)."""
    position = 0
    while True:
        found = finder.search(hay, position, end)
        if found is None:
            return
        first, last = found
        if first >= end and (end == 0 or hay[end - 1] == 10):
            return  # an empty match after the last newline: no line there
        newline = hay.rfind(b"\n", position, first)
        start = newline + 1 if newline >= 0 else position
        stop = hay.find(b"\n", first, end)
        stop = end if stop < 0 else stop
        if last <= stop or finder.within(hay, start, stop):
            yield start, stop
        position = stop + 1


def scan_file(path: str, size: int, chunks: Chunks | None, matcher: LineFilter, source_matches: bool,
              cancel: threading.Event, chunk: int | None = None) -> Iterator[tuple[list[Piece], int]]:
    """The lines of one file (its first ``size`` bytes; ``chunks``: the decompressed stream of a .gz) that
    ``matcher`` keeps, region by region, with the bytes of the file read so far."""
    chunk = chunk or SCAN_CHUNK
    everything = source_matches or matcher.empty  # LineFilter.matches also looks at the source name
    if everything and matcher.inverted:
        return
    finder = None if everything else Finder(matcher)
    invert = everything or matcher.inverted
    if chunks is not None:
        yield from _kept(_gzip_regions(chunks(path, 0, chunk), chunk, cancel), finder, invert)
        return
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield from _kept(_plain_regions(fd, size, chunk, cancel), finder, invert)
    finally:
        os.close(fd)


def _kept(regions: Iterator[Region], finder: Finder | None, invert: bool) -> Iterator[tuple[list[Piece], int]]:
    for offset, buffer, end, length, position in regions:
        if length >= 0:
            hit = finder is not None and finder.line_matches(finder.haystack(buffer[:end]))
            take = min(length, MAX_LINE)
            yield ([Piece(buffer[:take], offset, length - take)] if hit != invert else []), position
        elif invert:
            yield _tested(finder, buffer, end, offset, invert), position
        else:
            spans = matching_lines(finder, finder.haystack(buffer), end)
            yield [_cut(buffer, start, stop, offset) for start, stop in spans], position


def _cut(buffer: bytes, start: int, stop: int, offset: int) -> Piece:
    take = min(stop - start, MAX_LINE)
    return Piece(buffer[start:start + take], offset + start, stop - start - take)


def _tested(finder: Finder | None, buffer: bytes, end: int, offset: int, invert: bool) -> list[Piece]:
    """The lines of ``buffer[:end]`` whose match differs from ``invert`` (all of them without a finder),
    tested one by one: an inverted filter keeps most lines, so there is no skipping ahead to win."""
    region = buffer[:end]
    lines = region.split(b"\n")
    if not lines[-1]:
        lines.pop()  # the region ends with a newline: nothing after it
    starts = itertools.accumulate((len(line) + 1 for line in lines), initial=offset)
    if finder is None:
        kept = zip(lines, starts)
    else:
        hays = region.lower().split(b"\n") if finder.fold else lines  # (zip stops at the last line)
        if finder.needle is not None and invert:  # the common case, inlined
            needle = finder.needle
            kept = ((line, start) for line, hay, start in zip(lines, hays, starts) if needle not in hay)
        else:
            test = finder.line_matches
            kept = ((line, start) for line, hay, start in zip(lines, hays, starts) if test(hay) != invert)
    return [Piece(line, start) if len(line) <= MAX_LINE else piece(line, start) for line, start in kept]


def _plain_regions(fd: int, size: int, chunk: int, cancel: threading.Event) -> Iterator[Region]:
    position = 0
    while position < size and not cancel.is_set():
        buffer = pread(fd, min(chunk, size - position), position)
        if not buffer:
            return  # truncated since the scan started
        if position + len(buffer) >= size:
            yield position, buffer, len(buffer), -1, size
            return
        end = buffer.rfind(b"\n") + 1
        if end:
            yield position, buffer, end, -1, position + end
            position += end
        else:
            length = len(buffer) + _rest_of_line(fd, position + len(buffer), size, cancel)
            head = buffer if len(buffer) >= MAX_LINE else pread(fd, MAX_LINE, position)
            yield position, head, len(buffer), length, min(size, position + length + 1)
            position += length + 1


def _rest_of_line(fd: int, start: int, size: int, cancel: threading.Event) -> int:
    """Bytes from ``start`` to the next newline (or to ``size``), read in blocks and not kept."""
    position = start
    while position < size and not cancel.is_set():
        block = pread(fd, min(MAX_STEP, size - position), position)
        if not block:
            break
        newline = block.find(b"\n")
        if newline >= 0:
            return position + newline - start
        position += len(block)
    return position - start


def _gzip_regions(chunks: Iterator[tuple[int, bytes, int]], chunk: int, cancel: threading.Event) -> Iterator[Region]:
    carry = b""  # the start of a line whose newline is in a later chunk
    offset = 0  # where ``carry`` starts in the decompressed stream
    giant: tuple[bytes, int] | None = None  # the head and length so far of a line longer than ``chunk``
    position = 0
    for _, data, position in chunks:
        if cancel.is_set():
            return
        if giant is not None:
            head, length = giant
            newline = data.find(b"\n")
            if len(head) < MAX_LINE:  # (only when chunk < MAX_LINE, in tests)
                head += data[:min(len(data) if newline < 0 else newline, MAX_LINE - len(head))]
            if newline < 0:
                giant = head, length + len(data)
                continue
            giant, data = None, data[newline + 1:]
            yield offset, head, chunk, length + newline, position
            offset += length + newline + 1
        buffer = carry + data if carry else data
        end = buffer.rfind(b"\n") + 1
        if end:
            yield offset, buffer, end, -1, position
            offset += end
        carry = buffer[end:]
        if len(carry) >= chunk:
            giant, carry = (carry[:max(chunk, MAX_LINE)], len(carry)), b""
    if giant is not None:
        yield offset, giant[0], chunk, giant[1], position
    elif carry:
        yield offset, carry, len(carry), -1, position
