"""A local process, found by exact name, by text in its command line, or through a pidfile."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import psutil

from ..durations import format_duration
from ..model import CheckReading, Reading, State
from .base import Source
from .text import human_bytes, one_line, os_error_text


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str
    details: tuple[tuple[str, str], ...] = ()


# (pid, start time), our Process object, CPU % since the last poll (None the first time), RSS (None when denied)
Sample = tuple[tuple[int, float], psutil.Process, float | None, int | None]


def percent_text(value: float) -> str:
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


class ProcessCheck(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.process_name: str | None = options["process"]
        self.cmdline: str | None = options["cmdline"]
        self.pidfile: str | None = options["pidfile"]
        self.min_count: int = options["min_count"]
        # Our own Process objects, kept between polls so cpu_percent(None) measures since the last poll.
        # Keyed with the start time so a reused pid is a new process.
        self._known: dict[tuple[int, float], psutil.Process] = {}

    def describe(self) -> str:
        if self.pidfile is not None:
            return f"pidfile {self.pidfile}"
        if self.process_name is not None:
            return f"process {self.process_name}"
        return f"cmdline ~ {self.cmdline}"

    async def poll(self) -> list[Reading]:
        verdict = await self.in_thread(self._inspect)
        return [CheckReading(key=self.name, source=self.name, state=verdict.state, reason=one_line(verdict.reason),
                             ts=self.clock(), kind="process", target=self.describe(), details=verdict.details)]

    def _inspect(self) -> Verdict:
        try:
            if self.pidfile is not None:
                found = self._from_pidfile(self.pidfile)
                if isinstance(found, Verdict):
                    return found
                processes = [found]
            else:
                processes = self._matching()
        except (psutil.Error, OSError) as exc:
            return Verdict(State.UNKNOWN, f"cannot list processes: {os_error_text(exc)}")
        return self._summarise(processes)

    def _matching(self) -> list[psutil.Process]:
        me = os.getpid()
        attribute = "name" if self.process_name is not None else "cmdline"
        found = []
        for proc in psutil.process_iter([attribute]):
            value = proc.info[attribute]
            if proc.pid == me or value is None:  # None: access denied, or it vanished
                continue
            if value == self.process_name if attribute == "name" else self.cmdline in " ".join(value):
                if not _is_zombie(proc):
                    found.append(proc)
        return found

    def _from_pidfile(self, path: str) -> psutil.Process | Verdict:
        try:
            with open(path, "rb") as handle:
                text = handle.read(64).decode("ascii", errors="replace").strip()
        except FileNotFoundError:
            return Verdict(State.CRITICAL, f"pidfile {path} missing — is the service running?")
        except OSError as exc:
            return Verdict(State.UNKNOWN, f"cannot read pidfile {path}: {os_error_text(exc)}")
        first = text.split()[0] if text.split() else ""
        if not first.isdigit() or int(first) <= 0:
            return Verdict(State.UNKNOWN, f"pidfile {path} holds {text[:20]!r}, not a pid")
        pid = int(first)
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return Verdict(State.CRITICAL, f"pid {pid} from {path} is not running (stale pidfile)",
                           (("pid", str(pid)),))
        if _is_zombie(proc):
            return Verdict(State.CRITICAL, f"pid {pid} from {path} has exited (zombie, not yet reaped)",
                           (("pid", str(pid)),))
        return proc

    def _summarise(self, processes: list[psutil.Process]) -> Verdict:
        samples = [sample for sample in map(self._sample, processes) if sample is not None]
        self._known = {key: proc for key, proc, *_ in samples}
        count = len(samples)
        if count < self.min_count:
            return Verdict(State.CRITICAL, self._too_few(count), (("count", str(count)),))
        (pid, started), *_ = sorted((key for key, *_ in samples), key=lambda key: key[1])
        uptime = format_duration(time.time() - started) if started else "?"
        cpus = [cpu for _, _, cpu, _ in samples if cpu is not None]
        rss = [rss for _, _, _, rss in samples if rss is not None]
        parts = [f"pid {pid} up {uptime}"] if count == 1 else [f"{count} processes, oldest pid {pid} up {uptime}"]
        details = [("pid", str(pid)), ("count", str(count)), ("uptime", uptime)]
        if cpus:
            parts.append(f"cpu {percent_text(sum(cpus))}")
            details.append(("cpu", percent_text(sum(cpus))))
        if rss:
            parts.append(f"rss {human_bytes(sum(rss))}")
            details.append(("rss", human_bytes(sum(rss))))
        return Verdict(State.OK, ", ".join(parts), tuple(details))

    def _sample(self, found: psutil.Process) -> Sample | None:
        try:
            key = (found.pid, found.create_time())
            proc = self._known.get(key)
            first_time = proc is None
            if proc is None:
                proc = psutil.Process(found.pid)  # not process_iter's shared object: others would reset its CPU clock
                if proc.create_time() != key[1]:
                    return None
            with proc.oneshot():
                cpu = proc.cpu_percent(None)
                try:
                    rss: int | None = proc.memory_info().rss
                except psutil.AccessDenied:
                    rss = None
            return key, proc, (None if first_time else cpu), rss
        except psutil.AccessDenied:
            return (found.pid, 0.0), found, None, None
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None

    def _too_few(self, count: int) -> str:
        if self.pidfile is not None:
            if count == 0:
                return f"the pid in {self.pidfile} is no longer running"
            what = f"from pidfile {self.pidfile}"
        elif self.process_name is not None:
            what = f"named '{self.process_name}'"
        else:
            what = f"with '{self.cmdline}' in its command line"
        if count == 0:
            return f"no process {what} is running"
        noun = "process" if count == 1 else "processes"
        return f"only {count} {noun} {what} (expected at least {self.min_count})"


def _is_zombie(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.ZombieProcess:
        return True
    except psutil.Error:
        return False
