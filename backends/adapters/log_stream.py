"""What the streaming log kinds share: a long-running command whose stdout lines are followed.

A daemon thread reads stdout as it arrives, cuts every line to MAX_LINE bytes, turns it into LogLines and
keeps them in a bounded queue; poll() only takes what is queued, so a quiet command costs nothing. When the
queue is full (the command writes faster than the console polls) the oldest lines go, and the next reading
says how many. The command runs in its own process group, so close() and a restart leave nothing behind.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import os
import signal
import subprocess
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..log_reading import MAX_LINE, Piece, Splitter
from ..logtext import Stamper
from ..model import LogLine, LogReading, Reading, State
from .base import Source
from .service_base import PollFailed
from .text import one_line, os_error_text

QUEUE_LINES = 50_000
BATCH = 10_000  # lines in one reading; the rest follow at the next poll, which comes soon (hurry)
CHUNK = 64 * 1024
STDERR_KEEP = 4096  # bytes of stderr kept, for the last line of an exit reason
KILL_GRACE = 0.5
ENDED_WAIT = 1.0

ToLines = Callable[[Piece, float], list[LogLine]]


_RUNNING: weakref.WeakSet[Stream] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """A console that exits without closing its sources must not leave `journalctl -f` running for ever."""
    for stream in list(_RUNNING):
        stream.signal(signal.SIGKILL)


class Stream:
    """One run of the command: the process, a thread per output pipe, and the bounded queue of lines."""

    def __init__(self, source: str, argv: Sequence[str], to_lines: ToLines, wake: Callable[[], None],
                 clock: Callable[[], float], *, raw_line: int = MAX_LINE, cwd: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.source = source
        self.argv = list(argv)
        self._to_lines, self._wake, self._clock, self._raw_line = to_lines, wake, clock, raw_line
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
            env={**os.environ, **env} if env else None, start_new_session=True)
        self._queue: collections.deque[LogLine] = collections.deque(maxlen=QUEUE_LINES)
        self._lock = threading.Lock()
        self._dropped = 0
        self._stderr = b""
        self.ended = threading.Event()  # stdout closed and the process reaped
        _RUNNING.add(self)
        self._stderr_thread = threading.Thread(target=self._read_stderr, name=f"lakedeck-stderr:{argv[0]}",
                                               daemon=True)
        self._stderr_thread.start()
        threading.Thread(target=self._read_stdout, name=f"lakedeck-stdout:{argv[0]}", daemon=True).start()

    # -- the reader threads --------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        cutter = Splitter(None, self._raw_line)
        try:
            while data := stdout.read1(CHUNK):
                self._add(cutter.feed(data))
            self._add(cutter.flush())
        except (OSError, ValueError):
            pass
        finally:
            stdout.close()
            self._stderr_thread.join(ENDED_WAIT)
            self.process.wait()  # reaps it: no zombie, whatever ended it
            _RUNNING.discard(self)
            self.ended.set()
            self._wake()  # the exit is shown at once, not at the next interval

    def _read_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        try:
            while data := stderr.read1(CHUNK):
                self._stderr = (self._stderr + data)[-STDERR_KEEP:]
        except (OSError, ValueError):
            pass
        finally:
            stderr.close()

    def _add(self, pieces: list[Piece]) -> None:
        if not pieces:
            return
        read_at = self._clock()
        lines: list[LogLine] = []
        for piece in pieces:
            try:
                lines += self._to_lines(piece, read_at)
            except Exception:  # a parsing bug must not end the stream: show the line as it came
                lines.append(LogLine(self.source, piece.text(), read_at, cut=piece.cut))
        if not lines:
            return
        with self._lock:
            was_empty = not self._queue
            self._dropped += max(0, len(self._queue) + len(lines) - QUEUE_LINES)
            self._queue.extend(lines)
        if was_empty:  # once per batch of lines, never per line: the engine polls, then takes them all
            self._wake()

    # -- the poll side -------------------------------------------------------------------------------

    def take(self, most: int = BATCH) -> tuple[list[LogLine], int, bool]:
        """Up to ``most`` queued lines, the number dropped since the last take, and whether more wait."""
        with self._lock:
            lines = [self._queue.popleft() for _ in range(min(most, len(self._queue)))]
            dropped, self._dropped = self._dropped, 0
            return lines, dropped, bool(self._queue)

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def exit_text(self) -> str:
        """``exited with status 1: <the last line of stderr>``."""
        code = self.process.returncode
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        last = next((line.strip() for line in reversed(self._stderr.decode("utf-8", "replace").splitlines())
                     if line.strip()), "")
        return f"{how}: {last}" if last else how

    def signal(self, number: int) -> None:
        try:
            os.killpg(self.process.pid, number)
        except (ProcessLookupError, PermissionError):
            pass

    async def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL after KILL_GRACE; the reader thread reaps it."""
        if self.ended.is_set():
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.ended.wait, KILL_GRACE)
        finally:  # also when the caller gives up on close(): never leave the group running
            if not self.ended.is_set():
                self.signal(signal.SIGKILL)
        await asyncio.to_thread(self.ended.wait, ENDED_WAIT)


