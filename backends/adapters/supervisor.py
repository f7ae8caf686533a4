"""A program under supervisord: its state through XML-RPC; start, stop, restart and tail its log."""

from __future__ import annotations

import asyncio
import time
import xmlrpc.client
from typing import Any

from ..actions import Action, ActionResult, Emit, Tier, Transcript
from ..config import SourceSpec
from ..durations import format_uptime
from ..model import CheckReading, State
from ..runner import TAIL_LINES
from .service_base import PollFailed, ServiceSource
from .supervisor_rpc import (
    ABNORMAL_TERMINATION,
    ALREADY_STARTED,
    BAD_NAME,
    NOT_RUNNING,
    SPAWN_ERROR,
    Endpoint,
)

TAIL_BYTES = 16 * 1024
STEPS = {"start": ("startProcess",), "stop": ("stopProcess",), "restart": ("stopProcess", "startProcess")}
WORKING = {"STARTING", "BACKOFF", "STOPPING"}


class SupervisorProgram(ServiceSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.program: str = options["program"]
        self.endpoint = Endpoint.parse(options["url"], options["username"], options["password"])

    def describe(self) -> str:
        return f"{self.program} on {self.endpoint.shown}"

    def log_spec(self) -> SourceSpec:
        options = self.spec.options
        return self.log_spec_of("supervisor", url=options["url"], program=self.program,
                                username=options["username"], password=options["password"])

    async def check(self) -> CheckReading:
        try:
            info = await self.in_thread(self.endpoint.call, self.timeout * 0.9, "getProcessInfo", self.program)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == BAD_NAME:
                raise PollFailed(State.UNKNOWN, f"no program {self.program} in supervisord") from None
            raise PollFailed(State.UNKNOWN, f"supervisord: {fault.faultString}") from None
        return self._verdict(info)

    def _verdict(self, info: dict[str, Any]) -> CheckReading:
        name, pid = str(info.get("statename", "UNKNOWN")), int(info.get("pid") or 0)
        spawnerr, description = str(info.get("spawnerr") or ""), str(info.get("description") or "")
        uptime = format_uptime(int(info.get("now") or 0) - int(info.get("start") or 0))
        details = (("state", name), ("pid", str(pid) if pid else ""), ("group", str(info.get("group") or "")),
                   ("exit status", str(info.get("exitstatus")) if name == "EXITED" else ""),
                   ("stdout log", str(info.get("stdout_logfile") or "")),
                   ("stderr log", str(info.get("stderr_logfile") or "")))
        details = tuple((label, value) for label, value in details if value)
        if name == "RUNNING":
            return self.reading(State.OK, f"running, pid {pid}, up {uptime}", details)
        if name in WORKING:
            why = f": {spawnerr}" if spawnerr else (f", pid {pid}" if pid else "")
            return self.reading(State.WARN, f"{name.lower()}{why}", details)
        when = "(not started)" if description in ("", "Not started") else f"at {description}"
        if name == "EXITED":
            reason = f"exited with status {info.get('exitstatus')} {when}"
        elif name == "FATAL":
            reason = f"fatal: {spawnerr or description} — see its log (tail)"
        elif name == "STOPPED":
            reason = f"stopped {when}"
        else:
            reason = f"supervisord reports {name}: {spawnerr or description or 'no detail'}"
        return self.reading(State.CRITICAL, reason, details)

    def actions(self) -> list[Action]:
        name = repr(self.program)
        start, stop = f"supervisor.startProcess({name}, True)", f"supervisor.stopProcess({name}, True)"
        return [
            self.action("start", "Start", call=start, expect="starting"),
            self.action("stop", "Stop", call=stop, expect="stopping"),
            self.action("restart", "Restart", call=f"{stop}; {start}", expect="restarting"),
            self.action("tail", "Tail stdout log", call=f"supervisor.tailProcessStdoutLog({name}, 0, {TAIL_BYTES})",
                        tier=Tier.READ, timeout=15.0),
        ]

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        if action.argv or action.request is not None or (action.id not in STEPS and action.id != "tail"):
            return await super().run(action, emit)  # the config's own commands and requests
        started = time.monotonic()
        transcript = Transcript(action, emit)
        say, done = transcript.say, transcript.result

        try:
            if action.id == "tail":
                text, _, overflow = await self.tail("stdout", 0, TAIL_BYTES)
                lines = text.splitlines()[1 if overflow else 0:]  # past the start of a big log: skip the cut line
                for line in lines[-TAIL_LINES:]:
                    say(line)
                return done(True)
            for method in STEPS[action.id]:
                remaining = max(1.0, action.timeout - (time.monotonic() - started))
                try:
                    await asyncio.to_thread(self.endpoint.call, remaining, method, self.program, True)
                    say(f"{method} {self.program}: ok")
                except xmlrpc.client.Fault as fault:
                    say(f"{method} {self.program}: {fault.faultString}")
                    if not (fault.faultCode == NOT_RUNNING and action.id == "restart"):
                        return done(False, await self._refusal(method, fault))
        except PollFailed as failed:
            say(failed.reason)
            return done(False, failed.reason)
        return done(True)

    async def _refusal(self, method: str, fault: xmlrpc.client.Fault) -> str:
        if fault.faultCode == NOT_RUNNING:
            return f"{self.program} was not running: nothing to stop"
        if fault.faultCode == ALREADY_STARTED:
            return f"{self.program} is already running"
        if fault.faultCode == BAD_NAME:
            return f"no program {self.program} in supervisord"
        if fault.faultCode in (SPAWN_ERROR, ABNORMAL_TERMINATION):
            why = await self._spawn_error()
            return f"{self.program} did not start: {why or 'it exited while starting'} — see its log (tail)"
        return f"{method} {self.program}: {fault.faultString}"

    async def _spawn_error(self) -> str:
        """Why supervisord could not start the program (``Exited too quickly``...), if it can say."""
        try:
            info = await asyncio.to_thread(self.endpoint.call, self.timeout * 0.9, "getProcessInfo", self.program)
        except (xmlrpc.client.Fault, PollFailed):
            return ""
        return str(info.get("spawnerr") or "")

    async def tail(self, stream: str = "stdout", offset: int = 0, length: int = 64 * 1024) -> tuple[str, int, bool]:
        """The log's bytes from ``offset`` (the last ``length`` when there is more), the offset to ask from next
        time, and whether bytes were skipped. A log not written yet is empty. Raises PollFailed with a reason
        when it cannot be read (unknown program, supervisord unreachable)."""
        method = {"stdout": "tailProcessStdoutLog", "stderr": "tailProcessStderrLog"}[stream]
        try:
            text, new_offset, overflow = await asyncio.to_thread(
                self.endpoint.call, self.timeout * 0.9, method, self.program, offset, length)
        except xmlrpc.client.Fault as fault:
            raise PollFailed(State.UNKNOWN, await self._refusal(method, fault)) from None
        return text, int(new_offset), bool(overflow)
