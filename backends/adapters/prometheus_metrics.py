"""PromQL gauges (Resources) and scrape targets' health (Services) from one Prometheus.

A poll makes one instant query per gauge, all at once, plus ``/api/v1/targets`` when ``targets: true``. Each
series a query returns is a gauge; a sparkline starts full: the first time a series is seen, one range query of
its gauge fills it (after that the engine keeps the history itself).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..model import CheckReading, GaugeReading, Reading, State
from ..thresholds import classify
from .base import Source
from .json_api import ApiError
from .prometheus_api import QueryError, ReadsPrometheus, Sample, aligned
from .text import human_bytes, one_line


def format_value(value: float, unit: str) -> str:
    """``412.3 ms``, ``99.95%``, ``1.2 MB/s``, ``12,345 msg/s``: four significant digits, grouped when large."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else f"{'+' if value > 0 else '-'}Inf"
    if unit in ("B", "B/s"):
        return human_bytes(value) + unit[1:]
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{text}{unit}" if unit in ("", "%") else f"{text} {unit}"


def judge(value: float, levels: Mapping[str, Any], unit: str = "") -> tuple[State, str]:
    """The state of ``value`` against ``{warn, critical, below}`` and the note that says why (`` (warn at 300 ms)``).

    With ``below: true`` lower is worse: WARN at or below warn, CRITICAL at or below critical.
    """
    warn, critical, below = levels.get("warn"), levels.get("critical"), bool(levels.get("below"))
    if below:  # negated, "at or below" becomes classify's "at or above"
        state = classify(-value, None if warn is None else -warn, None if critical is None else -critical)
    else:
        state = classify(value, warn, critical)
    level = {State.CRITICAL: ("critical", critical), State.WARN: ("warn", warn)}.get(state)
    if level is None or level[1] is None:
        return state, ""
    return state, f" ({level[0]} at{' or below' if below else ''} {format_value(level[1], unit)})"


def series_names(samples: Sequence[Mapping[str, str]], by: str | None) -> list[str]:
    """A name for each series: its ``by`` label, else the values of the labels that differ between the series.

    Falls back to the differing labels when ``by`` does not tell every series apart.
    """
    if by and all(by in labels for labels in samples) and len({labels[by] for labels in samples}) == len(samples):
        return [labels[by] for labels in samples]
    keys = sorted({k for labels in samples for k in labels})
    differ = [k for k in keys if len({labels.get(k, "") for labels in samples}) > 1]
    return [",".join(labels.get(k, "") for k in differ) for labels in samples]


