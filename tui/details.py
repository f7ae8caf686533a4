"""What `enter` shows: the reading, its reason, its source's health and its history, as plain lines."""

from __future__ import annotations

import time
from typing import Sequence

from backends.durations import format_duration
from backends.model import (AlertReading, CheckReading, GaugeReading, HostReading, PipelineReading, ProcessRow,
                            Reading, SourceHealth)
from backends.text import human_bytes, one_line

from .rows import gauge_value, sparkline

Lines = list[tuple[str, str]]


def clock_text(ts: float, now: float) -> str:
    return f"{time.strftime('%H:%M:%S', time.localtime(ts))} ({format_duration(now - ts)} ago)"


def reading_lines(reading: Reading, health: SourceHealth | None, history: Sequence[tuple[float, float]],
                  now: float) -> Lines:
    lines: Lines = [
        ("key", one_line(reading.key, 300)),
        ("source", one_line(reading.source, 300)),
        ("state", reading.state.name),
        ("reason", one_line(reading.reason, 2000)),
        ("read at", clock_text(reading.ts, now)),
    ]
    if isinstance(reading, CheckReading):
        lines += [("kind", reading.kind), ("target", one_line(reading.target, 500))]
        if reading.latency_ms is not None:
            lines.append(("latency", f"{reading.latency_ms:.1f} ms"))
        lines += [(one_line(k, 40), one_line(v, 500)) for k, v in reading.details]
    if isinstance(reading, GaugeReading):
        lines += [("gauge", one_line(reading.label, 200)), ("value", gauge_value(reading))]
    if isinstance(reading, PipelineReading):
        lines += [("kind", reading.kind), ("pipeline", one_line(reading.name, 300)),
                  ("status", "paused" if reading.paused else one_line(reading.status, 100))]
        for label, ts in (("last run", reading.last_start), ("last success", reading.last_success),
                          ("next run", reading.next_run)):
            if ts is not None:
                lines.append((label, clock_text(ts, now) if ts <= now else time.strftime("%H:%M:%S", time.localtime(ts))))
        if reading.last_duration is not None:
            lines.append(("took", format_duration(reading.last_duration)))
        lines.append(("failures", str(reading.failures)))
    if isinstance(reading, HostReading):
        lines += [("host", one_line(reading.instance, 200)), ("up", "yes" if reading.up else "no")]
        for name, value in reading.metrics().items():
            if name not in ("value", "up"):
                lines.append((name, human_bytes(value) + "/s" if name in ("rx", "tx") else f"{value:.2f}"))
        if reading.disk_mount:
            lines.append(("fullest disk", one_line(reading.disk_mount, 200)))
    if isinstance(reading, AlertReading):
        lines += alert_lines(reading, now)
    if health is not None:
        lines += [("Source", ""), ("kind", health.kind), ("interval", format_duration(health.interval)),
                  ("polls", str(health.polls)), ("failures in a row", str(health.failures)),
                  ("next poll in", format_duration(health.next_delay))]
        if health.last_ok:
            lines.append(("last good poll", clock_text(health.last_ok, now)))
        if health.last_error:
            lines.append(("last error", one_line(health.last_error, 500)))
    if history:
        values = [v for _, v in history]
        unit = history_unit(reading)
        lines += [("History", ""), ("trend", sparkline(values, width=60)),
                  ("min / max", f"{min(values):.1f}{unit} / {max(values):.1f}{unit}"), ("points", str(len(values)))]
        lines += [(time.strftime("%H:%M:%S", time.localtime(ts)), f"{value:.2f}{unit}")
                  for ts, value in list(history)[-10:]]
    return lines


def alert_lines(alert: AlertReading, now: float) -> Lines:
    lines: Lines = [("Alert", ""), ("from", alert.origin), ("name", one_line(alert.name, 300)),
                    ("status", alert.status + (" (acked here)" if alert.acked else "")),
                    ("severity", alert.severity), ("target", one_line(alert.target, 300)),
                    ("why", one_line(alert.why, 2000))]
    if alert.amount is not None:
        lines.append(("value", f"{alert.amount:g}"))
    if alert.since is not None:
        lines.append(("since", clock_text(alert.since, now)))
    if alert.until is not None:
        lines.append(("until" if alert.until > now else "ended", time.strftime("%Y-%m-%d %H:%M:%S",
                                                                                time.localtime(alert.until))))
    if alert.silenced_by:
        lines.append(("silenced by", one_line(", ".join(alert.silenced_by), 300)))
    if alert.labels:
        lines += [("Labels", "")] + [(one_line(k, 40), one_line(v, 500)) for k, v in alert.labels]
    return lines


def history_unit(reading: Reading) -> str:
    """The unit of the values ``Reading.value`` puts in history."""
    if isinstance(reading, GaugeReading):
        return "%" if reading.percent is not None else f" {reading.unit}"
    if isinstance(reading, CheckReading):
        return " ms"
    return ""


def process_lines(proc: ProcessRow, now: float) -> Lines:
    return [
        ("pid", str(proc.pid)),
        ("process", one_line(proc.name, 300)),
        ("user", one_line(proc.user, 100)),
        ("cpu", f"{proc.cpu_percent:.1f}%"),
        ("rss", human_bytes(proc.rss_bytes)),
        ("started", clock_text(proc.started, now) if proc.started else "unknown"),
    ]
