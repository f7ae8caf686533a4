"""A fleet of machines through one Prometheus: node_exporter's CPU, memory, disk, load and network per instance.

A poll costs one instant query per metric, whatever the number of hosts (each query answers for every instance
at once), all at the same time: seven requests, plus one range query for the CPU sparklines the first time an
instance is seen. Thresholds are those of the local host (percent; load in percent of the cores).
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..model import HostReading, Reading, State
from ..thresholds import classify, level_note, levels_for
from .base import Source
from .json_api import ApiError
from .prometheus_api import QueryError, ReadsPrometheus, Sample, aligned
from .text import one_line

# What a filesystem must not be to count as a disk: memory, read-only images, containers' layers.
NOT_DISKS = "tmpfs|ramfs|devtmpfs|overlay|squashfs|iso9660|nsfs|autofs|fuse.lxcfs"


def _windows(expression: Callable[[str], str]) -> str:
    """``expression(window)`` over 1m, else over 5m: a rate over [1m] needs two scrapes within a minute, so an
    instance scraped less often shows its 5m figure rather than nothing."""
    return " or ".join(f"({expression(w)})" for w in ("1m", "5m"))


def queries(selector: str) -> dict[str, str]:
    """The PromQL of each metric for the node_exporter series matching ``selector`` (matchers without braces)."""
    sel = selector.strip().strip(",")
    a = f",{sel}" if sel else ""  # appended to a selector that already has a matcher
    fs = f'fstype!~"{NOT_DISKS}"{a}'
    used = f"node_filesystem_size_bytes{{{fs}}} - node_filesystem_free_bytes{{{fs}}}"

    def idle_share(w: str) -> str:
        # idle time over all time, not over the number of cores: a young series' rate() comes out too low (it is
        # divided by the whole window), and both sides equally so. iowait counts as idle, as psutil counts it.
        return (f'sum by (instance) (rate(node_cpu_seconds_total{{mode=~"idle|iowait"{a}}}[{w}]))'
                f" / sum by (instance) (rate(node_cpu_seconds_total{{{sel}}}[{w}]))")

    def net(direction: str) -> str:
        return _windows(lambda w: f"sum by (instance) "
                                  f'(rate(node_network_{direction}_bytes_total{{device!="lo"{a}}}[{w}]))')

    return {
        # with a selector, every target it matches is a host, down or not; without one, the jobs that have
        # node_exporter metrics (Prometheus' own target and other exporters are not hosts)
        "up": f"up{{{sel}}}" if sel else "up and on (job) count by (job) (node_uname_info)",
        "cpu": f"100 * (1 - ({_windows(idle_share)}))",
        "memory": f"max by (instance) (100 * (1 - node_memory_MemAvailable_bytes{{{sel}}}"
                  f" / node_memory_MemTotal_bytes{{{sel}}}))",
        # as df counts it: used / (used + available to users); the fullest filesystem of each instance
        "disk": f"topk by (instance) (1, 100 * ({used}) / ({used} + node_filesystem_avail_bytes{{{fs}}}))",
        "load": f"max by (instance) (node_load1{{{sel}}})"
                f' / count by (instance) (node_cpu_seconds_total{{mode="idle"{a}}})',
        "rx": net("receive"),
        "tx": net("transmit"),
    }


@dataclass
class Figures:
    """What the queries said about one instance."""

    up: float | None = None
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None
    disk_mount: str = ""
    load: float | None = None
    rx: float | None = None
    tx: float | None = None


class PrometheusHosts(ReadsPrometheus, Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.selector: str = options["selector"]
        self.globs: list[str] = list(options["instances"])
        self.levels: dict[str, Any] = dict(options["thresholds"])
        self.window: float = options["range"]
        self.queries = queries(self.selector)
        self.connect(options)
        self._seen: set[str] = set()  # instances whose CPU sparkline has been backfilled
        self._polled = False

    def wanted(self, instance: str) -> bool:
        return not self.globs or any(fnmatch.fnmatchcase(instance, glob) for glob in self.globs)

    def failed(self, reason: str, state: State = State.UNKNOWN) -> list[Reading]:
        """Prometheus cannot be read: one row in the hosts table, where the fleet would be, saying why."""
        return [HostReading(key=self.name, source=self.name, state=state, reason=one_line(reason), ts=self.clock(),
                            instance=f"{self.name} ({self.describe()})", up=False)]

    async def poll(self) -> list[Reading]:
        if self.api is None:
            return self.failed(self.bad_url)
        budget = self.timeout * 0.9
        loop = asyncio.get_running_loop()
        started = loop.time()
        first, self._polled = not self._polled, True
        jobs = [self.api.instant(query, budget) for query in self.queries.values()]
        if first and self.window > 0:  # nothing seen yet: read the sparklines' past beside the figures
            jobs.append(self._cpu_past(budget))
        try:
            answers = await asyncio.gather(*jobs)
        except ApiError as exc:
            return self.failed(self._why(exc))
        figures = self._figures(dict(zip(self.queries, answers)))
        past = answers[len(self.queries)] if len(answers) > len(self.queries) else {}
        new = figures.keys() - self._seen
        if new and not first and self.window > 0:
            past = await self._cpu_past(budget - (loop.time() - started))
        self._seen = set(figures)
        now = self.clock()
        server_now = next((s.ts for samples in answers[:len(self.queries)] for s in samples), now)
        return [self._reading(instance, figures[instance],
                              aligned(past.get(instance, ()), server_now, now) if instance in new else (), now)
                for instance in sorted(figures)]

    def _why(self, exc: ApiError) -> str:
        if isinstance(exc, QueryError) and self.selector:
            return one_line(f"{exc} (check the selector {self.selector!r})")
        return str(exc)

    async def _cpu_past(self, budget: float) -> dict[str, tuple[tuple[float, float], ...]]:
        """Each instance's recent CPU from one range query; nothing when it fails (polls fill the sparklines)."""
        if budget <= 0:
            return {}
        try:
            series = await self.api.range_query(self.queries["cpu"], self.window, budget)
        except ApiError:
            return {}
        return {s.labels.get("instance", ""): s.points for s in series}

    def _figures(self, answers: Mapping[str, list[Sample]]) -> dict[str, Figures]:
        found: dict[str, Figures] = {}

        def of(sample: Sample) -> Figures | None:
            instance = sample.labels.get("instance")
            if instance is None or not self.wanted(instance):
                return None
            return found.setdefault(instance, Figures())

        for metric, samples in answers.items():
            for sample in samples:
                figures = of(sample)
                if figures is None or sample.value != sample.value:  # NaN: a 0/0, say nothing rather than NaN
                    continue
                if metric == "up":  # several jobs may scrape one instance: down when any of them fails
                    figures.up = sample.value if figures.up is None else min(figures.up, sample.value)
                elif metric == "disk":
                    if figures.disk is None or sample.value > figures.disk:
                        figures.disk, figures.disk_mount = sample.value, sample.labels.get("mountpoint", "")
                elif metric in ("cpu", "memory"):  # a rate's extrapolation can step just past the bounds
                    setattr(figures, metric, min(100.0, max(0.0, sample.value)))
                else:
                    setattr(figures, metric, sample.value)
        return found

    def _reading(self, instance: str, f: Figures, backfill: tuple[tuple[float, float], ...], now: float) -> HostReading:
        up = f.up is None or f.up > 0  # no up series but node metrics: scraped by a job the selector left out
        state, reason = self._judge(f) if up else (State.CRITICAL, "down: up=0, the last scrape failed")
        return HostReading(key=f"{self.name}:{instance}", source=self.name, state=state, reason=one_line(reason),
                           ts=now, instance=instance, up=up, cpu=f.cpu, memory=f.memory, disk=f.disk,
                           disk_mount=f.disk_mount, load=f.load, rx=f.rx, tx=f.tx, backfill=backfill)

    def _judge(self, f: Figures) -> tuple[State, str]:
        """The worst metric against its levels, and the words for it; ``ok`` when none crossed one."""
        checks = [("cpu", f.cpu, f"cpu {f.cpu:.0f}%" if f.cpu is not None else ""),
                  ("memory", f.memory, f"memory {f.memory:.0f}%" if f.memory is not None else ""),
                  ("disk", f.disk, f"disk {f.disk_mount} {f.disk:.0f}%" if f.disk is not None else ""),
                  ("load", None if f.load is None else f.load * 100, f"load {f.load:.2f} per core" if f.load is not None
                   else "")]
        worst, words = State.OK, "ok"
        for metric, value, said in checks:
            if value is None:
                continue
            warn, critical = levels_for(metric, self.levels, self.thresholds)
            state = classify(value, warn, critical)
            if state > worst:
                note = _per_core_note(state, warn, critical) if metric == "load" else level_note(state, warn, critical)
                worst, words = state, said + note
        missing = [m for m, value, _ in checks if value is None]
        if len(missing) == len(checks) and f.rx is None:
            return State.UNKNOWN, "no node_exporter metrics for this instance (is it a node_exporter?)"
        if worst is State.OK and missing:
            words += " (cpu: measuring)" if missing == ["cpu"] else f" (no {', '.join(missing)} data)"
        return worst, words


def _per_core_note(state: State, warn: float, critical: float) -> str:
    """Load levels are percent of the cores; said per core, as the load is: `` (critical at 0.9 per core)``."""
    level = {State.CRITICAL: ("critical", critical), State.WARN: ("warn", warn)}.get(state)
    return f" ({level[0]} at {level[1] / 100:g} per core)" if level else ""
