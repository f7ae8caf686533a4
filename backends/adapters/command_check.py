"""A command whose exit code says how a service is (``pg_isready``, a script): run as an argument list."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import time
from typing import Any

from ..model import CheckReading, Reading, State
from .base import Source
from .text import one_line, os_error_text, seconds

MAX_OUTPUT = 64 * 1024  # per stream
# After the command exits, how long a background child still holding its output pipe may keep it open.
PIPE_GRACE = 0.2
KILL_GRACE = 0.5


class OutputCollector(asyncio.SubprocessProtocol):
    """Keeps the first MAX_OUTPUT bytes of stdout and stderr and drops the rest, so the command never blocks
    on a full pipe; says when the command exited even while a background child still holds its pipes
    (``Process.wait()`` would wait for those pipes too)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.output = {1: bytearray(), 2: bytearray()}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.finished: asyncio.Future[None] = loop.create_future()  # exited and every pipe closed

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        kept = self.output.get(fd)
        if kept is not None and len(kept) < MAX_OUTPUT:
            kept += data[: MAX_OUTPUT - len(kept)]

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_result(None)


def first_line(*outputs: bytes) -> str:
    """The first non-empty line of the first output that has one."""
    for output in outputs:
        for line in output.decode("utf-8", errors="replace").splitlines():
            if line.strip():
                return line.strip()
    return ""


class CommandCheck(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.command: list[str] = list(options["command"])
        self.ok_codes: frozenset[int] = frozenset(options["ok_codes"])
        self.warn_codes: frozenset[int] = frozenset(options["warn_codes"])
        self.cwd: str | None = options["cwd"]
        self.env: dict[str, str] = dict(options["env"])

    def describe(self) -> str:
        return one_line(shlex.join(self.command), 60)

    async def poll(self) -> list[Reading]:
        limit = self.timeout * 0.9
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        collector = OutputCollector(loop)
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: collector, *self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=self.cwd, env={**os.environ, **self.env},
                start_new_session=True,  # its own process group, so a timeout can kill its children too
            )
        except FileNotFoundError as exc:
            if self.cwd is not None and exc.filename == self.cwd:
                return [self._reading(State.UNKNOWN, f"cannot run in {self.cwd}: no such directory")]
            return [self._reading(State.UNKNOWN, f"command not found: {self.command[0]}")]
        except OSError as exc:
            return [self._reading(State.UNKNOWN, f"cannot run {self.command[0]}: {os_error_text(exc)}")]

        try:
            return [await self._outcome(transport, collector, limit, started)]
        except asyncio.CancelledError:  # the engine gave up on this poll: leave nothing running
            await self._kill_group(transport, collector)
            raise

    async def _outcome(self, transport: asyncio.SubprocessTransport, collector: OutputCollector, limit: float,
                       started: float) -> CheckReading:
        try:
            await asyncio.wait_for(asyncio.shield(collector.exited), limit)
        except asyncio.TimeoutError:
            await self._kill_group(transport, collector)
            return self._reading(State.CRITICAL, f"still running after {seconds(limit)}; killed",
                                 (time.perf_counter() - started) * 1000)
        elapsed_ms = (time.perf_counter() - started) * 1000
        grace = max(0.01, min(PIPE_GRACE, limit - elapsed_ms / 1000))
        try:  # the last output may still be on its way
            await asyncio.wait_for(asyncio.shield(collector.finished), grace)
        except asyncio.TimeoutError:
            await self._kill_group(transport, collector)  # a background child kept the pipes open: it goes too
        transport.close()
        code = transport.get_returncode()
        line = first_line(bytes(collector.output[1]), bytes(collector.output[2]))
        return self._verdict(code if code is not None else -signal.SIGKILL, line, elapsed_ms)

    def _verdict(self, code: int, line: str, elapsed_ms: float) -> CheckReading:
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            outcome = f"killed by {name}"
        else:
            outcome = f"exit {code}"
        state = State.OK if code in self.ok_codes else State.WARN if code in self.warn_codes else State.CRITICAL
        reason = f"{one_line(line, 160)} ({outcome})" if line else f"no output ({outcome})"
        return self._reading(state, reason, elapsed_ms, (("exit", str(code)), ("took", seconds(elapsed_ms / 1000))))

    @staticmethod
    async def _kill_group(transport: asyncio.SubprocessTransport, collector: OutputCollector) -> None:
        try:
            os.killpg(transport.get_pid(), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:  # let asyncio reap the leader (SIGKILL cannot be ignored) before letting go of it
            await asyncio.wait_for(asyncio.shield(collector.exited), KILL_GRACE)
        except asyncio.TimeoutError:
            pass
        transport.close()

    def _reading(self, state: State, reason: str, latency_ms: float | None = None,
                 details: tuple[tuple[str, str], ...] = ()) -> CheckReading:
        return CheckReading(key=self.name, source=self.name, state=state, reason=one_line(reason), ts=self.clock(),
                            kind="command", target=self.describe(), latency_ms=latency_ms, details=details)
