"""This machine's CPU, load, memory, swap, disks, network rates and top processes, through psutil."""

from __future__ import annotations

import asyncio
import fnmatch
import pwd
import time
from typing import Any, Callable, Iterable

import psutil

from ..model import GaugeReading, ProcessRow, ProcessTableReading, Reading, State
from ..thresholds import classify, level_note, levels_for
from .base import Source
from .text import human_bytes, one_line, os_error_text

FIRST_SAMPLE = 0.25  # seconds between the priming sample and the first real one
PROCESS_EVERY = 5.0  # seconds between walks of the process table


def busy_percent(before: Any, after: Any) -> float | None:
    """CPU busy % between two ``cpu_times`` samples, the way psutil counts it (iowait is idle; guest is in user)."""
    def totals(times: Any) -> tuple[float, float]:
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        return total, times.idle + getattr(times, "iowait", 0.0)

    (total0, idle0), (total1, idle1) = totals(before), totals(after)
    elapsed = total1 - total0
    if elapsed <= 0:
        return None
    return min(100.0, max(0.0, 100.0 * (1 - (idle1 - idle0) / elapsed)))


def counter_rate(before: dict[str, Any], after: dict[str, Any], field: str, elapsed: float) -> float | None:
    """Bytes per second moved between two per-interface counter samples, or None without a usable interval.

    Counted per interface, so one that vanished, appeared or reset its counters cannot make the total negative.
    """
    if elapsed <= 0:
        return None
    moved = sum(max(0, getattr(now, field) - getattr(before[nic], field))
                for nic, now in after.items() if nic in before)
    return moved / elapsed


def _pct(value: float) -> str:
    return f"{value:.0f}%"


