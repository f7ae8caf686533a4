"""Follow log files (one path or a glob): the last lines at start, then what is appended."""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from ..log_reading import ChangedError, Piece, Splitter, lines_backward
from ..logtext import Stamper
from ..model import LogReading, Reading, State
from .base import Source
from .text import human_bytes, one_line, os_error_text

MAX_READ = 1024 * 1024  # per file per poll
PARTIAL_POLLS = 2  # an unfinished last line is shown after this many polls without new data


@dataclass(frozen=True)
class Followed:
    identity: tuple[int, int]  # (device, inode): a new one at the same path means it was rotated
    offset: int = 0
    partial: bytes = b""  # the start of a line whose newline has not arrived, at most MAX_LINE bytes
    partial_cut: int = 0  # bytes of that line dropped beyond MAX_LINE
    partial_polls: int = 0
    line_start: int = 0  # where that unfinished line starts in the file


def split_lines(state: Followed, data: bytes) -> tuple[list[Piece], Followed]:
    """The complete lines in ``data`` (the first one continuing ``state.partial``), and the new partial.
    ``state.offset`` is where ``data`` ends in the file."""
    splitter = Splitter.resume(state.line_start, state.offset - len(data), state.partial, state.partial_cut)
    lines = splitter.feed(data)
    polls = 0 if data else state.partial_polls + 1
    if splitter.pending and polls >= PARTIAL_POLLS:
        lines += splitter.flush()
        polls = 0
    return lines, replace(state, partial=splitter.head, partial_cut=splitter.cut, partial_polls=polls,
                          line_start=splitter.start)


def tail_lines(fd: int, size: int, count: int) -> tuple[list[Piece], Splitter]:
    """The last ``count`` complete lines before ``size``, and a Splitter holding the unfinished line after
    them; read backwards as the pager reads (log_reading), so a line of any length hides nothing."""
    pieces = lines_backward(fd, size, max(count, 1))
    last = pieces[-1] if pieces else None
    if last is not None and last.offset + len(last.data) + last.cut == size:  # no newline after it
        pieces.pop()
        splitter = Splitter.resume(last.offset, size, last.data, last.cut)
    else:
        splitter = Splitter(size)
    return (pieces[-count:] if count else []), splitter


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
        except ChangedError:
            return self._reading(path, State.UNKNOWN, f"cannot read {path}: it shrank while read", [], now), state
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
                complete, splitter = tail_lines(handle.fileno(), info.st_size, self.backlog if initial else 0)
                state = Followed(identity, info.st_size, splitter.head, splitter.cut, line_start=splitter.start)
                return lines + complete, state, note
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
