"""What the service-control adapters (systemd, compose, supervisor, kubernetes) share.

``run_capture`` runs a short command (``systemctl show``, ``kubectl get``) as an argument list and returns its
output, killing its whole process group when it overruns. ``ServiceSource`` turns every way a poll can fail
into one reading with a reason: its subclasses write ``check()`` and raise ``PollFailed`` when they cannot tell.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..actions import Action, Tier
from ..model import CheckReading, Reading, State
from .base import Source
from .text import one_line, os_error_text, seconds

MAX_CAPTURE = 4 * 1024 * 1024  # per stream; the rest is read and dropped so the command never blocks
KILL_GRACE = 0.5
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Captured:
    code: int
    stdout: str
    stderr: str

    def lines(self) -> list[str]:
        """The non-empty lines of stderr, else of stdout, without the noise of warnings."""
        for text in (self.stderr, self.stdout):
            found = [line.strip() for line in text.splitlines()
                     if line.strip() and "level=warning" not in line]
            if found:
                return found
        return []

    def first_line(self) -> str:
        return next(iter(self.lines()), "")

    def last_line(self) -> str:
        """kubectl and docker put their summary last, after log lines."""
        found = self.lines()
        return found[-1] if found else ""


class CaptureTimeout(Exception):
    def __init__(self, limit: float) -> None:
        super().__init__(f"no answer within {seconds(limit)}")
        self.limit = limit


async def run_capture(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None) -> Captured:
    """Run ``argv`` (never through a shell) and capture its output.

    Raises FileNotFoundError when the program is missing, OSError when it cannot be run, CaptureTimeout when
    it did not finish within ``timeout`` (its whole process group is killed first).
    """
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})}, start_new_session=True)
    assert process.stdout is not None and process.stderr is not None
    try:
        out, err, _ = await asyncio.wait_for(
            asyncio.gather(_read_bounded(process.stdout), _read_bounded(process.stderr), process.wait()), timeout)
    except asyncio.TimeoutError:
        await _kill_group(process)
        raise CaptureTimeout(timeout) from None
    except asyncio.CancelledError:  # the engine gave up on this poll: leave nothing running
        await _kill_group(process)
        raise
    code = process.returncode if process.returncode is not None else -signal.SIGKILL
    return Captured(code, out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace"))


async def _read_bounded(stream: asyncio.StreamReader) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(CHUNK):
        if len(kept) < MAX_CAPTURE:
            kept += chunk[: MAX_CAPTURE - len(kept)]
    return bytes(kept)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:  # reap it (SIGKILL cannot be ignored) so no zombie is left behind
        await asyncio.wait_for(process.wait(), KILL_GRACE)
    except asyncio.TimeoutError:
        pass


def missing_program(program: str) -> str:
    if os.sep in program:
        return f"{program} does not exist here — check the path"
    return f"{program} is not installed here"


async def capture(argv: Sequence[str], timeout: float, what: str = "") -> Captured:
    """``run_capture``, with a missing program, a hang or an OS error raised as PollFailed with its reason."""
    what = what or os.path.basename(argv[0])
    try:
        return await run_capture(argv, timeout)
    except FileNotFoundError:
        raise PollFailed(State.UNKNOWN, missing_program(argv[0]), missing=True) from None
    except CaptureTimeout as exc:
        raise PollFailed(State.UNKNOWN, f"{what} gave no answer within {seconds(exc.limit)}; killed") from None
    except OSError as exc:
        raise PollFailed(State.UNKNOWN, f"cannot run {argv[0]}: {os_error_text(exc)}") from None


class PollFailed(Exception):
    """The poll could not tell how the target is: becomes the reading, with this state and reason."""

    def __init__(self, state: State, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason
        self.missing = missing  # the program is not there at all


class ServiceSource(Source):
    """A service controlled through a command-line tool or an API: one reading per poll, and actions."""

    _deadline = 0.0

    async def poll(self) -> list[Reading]:
        self._deadline = time.monotonic() + self.timeout * 0.9
        try:
            return [await self.check()]
        except PollFailed as exc:
            return [self.reading(exc.state, exc.reason)]

    async def check(self) -> CheckReading:
        raise NotImplementedError

    def remaining(self) -> float:
        """What is left of this poll's time (at least a little, so a late step still gets a chance)."""
        return max(0.05, self._deadline - time.monotonic())

    async def capture(self, argv: Sequence[str], what: str = "") -> Captured:
        """``run_capture`` within this poll's time; a missing program, a hang or an OS error is PollFailed."""
        return await capture(argv, self.remaining(), what)

    def reading(self, state: State, reason: str, details: tuple[tuple[str, str], ...] = ()) -> CheckReading:
        return CheckReading(key=self.name, source=self.name, state=state, reason=one_line(reason), ts=self.clock(),
                            kind=self.kind, target=self.describe(), details=details)

    def action(self, id: str, title: str, argv: Sequence[str] = (), expect: str = "",
               tier: Tier = Tier.DISRUPTIVE, call: str = "", timeout: float = 60.0) -> Action:
        return Action(target=self.name, id=id, title=title, tier=tier, argv=tuple(argv), call=call,
                      timeout=timeout, expect=expect)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