def plural_lines(count: int) -> str:
    return f"{count:,} line" if count == 1 else f"{count:,} lines"


class StreamSource(Source):
    """A log that is the output of one long-running command (journalctl -f, docker compose logs -f...)."""

    raw_line = MAX_LINE  # bytes kept of one raw line; journald's JSON envelope needs more than the text
    missing_hint = "check the command and PATH"  # what to do when the program is not there

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamper = Stamper(self.name, self.clock)
        self._stream: Stream | None = None
        self._ended = ""  # why the previous run ended: the reason until a new run has shown it works
        self._busy = False

    # -- what a kind says ----------------------------------------------------------------------------

    async def argv(self) -> list[str]:
        """The command to run now (a restart may resume where the last run stopped); may raise PollFailed."""
        raise NotImplementedError

    def program(self, argv: Sequence[str]) -> str:
        return os.path.basename(argv[0])

    def cwd(self) -> str | None:
        return None

    def env(self) -> Mapping[str, str] | None:
        return None

    def to_lines(self, piece: Piece, read_at: float) -> list[LogLine]:
        """Runs in the reader thread: the LogLines one raw line becomes (none to skip it)."""
        return [self.stamper.line(piece.text(), read_at, cut=piece.cut)]

    def started(self) -> None:
        """Called before a run starts, in the poll (resets what a kind tracks per run)."""

    def missing(self) -> None:
        """Called when the program was not found."""

    # -- the loop ------------------------------------------------------------------------------------

    async def poll(self) -> list[Reading]:
        now = self.clock()
        stream = self._stream
        if stream is None:
            self._busy = False
            return [await self._start(now)]
        lines, dropped, more = stream.take()
        self._busy = bool(lines)
        if stream.ended.is_set() and not more:
            self._stream = None
            self._ended = f"{self.program(stream.argv)} {stream.exit_text()}"
            return [self.reading(State.UNKNOWN, self._ended, lines, now, dropped)]
        self._ended = ""
        return [self.reading(State.OK, f"following, {len(lines)} new {'line' if len(lines) == 1 else 'lines'}",
                             lines, now, dropped)]

    async def _start(self, now: float) -> LogReading:
        try:
            argv = await self.argv()
        except PollFailed as failed:
            return self.reading(failed.state, failed.reason, [], now)
        program = self.program(argv)
        self.started()
        try:
            self._stream = Stream(self.name, argv, self.to_lines, lambda: self.wake(), self.clock,
                                  raw_line=self.raw_line, cwd=self.cwd(), env=self.env())
        except FileNotFoundError as exc:
            cwd = self.cwd()
            if cwd and exc.filename == cwd:
                return self.reading(State.UNKNOWN, f"cannot run {program}: no directory {cwd} (check cwd:)", [], now)
            self.missing()
            return self.reading(State.UNKNOWN, f"cannot run {program}: not found ({self.missing_hint})", [], now)
        except OSError as exc:
            return self.reading(State.UNKNOWN, f"cannot run {program}: {os_error_text(exc)}", [], now)
        if self._ended:  # still UNKNOWN, so that a command that keeps failing keeps backing off
            return self.reading(State.UNKNOWN, f"restarted {program}; it {self._ended.removeprefix(program + ' ')}",
                                [], now)
        return self.reading(State.OK, f"started {program}, following", [], now)

    def reading(self, state: State, reason: str, lines: list[LogLine], now: float, dropped: int = 0) -> LogReading:
        if dropped:
            reason += f"; dropped {plural_lines(dropped)}: the source wrote faster than the console reads"
        return LogReading(key=self.name, source=self.name, state=state, reason=one_line(reason), ts=now,
                          lines=tuple(lines))

    def hurry(self) -> bool:
        return self._busy

    @property
    def stream(self) -> Stream | None:
        """The current run, for tests and the details view."""
        return self._stream

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.stop()