class LocalHost(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.levels: dict[str, Any] = dict(options["thresholds"])
        self.exclude_mounts: list[str] = list(options["exclude_mounts"])
        self.top: int = options["top"]
        self._primed = False
        self._cpu_before: tuple[Any, list[Any]] | None = None
        self._net_before: tuple[float, dict[str, Any]] | None = None
        # Our own Process objects, kept between polls so cpu_percent(None) measures since the last poll
        # (process_iter's objects are shared with every other caller in the process).
        self._procs: dict[int, psutil.Process] = {}
        self._users: dict[int, str] = {}
        self._process_table: tuple[float, list[Reading]] = (-PROCESS_EVERY, [])

    def describe(self) -> str:
        return "this machine"

    async def poll(self) -> list[Reading]:
        if not self._primed:
            # CPU, network and per-process figures are deltas: take a first sample so even the first poll
            # (and a one-shot `lakedeck check`) reports real numbers
            self._primed = True
            await self.in_thread(self._sample)
            self._process_table = (-PROCESS_EVERY, [])  # the priming walk measured nothing yet
            await asyncio.sleep(min(FIRST_SAMPLE, self.timeout * 0.3))
        return await self.in_thread(self._sample)

    # -- one sample, in a worker thread ---------------------------------------------------------------

    def _sample(self) -> list[Reading]:
        now = self.clock()
        readings: list[Reading] = []
        parts: list[tuple[str, str, Callable[[float], Iterable[Reading]]]] = [
            ("cpu", "cpu", self._cpu), ("load", "load", self._load), ("memory", "memory", self._memory),
            ("swap", "swap", self._swap), ("disk", "disks", self._disks), ("net:rx", "network", self._net),
            ("processes", "processes", self._processes),
        ]
        for part, label, read in parts:
            try:
                readings.extend(read(now))
            except (OSError, psutil.Error) as exc:
                reason = f"cannot read {label}: {os_error_text(exc)}"
                if part == "processes":
                    readings.append(ProcessTableReading(key=f"{self.name}:processes", source=self.name,
                                                        state=State.UNKNOWN, reason=one_line(reason), ts=now))
                else:
                    readings.append(self._gauge(part, label, None, reason, now, state=State.UNKNOWN))
        return readings

    def _gauge(self, part: str, label: str, percent: float | None, reason: str, now: float, *, metric: str = "",
               amount: float | None = None, unit: str = "%", group: str = "",
               state: State | None = None) -> GaugeReading:
        if state is None:
            warn, critical = levels_for(metric, self.levels, self.thresholds) if metric else (None, None)
            state = classify(percent, warn, critical) if metric else State.OK
            reason += level_note(state, warn, critical)
        return GaugeReading(key=f"{self.name}:{part}", source=self.name, state=state, reason=one_line(reason), ts=now,
                            label=label, amount=(percent or 0.0) if amount is None else amount, unit=unit,
                            percent=percent, group=group)

    def _cpu(self, now: float) -> Iterable[Reading]:
        total, cores = psutil.cpu_times(), psutil.cpu_times(percpu=True)
        before = self._cpu_before
        busy = busy_percent(before[0], total) if before else None
        if busy is None:  # no tick has passed since the last sample (10 ms resolution): keep measuring from it
            self._cpu_before = before or (total, cores)
            return [self._gauge("cpu", "cpu", None, "measuring", now, state=State.OK)]
        self._cpu_before = (total, cores)
        readings = [self._gauge("cpu", "cpu", busy, f"cpu {_pct(busy)}", now, metric="cpu")]
        if len(before[1]) == len(cores):  # a core went on- or offline: wait for the next sample
            for index, (old, new) in enumerate(zip(before[1], cores)):
                core = busy_percent(old, new)
                if core is not None:
                    readings.append(self._gauge(f"cpu:{index}", f"core {index}", core, f"core {index} {_pct(core)}",
                                                now, metric="cpu", group="cpu cores"))
        return readings

    def _load(self, now: float) -> Iterable[Reading]:
        load1 = psutil.getloadavg()[0]
        cores = psutil.cpu_count() or 1
        percent = 100.0 * load1 / cores
        return [self._gauge("load", "load", percent, f"load {load1:.2f} on {cores} cores, {_pct(percent)}", now,
                            metric="load", amount=load1, unit="")]

    def _memory(self, now: float) -> Iterable[Reading]:
        memory = psutil.virtual_memory()
        used = memory.total - memory.available
        return [self._gauge("memory", "memory", memory.percent,
                            f"memory {_pct(memory.percent)} of {human_bytes(memory.total)}", now,
                            metric="memory", amount=used, unit="B")]

    def _swap(self, now: float) -> Iterable[Reading]:
        swap = psutil.swap_memory()
        if swap.total == 0:
            return [self._gauge("swap", "swap", None, "no swap", now, amount=0, unit="B", state=State.OK)]
        return [self._gauge("swap", "swap", swap.percent, f"swap {_pct(swap.percent)} of {human_bytes(swap.total)}",
                            now, metric="swap", amount=swap.used, unit="B")]

    def mounts(self) -> list[str]:
        """Mount points of real disks, minus the excluded globs, one per device (the shortest path wins)."""
        seen: set[str] = set()
        chosen = []
        for part in sorted(psutil.disk_partitions(all=False), key=lambda p: (len(p.mountpoint), p.mountpoint)):
            if part.device in seen or any(fnmatch.fnmatch(part.mountpoint, glob) for glob in self.exclude_mounts):
                continue
            seen.add(part.device)
            chosen.append(part.mountpoint)
        return chosen

    def _disks(self, now: float) -> Iterable[Reading]:
        readings = []
        for mount in self.mounts():
            part, label = f"disk:{mount}", f"disk {mount}"
            try:
                usage = psutil.disk_usage(mount)
            except OSError as exc:
                readings.append(self._gauge(part, label, None, f"cannot read {mount}: {os_error_text(exc)}", now,
                                            group="disks", state=State.UNKNOWN))
                continue
            reason = f"disk {mount} {_pct(usage.percent)} of {human_bytes(usage.total)}, {human_bytes(usage.free)} free"
            readings.append(self._gauge(part, label, usage.percent, reason, now, metric="disk", amount=usage.used,
                                        unit="B", group="disks"))
        return readings

    def _net(self, now: float) -> Iterable[Reading]:
        counters = {nic: c for nic, c in psutil.net_io_counters(pernic=True).items() if nic != "lo"}
        before, self._net_before = self._net_before, (time.monotonic(), counters)
        readings = []
        for part, field in (("net:rx", "bytes_recv"), ("net:tx", "bytes_sent")):
            label = f"net {part.split(':')[1]}"
            rate = counter_rate(before[1], counters, field, self._net_before[0] - before[0]) if before else None
            if rate is None:
                readings.append(self._gauge(part, label, None, "measuring", now, amount=0, unit="B/s", group="network",
                                            state=State.OK))
            else:
                readings.append(self._gauge(part, label, None, f"{label} {human_bytes(rate)}/s", now, amount=rate,
                                            unit="B/s", group="network"))
        return readings

    def _processes(self, now: float) -> Iterable[Reading]:
        """Walking every process is most of a poll's cost: do it every PROCESS_EVERY seconds, as top does."""
        sampled_at, table = self._process_table
        if time.monotonic() - sampled_at < PROCESS_EVERY and table:
            return table
        table = self._walk_processes(now)
        self._process_table = (time.monotonic(), table)
        return table

    def _walk_processes(self, now: float) -> list[Reading]:
        sampled = []
        known: dict[int, psutil.Process] = {}
        for pid in psutil.pids():
            try:
                proc = self._procs.get(pid) or psutil.Process(pid)
                with proc.oneshot():
                    sampled.append((proc, max(0.0, proc.cpu_percent(None)), proc.memory_info().rss, proc.create_time()))
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            known[pid] = proc
        self._procs = known
        by_cpu = sorted(sampled, key=lambda s: (-s[1], -s[2]))[: self.top]
        # twice as many by memory, so that a view can always fill `top` rows that are not already by-CPU rows
        by_memory = sorted(sampled, key=lambda s: -s[2])[: 2 * self.top]
        rows: dict[int, ProcessRow] = {}
        for proc, cpu, rss, started in by_cpu + by_memory:  # names and users only for the rows shown: cheaper
            if proc.pid not in rows:
                rows[proc.pid] = ProcessRow(proc.pid, self._name(proc), self._user(proc), cpu, rss, started)
        return [ProcessTableReading(key=f"{self.name}:processes", source=self.name, state=State.OK,
                                    reason=f"{len(sampled)} processes", ts=now,
                                    by_cpu=tuple(rows[s[0].pid] for s in by_cpu),
                                    by_memory=tuple(rows[s[0].pid] for s in by_memory))]

    @staticmethod
    def _name(proc: psutil.Process) -> str:
        try:
            return proc.name()
        except psutil.Error:
            return "?"

    def _user(self, proc: psutil.Process) -> str:
        try:
            uid = proc.uids().real
        except psutil.Error:
            return "?"
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self._users[uid] = name
        return name