class PrometheusMetrics(ReadsPrometheus, Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.gauges: list[dict[str, Any]] = list(options["gauges"])
        self.show_targets: bool = options["targets"]
        self.connect(options)
        self._seen: dict[str, set[str]] = {}  # gauge name -> keys of its series already backfilled
        self._last: dict[str, list[GaugeReading]] = {}  # gauge name -> its readings of the last good answer

    async def poll(self) -> list[Reading]:
        if self.api is None:
            return self.failed(self.bad_url)
        budget = self.timeout * 0.9
        jobs = [self._gauge(gauge, budget) for gauge in self.gauges]
        if self.show_targets:
            jobs.append(self._targets(budget))
        if not jobs:
            return []
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ApiError):
                raise result  # a bug: the engine shows it as the source's failure
        unreachable = [r for r in results if isinstance(r, ApiError)]
        if len(unreachable) == len(results):
            return self.failed(str(unreachable[0]))
        readings: list[Reading] = []
        for job, result in zip(self.gauges + [None], results):
            if isinstance(result, ApiError):  # this one query failed, the others were answered
                readings += self._gauge_failed(job, str(result)) if job else self._targets_failed(str(result))
            else:
                readings += result
        return readings

    # -- gauges ------------------------------------------------------------------------------------

    def _key(self, gauge: Mapping[str, Any], name: str | None) -> str:
        return f"{self.name}:{gauge['name']}" if name is None else f"{self.name}:{gauge['name']}{{{name}}}"

    async def _gauge(self, gauge: dict[str, Any], budget: float) -> list[Reading]:
        """The readings of one gauge; ApiError only when Prometheus could not be asked."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            samples = await self.api.instant(gauge["query"], budget)
        except QueryError as exc:
            samples, said = [], str(exc)
        else:
            said = f"no data for {gauge['query']}"
        if not samples:  # its series' rows go (and their history with them): forget them too
            self._last.pop(gauge["name"], None)
            self._seen.pop(gauge["name"], None)
            return [self._unknown(gauge, said)]
        by = gauge.get("by")
        several = len(samples) > 1 or (by is not None and by in samples[0].labels)  # `by`: keys stay as series come
        names = [n or "-" for n in series_names([s.labels for s in samples], by)] if several else [None]
        readings = [self._reading(gauge, sample, name, several) for sample, name in zip(samples, names)]
        readings = await self._backfilled(gauge, readings, samples, budget - (loop.time() - started))
        self._last[gauge["name"]] = readings
        return list(readings)

    def _reading(self, gauge: Mapping[str, Any], sample: Sample, name: str | None, several: bool) -> GaugeReading:
        unit = gauge.get("unit") or ""
        label = gauge["name"] if name is None else f"{gauge['name']} {name}"
        value = sample.value
        if math.isfinite(value):
            state, note = judge(value, gauge.get("levels") or {}, unit)
            reason = f"{label} {format_value(value, unit)}{note}"
        else:
            state, reason = State.UNKNOWN, f"{label} is {format_value(value, unit)} (not a number: a division by zero?)"
        finite = value if math.isfinite(value) else 0.0
        return GaugeReading(key=self._key(gauge, name), source=self.name, state=state, reason=one_line(reason),
                            ts=self.clock(), label=label, amount=finite, unit=unit,
                            percent=finite if unit == "%" and math.isfinite(value) else None,
                            group=gauge["name"] if several else "")

    def _unknown(self, gauge: Mapping[str, Any], reason: str) -> GaugeReading:
        return GaugeReading(key=self._key(gauge, None), source=self.name, state=State.UNKNOWN,
                            reason=one_line(f"{gauge['name']}: {reason}"), ts=self.clock(), label=gauge["name"],
                            unit=gauge.get("unit") or "", percent=None)

    def _gauge_failed(self, gauge: Mapping[str, Any], reason: str) -> list[Reading]:
        """Its earlier series marked UNKNOWN, so their rows and sparklines stay while one query fails."""
        last = self._last.get(gauge["name"])
        if not last:
            return [self._unknown(gauge, reason)]
        return [replace(r, state=State.UNKNOWN, reason=one_line(f"{r.label}: {reason}"), ts=self.clock(), backfill=())
                for r in last]

    async def _backfilled(self, gauge: Mapping[str, Any], readings: list[GaugeReading], samples: list[Sample],
                          budget: float) -> list[GaugeReading]:
        """Readings of series seen for the first time carry their gauge's recent past, from one range query."""
        seen = self._seen.get(gauge["name"], set())
        keys = {r.key for r in readings}
        self._seen[gauge["name"]] = keys  # forget series that went away: they get a backfill if they come back
        window = gauge.get("range") or 0.0
        if window <= 0 or keys <= seen or budget <= 0:
            return readings
        try:
            past = await self.api.range_query(gauge["query"], window, budget, end=samples[0].ts)
        except ApiError:
            return readings  # the sparkline fills from polls instead; the gauge itself was read
        points = {_identity(s.labels): s.points for s in past}
        return [replace(r, backfill=aligned(points.get(_identity(sample.labels), ()), sample.ts, r.ts))
                if r.key not in seen else r for r, sample in zip(readings, samples)]

    # -- targets -----------------------------------------------------------------------------------

    async def _targets(self, budget: float) -> list[Reading]:
        try:
            targets = await self.api.targets(budget)
        except QueryError as exc:
            return self._targets_failed(str(exc))
        readings: list[Reading] = []
        used: dict[str, int] = {}
        for target in targets:
            labels = target.get("labels") or {}
            job = str(labels.get("job") or target.get("scrapePool") or "?")
            instance = str(labels.get("instance") or target.get("scrapeUrl") or "?")
            key = f"{self.name}:target:{job}/{instance}"
            used[key] = used.get(key, 0) + 1
            if used[key] > 1:  # the same job and instance with other labels: still one row each
                key += f"#{used[key]}"
            readings.append(self._target(key, job, instance, target))
        return readings

    def _target(self, key: str, job: str, instance: str, target: Mapping[str, Any]) -> CheckReading:
        health = str(target.get("health") or "unknown")
        took = target.get("lastScrapeDuration")
        latency = took * 1000 if isinstance(took, (int, float)) and health != "unknown" else None
        if health == "up":
            state, reason = State.OK, f"{job}/{instance} up, scraped in {latency:.0f} ms" if latency is not None \
                else f"{job}/{instance} up"
        elif health == "down":
            state, reason = State.CRITICAL, f"{job}/{instance} down: {target.get('lastError') or 'the scrape failed'}"
        else:
            state, reason = State.UNKNOWN, f"{job}/{instance} not scraped yet"
        details = (("job", job), ("instance", instance), ("health", health),
                   ("last scrape", str(target.get("lastScrape") or "")),
                   ("interval", str(target.get("scrapeInterval") or "")))
        return CheckReading(key=key, source=self.name, state=state, reason=one_line(reason), ts=self.clock(),
                            kind="prometheus-target", target=str(target.get("scrapeUrl") or ""),
                            latency_ms=latency, details=details)

    def _targets_failed(self, reason: str) -> list[Reading]:
        return [CheckReading(key=f"{self.name}:targets", source=self.name, state=State.UNKNOWN,
                             reason=one_line(f"cannot read the scrape targets: {reason}"), ts=self.clock(),
                             kind="prometheus-target", target=self.describe())]


def _identity(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())

