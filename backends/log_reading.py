"""Lines of a log, cut at MAX_LINE bytes: the one reading that the follower, the streams, the pager (paging
back and forth, ``lakedeck tail``) and the whole-file scan share.

Memory stays bounded whatever the lines: a line longer than a block is never joined, only its first
MAX_LINE bytes are kept and the rest is counted in ``Piece.cut`` (the screen marks such a line with ✂, and
``enter`` reads it whole). A line of any length hides nothing before or after it.
"""

from __future__ import annotations

import codecs
import os
from collections import deque
from dataclasses import dataclass
from typing import Iterator

MAX_LINE = 8 * 1024  # bytes of one line kept for the screen
CUT_MARK = "✂ "  # first on a line that was cut when read (on screen and printed by `lakedeck logs`)
BLOCK = 64 * 1024
MAX_STEP = 1024 * 1024  # blocks grow up to this while they hold no newline (a very long line)
KEEP = 1024 * 1024  # bytes read backwards kept to cut the lines from, rather than read twice


@dataclass(frozen=True)
class Piece:
    """One line as read: at most MAX_LINE bytes, where it starts in the file (-1: not in a file) and how many
    bytes were left off."""

    data: bytes
    offset: int
    cut: int = 0

    def text(self) -> str:
        """UTF-8 with bad bytes replaced; a character split by the cut is held back rather than garbled."""
        data = self.data[:-1] if self.data.endswith(b"\r") else self.data
        if not self.cut:
            return data.decode("utf-8", errors="replace")
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return decoder.decode(data)


def piece(data: bytes, offset: int, cut: int = 0, limit: int = MAX_LINE) -> Piece:
    if len(data) > limit:
        cut += len(data) - limit
        data = data[:limit]
    return Piece(data, offset, cut)


class ChangedError(Exception):
    """The file got shorter while it was being read."""


def pread(fd: int, size: int, offset: int) -> bytes:
    """Every read of a plain file goes through here (tests count them)."""
    return os.pread(fd, size, offset)


class Splitter:
    """Cuts consecutive blocks of a stream into lines, keeping only the first ``limit`` bytes of each.

    ``offset`` is where the stream starts in its file; None for a stream that is no file (a command's
    output), whose pieces have offset -1."""

    def __init__(self, offset: int | None, limit: int = MAX_LINE) -> None:
        self.positioned = offset is not None
        self.start = offset or 0  # where the line being read starts
        self.position = self.start  # where the next block starts
        self.limit = limit
        self.head = b""
        self.cut = 0
        self.lines = 0  # lines completed so far, kept or not

    @classmethod
    def resume(cls, start: int, position: int, head: bytes, cut: int) -> Splitter:
        """A splitter in the middle of a line that starts at ``start``: ``head`` kept of it, ``cut`` left off."""
        splitter = cls(start)
        splitter.position, splitter.head, splitter.cut = position, head, cut
        return splitter

    @property
    def pending(self) -> bool:
        """Whether an unfinished line has begun."""
        return self.position > self.start

    def feed(self, block: bytes, keep: int | None = None) -> list[Piece]:
        """The lines that ``block`` completes; only the last ``keep`` of them when that is given."""
        parts = block.split(b"\n")
        rest = parts.pop()
        pieces: list[Piece] = []
        if parts:
            skip = 0 if keep is None else max(0, len(parts) - keep)
            if skip:
                start = self.position + sum(map(len, parts[:skip])) + skip
            else:
                pieces.append(self._complete(parts[0]))
                start = self.position + len(parts[0]) + 1
                skip = 1
            limit = self.limit
            for part in parts[skip:]:
                pieces.append(piece(part, start if self.positioned else -1, 0, limit))
                start += len(part) + 1
            self.lines += len(parts)
            self.start, self.head, self.cut = start, b"", 0
        self._grow(rest)
        self.position += len(block)
        return pieces

    def finish(self) -> list[Piece]:
        """The unfinished line at the end of the stream, if there is one."""
        if not self.pending:
            return []
        return [Piece(self.head, self.start if self.positioned else -1, self.cut)]

    def flush(self) -> list[Piece]:
        """The unfinished line, taken: what follows starts a new line (a prompt waited long enough, the
        stream ended or was replaced)."""
        pieces = self.finish()
        self.start, self.head, self.cut = self.position, b"", 0
        return pieces

    def _complete(self, part: bytes) -> Piece:
        self._grow(part)
        return Piece(self.head, self.start if self.positioned else -1, self.cut)

    def _grow(self, data: bytes) -> None:
        taken = data[:max(0, self.limit - len(self.head))]
        self.head += taken
        self.cut += len(data) - len(taken)


def blocks_forward(fd: int, start: int, size: int) -> Iterator[bytes]:
    """The bytes of a plain file from ``start`` to ``size`` in blocks that grow inside a very long line."""
    position, step = start, BLOCK
    while position < size:
        block = pread(fd, min(step, size - position), position)
        if not block:
            return
        yield block
        position += len(block)
        step = BLOCK if b"\n" in block else min(step * 2, MAX_STEP)


def lines_forward(blocks: Iterator[bytes], start: int, count: int) -> list[Piece]:
    """Up to ``count`` lines from ``start`` (a line start), the unfinished last one included."""
    splitter = Splitter(start)
    pieces: list[Piece] = []
    for block in blocks:
        pieces += splitter.feed(block)
        if len(pieces) >= count:
            return pieces[:count]
    return (pieces + splitter.finish())[:count]


def lines_backward(fd: int, end: int, count: int) -> list[Piece]:
    """The last ``count`` complete lines before ``end`` of a plain file, and the unfinished piece from
    the last newline to ``end`` (none when ``end`` follows a newline). Reads backwards in blocks."""
    if end <= 0 or count <= 0:
        return []
    newlines, kept, kept_from = _newlines_before(fd, end, count + 1)
    starts = [q + 1 for q in reversed(newlines)]
    if len(newlines) <= count:
        starts.insert(0, 0)  # reached the start of the file
    region = b"".join(kept)

    def head(start: int, length: int) -> Piece:
        take = min(length, MAX_LINE)
        if kept_from <= start and start + take <= kept_from + len(region):
            data = region[start - kept_from:start - kept_from + take]
        else:
            data = pread(fd, take, start)
        return Piece(data, start, length - take)

    pieces = [head(a, b - a - 1) for a, b in zip(starts, starts[1:])]
    if starts[-1] < end:
        pieces.append(head(starts[-1], end - starts[-1]))
    return pieces


def _newlines_before(fd: int, end: int, wanted: int) -> tuple[list[int], deque[bytes], int]:
    """Offsets of the last ``wanted`` newlines before ``end`` (newest first), and the earliest blocks read
    (at most about KEEP bytes of them) with the offset they start at."""
    newlines: list[int] = []
    kept: deque[bytes] = deque()
    kept_size = 0
    position, step = end, BLOCK
    while position > 0 and len(newlines) < wanted:
        size = min(step, position)
        position -= size
        block = pread(fd, size, position)
        if len(block) != size:
            raise ChangedError()
        index = len(block)
        found = False
        while len(newlines) < wanted:
            index = block.rfind(b"\n", 0, index)
            if index < 0:
                break
            newlines.append(position + index)
            found = True
        kept.appendleft(block)
        kept_size += size
        while kept_size - len(kept[-1]) >= KEEP:
            kept_size -= len(kept.pop())
        step = BLOCK if found else min(step * 2, MAX_STEP)
    return newlines, kept, position
