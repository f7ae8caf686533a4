"""A supervisord program's stdout or stderr log, read through supervisord's XML-RPC API.

The first poll shows the last lines of the newest 64 KiB (``tailProcessStdoutLog``). Later polls ask for
the log's size (a tail of length 0) and read exactly the new bytes (``readProcessStdoutLog``): a tail with
a length returns the *last* ``length`` bytes, not the bytes from the offset asked for. supervisord decodes
what it sends as strict UTF-8: a chunk that is not cannot be sent at all (HTTP 500), so it is skipped and
the reading says so. Control characters (colour codes) arrive intact: see supervisor_rpc.ControlCharactersSurvive.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any
from xml.parsers.expat import ExpatError

from ..log_reading import Piece, Splitter
from ..logtext import Stamper
from ..model import LogReading, Reading, State
from .base import Source
from .log_file import PARTIAL_POLLS
from .service_base import PollFailed
from .supervisor_rpc import BAD_NAME, Endpoint
from .text import human_bytes, one_line

BACKLOG_BYTES = 64 * 1024
MAX_BEHIND = 1024 * 1024  # further behind than this, jump to the newest BACKLOG_BYTES and say what was missed
METHODS = {"stdout": ("tailProcessStdoutLog", "readProcessStdoutLog"),
           "stderr": ("tailProcessStderrLog", "readProcessStderrLog")}
UTF8_SHIFTS = 4  # a window that starts inside a character: move its start by up to 3 bytes


class Unsendable(Exception):
    """supervisord cannot send these bytes: not UTF-8 (HTTP 500) or control characters (bad XML)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class LogSupervisor(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.program: str = options["program"]
        self.stream: str = options["stream"]
        self.backlog: int = options["lines"]
        self.endpoint = Endpoint.parse(options["url"], options["username"], options["password"])
        self.tail_method, self.read_method = METHODS[self.stream]
        self.stamper = Stamper(self.name, self.clock)
        self._offset: int | None = None
        self._cutter = Splitter(None)
        self._quiet_polls = 0
        self._busy = False

    def describe(self) -> str:
        return f"{self.stream} of {self.program} on {self.endpoint.shown}"

    async def poll(self) -> list[Reading]:
        now = self.clock()
        try:
            pieces, note = await self.in_thread(self._read)
        except PollFailed as failed:
            self._busy = False
            return [self._reading(failed.state, failed.reason, [], now)]
        lines = tuple(self.stamper.line(p.text(), now, cut=p.cut) for p in pieces)
        self._busy = bool(lines)
        noun = "line" if len(lines) == 1 else "lines"
        return [self._reading(State.OK, f"following, {len(lines)} new {noun}{note}", lines, now)]

    def hurry(self) -> bool:
        return self._busy

    def _reading(self, state: State, reason: str, lines: tuple, now: float) -> LogReading:
        return LogReading(key=self.name, source=self.name, state=state, reason=one_line(reason), ts=now, lines=lines)

    # -- in a worker thread --------------------------------------------------------------------------

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return self.endpoint.call(self.timeout * 0.9, method, self.program, *args)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == BAD_NAME:
                raise PollFailed(State.UNKNOWN, f"no program {self.program} in supervisord (check program:)") from None
            raise PollFailed(State.UNKNOWN, f"supervisord: {fault.faultString}") from None
        except PollFailed as failed:
            cause = failed.__cause__
            if isinstance(cause, ExpatError):
                raise Unsendable("control characters such as colour codes, which XML-RPC cannot carry") from None
            if isinstance(cause, xmlrpc.client.ProtocolError) and cause.errcode == 500:
                raise Unsendable("bytes that are not UTF-8, which supervisord cannot send") from None
            raise

    def _read(self) -> tuple[list[Piece], str]:
        if self._offset is None:
            pieces, self._offset, _, note = self._newest()
            return (pieces[-self.backlog:] if self.backlog else []), note
        _, size, _ = self._call(self.tail_method, self._offset, 0)  # length 0: only the log's size
        pieces: list[Piece] = []
        note = ""
        if size < self._offset:
            pieces += self._cutter.flush()
            self._offset, note = 0, "; the log was rotated or truncated, reading it from the start"
        if size - self._offset > MAX_BEHIND:
            pieces += self._cutter.flush()
            behind = self._offset
            newest, self._offset, window, why = self._newest()
            skipped = max(0, self._offset - window - behind)
            return pieces + newest, f"; missed some output ({human_bytes(skipped)} skipped){why}"
        if size > self._offset:
            try:
                data = self._call(self.read_method, self._offset, size - self._offset).encode("utf-8")
                pieces += self._cutter.feed(data)
            except Unsendable as exc:
                pieces += self._cutter.flush()
                note += f"; skipped {human_bytes(size - self._offset)} holding {exc.why}"
            self._offset, self._quiet_polls = size, 0
        elif self._cutter.pending:
            self._quiet_polls += 1
            if self._quiet_polls >= PARTIAL_POLLS:  # a line without its newline (a prompt): show it anyway
                pieces += self._cutter.flush()
        return pieces, note

    def _newest(self) -> tuple[list[Piece], int, int, str]:
        """The whole lines of the newest BACKLOG_BYTES of the log, the log's size, the bytes read, and a
        note when they could not be sent."""
        self._cutter = Splitter(None)
        why = ""
        for shift in range(UTF8_SHIFTS):
            try:
                text, size, overflow = self._call(self.tail_method, 0, BACKLOG_BYTES - shift)
                break
            except Unsendable as exc:
                why = exc.why
        else:
            _, size, _ = self._call(self.tail_method, 0, 0)
            return [], int(size), 0, f"; the newest {human_bytes(BACKLOG_BYTES)} hold {why}: following from the end"
        data = text.encode("utf-8")
        pieces = self._cutter.feed(data)
        if overflow:  # the window starts inside a line
            if pieces:
                pieces = pieces[1:]
            else:
                self._cutter = Splitter(None)
        return pieces, int(size), len(data), ""
