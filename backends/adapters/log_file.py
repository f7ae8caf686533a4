"""Follow log files (one path or a glob): the last lines at start, then what is appended."""

from __future__ import annotations

import codecs
import glob
import os
import stat
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from ..logtext import Stamper
from ..model import LogReading, Reading, State
from .base import Source
from .text import human_bytes, one_line, os_error_text

MAX_READ = 1024 * 1024  # per file per poll, and for the backlog at start
MAX_LINE = 8 * 1024  # bytes of one line kept for the screen
BLOCK = 64 * 1024
PARTIAL_POLLS = 2  # an unfinished last line is shown after this many polls without new data


@dataclass(frozen=True)
class Followed:
    identity: tuple[int, int]  # (device, inode): a new one at the same path means it was rotated
    offset: int = 0
    partial: bytes = b""  # the start of a line whose newline has not arrived, at most MAX_LINE bytes
    partial_cut: int = 0  # bytes of that line dropped beyond MAX_LINE
    partial_polls: int = 0
    line_start: int = 0  # where that unfinished line starts in the file


@dataclass(frozen=True)
class Piece:
    """One line as read: at most MAX_LINE bytes, where it starts in the file and how many bytes were left off."""

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


def piece(data: bytes, offset: int, cut: int = 0) -> Piece:
    if len(data) > MAX_LINE:
        cut += len(data) - MAX_LINE
        data = data[:MAX_LINE]
    return Piece(data, offset, cut)


def split_lines(state: Followed, data: bytes) -> tuple[list[Piece], Followed]:
    """The complete lines in ``data`` (the first one continuing ``state.partial``), and the new partial.
    ``state.offset`` is where ``data`` ends in the file."""
    pieces = data.split(b"\n")
    tail = pieces.pop()
    lines = []
    start = state.line_start
    for index, chunk in enumerate(pieces):
        length = len(chunk) + 1
        if index == 0 and (state.partial or state.partial_cut):
            lines.append(piece(state.partial + chunk[: MAX_LINE + 1],
                               start, state.partial_cut + max(0, len(chunk) - MAX_LINE - 1)))
            length += len(state.partial) + state.partial_cut
        else:
            lines.append(piece(chunk, start))
        start += length
    if not pieces:  # no newline: the unfinished line grew (or nothing arrived)
        tail = state.partial + tail
        cut = state.partial_cut
        polls = state.partial_polls + 1 if not data else 0
    else:
        cut, polls = 0, 0
    cut += max(0, len(tail) - MAX_LINE)
    state = replace(state, partial=tail[:MAX_LINE], partial_cut=cut, partial_polls=polls, line_start=start)
    if state.partial and state.partial_polls >= PARTIAL_POLLS:
        lines.append(Piece(state.partial, start, state.partial_cut))
        state = replace(state, partial=b"", partial_cut=0, partial_polls=0, line_start=state.offset)
    return lines, state


def tail_lines(handle: BinaryIO, size: int, count: int) -> tuple[list[Piece], bytes]:
    """The last ``count`` complete lines before ``size`` and the unfinished line after them,
    reading backwards in blocks and never more than MAX_READ bytes."""
    position = size
    blocks: list[bytes] = []
    newlines = 0
    while position > 0 and newlines <= count and size - position < MAX_READ:
        step = min(BLOCK, position, MAX_READ - (size - position))
        position -= step
        handle.seek(position)
        block = handle.read(step)
        blocks.insert(0, block)
        newlines += block.count(b"\n")
    pieces = b"".join(blocks).split(b"\n")
    tail = pieces.pop()
    starts = []
    offset = position
    for chunk in pieces:
        starts.append(offset)
        offset += len(chunk) + 1
    if position > 0:
        if not pieces:
            return [], b""  # one giant unfinished line: show it from where we join it
        pieces, starts = pieces[1:], starts[1:]  # the first piece started before what we read
    if count:
        return [piece(chunk, start) for chunk, start in zip(pieces[-count:], starts[-count:])], tail
    return [], tail


