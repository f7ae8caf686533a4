"""Lines of a file read forwards or backwards in blocks, each cut at MAX_LINE bytes like the follower cuts them.

Memory stays bounded whatever the lines: a line longer than a block is never joined, only its first
MAX_LINE bytes are kept and the rest is counted in ``Piece.cut``.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Iterator

from .adapters.log_file import BLOCK, MAX_LINE, Piece, piece

MAX_STEP = 1024 * 1024  # blocks grow up to this while they hold no newline (a very long line)
KEEP = 1024 * 1024  # bytes read backwards kept to cut the lines from, rather than read twice


class ChangedError(Exception):
    """The file got shorter while it was being read."""


def pread(fd: int, size: int, offset: int) -> bytes:
    """Every read of a plain file goes through here (tests count them)."""
    return os.pread(fd, size, offset)


class Splitter:
    """Cuts consecutive blocks of a stream into lines, keeping only the first MAX_LINE bytes of each."""

    def __init__(self, offset: int) -> None:
        self.start = offset  # where the line being read starts
        self.position = offset  # where the next block starts
        self.head = b""
        self.cut = 0
        self.lines = 0  # lines completed so far, kept or not

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
            for part in parts[skip:]:
                pieces.append(piece(part, start))
                start += len(part) + 1
            self.lines += len(parts)
            self.start, self.head, self.cut = start, b"", 0
        self._grow(rest)
        self.position += len(block)
        return pieces

    def finish(self) -> list[Piece]:
        """The unfinished line at the end of the stream, if there is one."""
        if self.position <= self.start:
            return []
        return [Piece(self.head, self.start, self.cut)]

    def _complete(self, part: bytes) -> Piece:
        self._grow(part)
        return Piece(self.head, self.start, self.cut)

    def _grow(self, data: bytes) -> None:
        taken = data[:max(0, MAX_LINE - len(self.head))]
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
