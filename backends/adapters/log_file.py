"""Follow log files (one path or a glob): the last lines at start, then what is appended."""

from __future__ import annotations

import codecs
import glob
import os
import stat
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from ..model import LogLine, LogReading, Reading, State
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


def line_text(head: bytes, cut: int = 0) -> str:
    """One line for the screen: at most MAX_LINE bytes of UTF-8 (bad bytes replaced), saying how much was cut."""
    head = head[:-1] if head.endswith(b"\r") else head
    if len(head) > MAX_LINE:
        cut += len(head) - MAX_LINE
        head = head[:MAX_LINE]
    if not cut:
        return head.decode("utf-8", errors="replace")
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(head)  # holds back a character split by the cut instead of showing garbage
    return text + f" …[cut {cut + len(decoder.getstate()[0])} bytes]"


def split_lines(state: Followed, data: bytes) -> tuple[list[str], Followed]:
    """The complete lines in ``data`` (the first one continuing ``state.partial``), and the new partial."""
    pieces = data.split(b"\n")
    tail = pieces.pop()
    lines = []
    for index, piece in enumerate(pieces):
        if index == 0 and (state.partial or state.partial_cut):
            joined = state.partial + piece[: MAX_LINE + 1]
            lines.append(line_text(joined, state.partial_cut + max(0, len(piece) - MAX_LINE - 1)))
        else:
            lines.append(line_text(piece))
    if not pieces:  # no newline: the unfinished line grew (or nothing arrived)
        tail = state.partial + tail
        cut = state.partial_cut
        polls = state.partial_polls + 1 if not data else 0
    else:
        cut, polls = 0, 0
    cut += max(0, len(tail) - MAX_LINE)
    state = replace(state, partial=tail[:MAX_LINE], partial_cut=cut, partial_polls=polls)
    if state.partial and state.partial_polls >= PARTIAL_POLLS:
        lines.append(line_text(state.partial, state.partial_cut))
        state = replace(state, partial=b"", partial_cut=0, partial_polls=0)
    return lines, state


def tail_lines(handle: BinaryIO, size: int, count: int) -> tuple[list[bytes], bytes]:
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
    if position > 0:
        if not pieces:
            return [], b""  # one giant unfinished line: show it from where we join it
        pieces = pieces[1:]  # the first piece started before what we read
    return (pieces[-count:] if count else []), tail


class LogFile(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path: str = self.spec.options["path"]
        self.backlog: int = self.spec.options["lines"]
        self._files: dict[str, Followed] = {}
        self._started = False

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
                  identities: dict[tuple[int, int], str], initial: bool) -> tuple[list[str], Followed, str]:
        identity = (info.st_dev, info.st_ino)
        lines: list[str] = []
        note = ""
        rotated = state is not None and state.identity != identity
        if rotated:
            if state.partial and state.identity not in identities:
                lines.append(line_text(state.partial, state.partial_cut))  # the old file is finished
            note, state = "; reopened after rotation", None
        if state is None:
            # the same file under another name (rotated into the glob): carry on where it was, no repeats
            carried = next((s for s in previous.values() if s.identity == identity), None)
            if carried is not None:
                state = carried
            elif initial or (info.st_size > MAX_READ and not rotated):
                complete, tail = tail_lines(handle, info.st_size, self.backlog if initial else 0)
                lines += [line_text(line) for line in complete]
                state = Followed(identity, info.st_size, tail[:MAX_LINE], max(0, len(tail) - MAX_LINE))
                return lines, state, note
            else:
                state = Followed(identity)
        elif info.st_size < state.offset:
            if state.partial:
                lines.append(line_text(state.partial, state.partial_cut))
            state, note = Followed(identity), "; truncated, reading from the start"
        handle.seek(state.offset)
        data = handle.read(min(MAX_READ, info.st_size - state.offset))
        more, state = split_lines(replace(state, offset=state.offset + len(data)), data)
        return lines + more, state, note

    def _reading(self, path: str, state: State, reason: str, lines: list[str], now: float) -> LogReading:
        return LogReading(key=f"{self.name}:{path}", source=self.name, state=state, reason=one_line(reason), ts=now,
                          path=path, lines=tuple(LogLine(self.name, text, now) for text in lines))