class LogFile(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path: str = self.spec.options["path"]
        self.backlog: int = self.spec.options["lines"]
        self._files: dict[str, Followed] = {}
        self._started = False
        self._stampers: dict[str, Stamper] = {}
        self._busy = False

    def describe(self) -> str:
        return self.path

    async def poll(self) -> list[Reading]:
        return await self.in_thread(self._read_all)

    def _read_all(self) -> list[Reading]:
        now = self.clock()
        pattern = os.path.expanduser(self.path)
        if any(char in pattern for char in "*?["):
            paths = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
            if not paths:
                return [self._reading(self.path, State.UNKNOWN, f"no file matches {self.path}", [], now)]
        else:
            paths = [pattern]
        initial, self._started = not self._started, True
        previous = self._files
        identities = {}
        for path in paths:
            try:
                info = os.stat(path)
                identities[(info.st_dev, info.st_ino)] = path
            except OSError:
                pass
        readings = []
        self._files = {}
        for path in paths:
            reading, state = self._follow(path, previous, identities, initial, now)
            readings.append(reading)
            if state is not None:
                self._files[path] = state
        self._busy = not initial and any(r.lines for r in readings)
        for gone in self._stampers.keys() - self._files.keys():
            del self._stampers[gone]
        return readings

    def _follow(self, path: str, previous: dict[str, Followed], identities: dict[tuple[int, int], str],
                initial: bool, now: float) -> tuple[LogReading, Followed | None]:
        state = previous.get(path)
        try:
            # O_NONBLOCK: opening a FIFO by mistake must not hang the poll
            with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    reason = f"cannot follow {path}: not a regular file"
                    return self._reading(path, State.UNKNOWN, reason, [], now), state
                lines, state, note = self._read_new(handle, info, state, previous, identities, initial)
        except OSError as exc:
            return self._reading(path, State.UNKNOWN, f"cannot read {path}: {os_error_text(exc)}", [], now), state
        behind = info.st_size - state.offset
        if behind > 0:
            note += f"; catching up, {human_bytes(behind)} behind"
        noun = "line" if len(lines) == 1 else "lines"
        return self._reading(path, State.OK, f"following, {len(lines)} new {noun}{note}", lines, now), state

    def _read_new(self, handle: BinaryIO, info: os.stat_result, state: Followed | None, previous: dict[str, Followed],
                  identities: dict[tuple[int, int], str], initial: bool) -> tuple[list[Piece], Followed, str]:
        identity = (info.st_dev, info.st_ino)
        lines: list[Piece] = []
        note = ""
        rotated = state is not None and state.identity != identity
        if rotated:
            if state.partial and state.identity not in identities:
                lines.append(Piece(state.partial, -1, state.partial_cut))  # the old file is finished
            note, state = "; reopened after rotation", None
        if state is None:
            # the same file under another name (rotated into the glob): carry on where it was, no repeats
            carried = next((s for s in previous.values() if s.identity == identity), None)
            if carried is not None:
                state = carried
            elif initial or (info.st_size > MAX_READ and not rotated):
                complete, tail = tail_lines(handle, info.st_size, self.backlog if initial else 0)
                lines += complete
                state = Followed(identity, info.st_size, tail[:MAX_LINE], max(0, len(tail) - MAX_LINE),
                                 line_start=info.st_size - len(tail))
                return lines, state, note
            else:
                state = Followed(identity)
        elif info.st_size < state.offset:
            if state.partial:
                lines.append(Piece(state.partial, -1, state.partial_cut))
            state, note = Followed(identity), "; truncated, reading from the start"
        handle.seek(state.offset)
        data = handle.read(min(MAX_READ, info.st_size - state.offset))
        more, state = split_lines(replace(state, offset=state.offset + len(data)), data)
        return lines + more, state, note

    def hurry(self) -> bool:
        return self._busy

    def _reading(self, path: str, state: State, reason: str, pieces: list[Piece], now: float) -> LogReading:
        stamper = self._stampers.get(path)
        if stamper is None:
            stamper = self._stampers[path] = Stamper(self.name, self.clock)
        lines = tuple(stamper.line(p.text(), now, path=path, offset=p.offset, cut=p.cut) for p in pieces)
        return LogReading(key=f"{self.name}:{path}", source=self.name, state=state, reason=one_line(reason), ts=now,
                          path=path, lines=lines)
