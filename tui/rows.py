"""Readings to table rows: pure functions, so that what the panes show is tested without a screen."""

from __future__ import annotations

import math
import time
from typing import Iterable, Sequence

from backends.durations import format_age, format_duration, format_uptime
from backends.model import (AlertReading, BackupReading, CheckReading, GaugeReading, HostReading, PipelineItem,
                            PipelineReading, ProcessRow, Reading, State, TableReading)
from backends.text import human_bytes, one_line
from backends.thresholds import classify
from widgets.cells import Cell, Row

STATE_ROLE = {State.OK: "ok", State.WARN: "warn", State.CRITICAL: "critical", State.UNKNOWN: "unknown"}
STATE_GLYPH = {State.OK: "●", State.WARN: "▲", State.CRITICAL: "✖", State.UNKNOWN: "?"}
SPARK = "▁▂▃▄▅▆▇█"

SERVICE_COLUMNS = ("State", "Name", "Reason", "Latency", "Kind", "Target")
GAUGE_COLUMNS = ("State", "Gauge", "Level", "Value", "Trend", "Reason")
PROCESS_COLUMNS = ("PID", "Process", "User", "CPU%", "RSS", "Up")
HOST_COLUMNS = ("State", "Host", "CPU", "Mem", "Disk", "Load", "Net/s", "CPU trend", "Reason")
BACKUP_COLUMNS = ("State", "Job", "Last good", "RPO", "Sets", "Newest", "Size trend", "Verified", "Reason")
TABLE_COLUMNS = ("State", "Table", "Snapshot", "Records", "Files", "Avg file", "Snaps", "Reason")
ALERT_COLUMNS = ("Status", "Severity", "Alert", "Target", "For", "Why", "From")
PIPELINE_COLUMNS = ("State", "Pipeline", "Reason", "Status", "Last run", "Fails", "Took", "Next", "Source")


def state_cell(state: State, stale: bool) -> Cell:
    if stale:
        return Cell(f"◌ {state.name}", "stale")
    return Cell(f"{STATE_GLYPH[state]} {state.name}", STATE_ROLE[state], bold=state >= State.UNKNOWN)


def is_stale(reading: Reading, interval: float, now: float) -> bool:
    """Data older than three intervals looks stale."""
    return now - reading.ts > 3 * interval


SPARK_WIDTH = 12


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH, top: float | None = None) -> str:
    """The last ``width`` values as block characters, scaled to ``top`` (or the largest value)."""
    recent = list(values)[-width:]
    if not recent:
        return ""
    high = top if top is not None else max(recent)
    if high <= 0:
        return SPARK[0] * len(recent)
    steps = len(SPARK) - 1
    return "".join(SPARK[max(0, min(steps, round(v / high * steps)))] for v in recent)


def bar(percent: float | None, width: int = 10) -> str:
    if percent is None:
        return ""
    filled = max(0, min(width, round(percent / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def gauge_value(reading: GaugeReading) -> str:
    """The figure an operator reads first: a percent where there is one, else the amount in its unit."""
    if reading.unit == "B/s":
        return human_bytes(reading.amount) + "/s"
    if reading.unit == "B":
        return f"{reading.percent:.0f}%" if reading.percent is not None else human_bytes(reading.amount)
    if reading.unit == "%":
        return f"{reading.amount:.0f}%"
    return f"{reading.amount:.2f} {reading.unit}".strip()


def latency_text(ms: float | None) -> str:
    """Latency in steps coarse enough that jitter does not redraw the cell every poll (details has it exact)."""
    if ms is None:
        return ""
    if ms < 5:
        return "<5ms"
    for limit, step in ((50, 5), (500, 50), (5000, 500)):
        if ms < limit:
            return f"{round(ms / step) * step:.0f}ms"
    return f"{ms / 1000:.0f}s"


def service_row(reading: Reading, stale: bool, transition: str = "") -> Row:
    kind = target = latency = ""
    if isinstance(reading, CheckReading):
        kind, target = reading.kind, one_line(reading.target, 60)
        latency = latency_text(reading.latency_ms)
    name = one_line(reading.key, 40)
    reason = one_line(reading.reason, 120)
    state = Cell(f"⟳ {transition}", "warn", bold=True) if transition else state_cell(reading.state, stale)
    return Row(reading.key, (
        state, Cell(name, bold=True), Cell(reason, "" if reading.state is State.OK else
                                                                       STATE_ROLE[reading.state]),
        Cell(latency, "muted"), Cell(kind, "muted"), Cell(target, "muted"),
    ))


def gauge_row(reading: GaugeReading, history: Iterable[float], stale: bool) -> Row:
    role = "stale" if stale else STATE_ROLE[reading.state]
    top = 100.0 if reading.percent is not None else None
    return Row(reading.key, (
        state_cell(reading.state, stale),
        Cell(one_line(reading.label, 30), bold=True),
        Cell(bar(reading.percent), role),
        Cell(gauge_value(reading)),
        Cell(sparkline(list(history), top=top).rjust(SPARK_WIDTH), role),  # full width from the start: no re-layout
        Cell(one_line(reading.reason, 80), "muted" if reading.state is State.OK else role),
    ))


def process_row(proc: ProcessRow, rank: int, now: float) -> Row:
    """Keyed by rank, not pid: when the order changes, cells change in place instead of rows moving."""
    return Row(f"rank:{rank}", (
        Cell(str(proc.pid), "muted"),
        Cell(one_line(proc.name, 30), bold=True),
        Cell(one_line(proc.user, 12), "muted"),
        Cell(f"{proc.cpu_percent:5.1f}"),
        Cell(human_bytes(proc.rss_bytes)),
        Cell(format_uptime(now - proc.started) if proc.started else "", "muted"),
    ))


def pane_status(readings: Sequence[Reading], intervals: dict[str, float], now: float) -> tuple[str, bool]:
    """The pane's subtitle and whether the pane is stale: judged by its newest reading."""
    if not readings:
        return "", False
    newest = max(readings, key=lambda r: r.ts)
    age = max(0.0, now - newest.ts)
    interval = intervals.get(newest.source, 2.0)
    stale = is_stale(newest, interval, now)
    when = format_age(age, fresh_within=1.5 * interval)
    return (f"STALE · updated {when}" if stale else f"updated {when}"), stale


def coarse_span(seconds: float) -> str:
    """``<1m``, ``12m``, ``5h``, ``3d``: steps coarse enough that a table of a thousand pipelines is not
    redrawn every second just because time passed (details and drill-downs have the exact times)."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "<1m"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def _span_step(seconds: float) -> float:
    """How long ``coarse_span`` of a growing span keeps its text."""
    seconds = max(0.0, seconds)
    size = 60.0 if seconds < 3600 else 3600.0 if seconds < 86400 else 86400.0
    return size - (seconds % size) if seconds >= 60 else 60.0 - seconds


def pipeline_times(reading: PipelineReading, now: float) -> tuple[tuple[str, str, str], float]:
    """Last run (how long ago), how long it took, when the next is due, as the table shows them; and until
    when those texts hold, so that a row is rebuilt only when its own text would change."""
    until = float("inf")
    last = ""
    if reading.last_start is not None:
        last = f"{coarse_span(now - reading.last_start)} ago"
        until = now + _span_step(now - reading.last_start)
    took = format_duration(reading.last_duration) if reading.last_duration is not None else ""
    upcoming = ""
    if reading.next_run is not None:
        if reading.next_run >= now:
            left = reading.next_run - now
            upcoming = f"in {coarse_span(left)}"
            # a shrinking span changes when it drops below its current step
            step = 60.0 if left < 3600 else 3600.0 if left < 86400 else 86400.0
            until = min(until, now + (left % step if left >= 60 else left) + 1e-3)
        else:
            upcoming = f"due {coarse_span(now - reading.next_run)}"
            until = min(until, now + _span_step(now - reading.next_run))
    return (last, took, upcoming), until


def pipeline_row(reading: PipelineReading, stale: bool, times: tuple[str, str, str], transition: str = "") -> Row:
    """As the Services pane: state, name, then the reason (cut at 60 so the short columns after it stay on a
    160-column screen; details have it whole); the key (``source:name``) is the row's identity."""
    state = Cell(f"⟳ {transition}", "warn", bold=True) if transition else state_cell(reading.state, stale)
    status = "paused" if reading.paused else reading.status
    status_role = "muted" if reading.paused else ("" if reading.state is State.OK else STATE_ROLE[reading.state])
    last, took, upcoming = times
    return Row(reading.key, (
        state,
        Cell(one_line(reading.name, 40), bold=True),
        Cell(one_line(reading.reason, 60), "muted" if reading.state is State.OK else STATE_ROLE[reading.state]),
        Cell(one_line(status, 14), status_role),
        Cell(last, "muted"),
        Cell(str(reading.failures) if reading.failures else "", "critical" if reading.failures else ""),
        Cell(took, "muted"),
        Cell(upcoming, "muted"),
        Cell(one_line(reading.source, 40), "muted"),
    ), search_text=f"{reading.key} {status} {reading.reason}")


def item_key(item: PipelineItem) -> str:
    return "/".join(item.ref)


def clock_short(ts: float | None, now: float) -> str:
    """``14:05:12`` today, ``11-21 14:05`` another day."""
    if ts is None:
        return ""
    if time.strftime("%Y%m%d", time.localtime(ts)) == time.strftime("%Y%m%d", time.localtime(now)):
        return time.strftime("%H:%M:%S", time.localtime(ts))
    return time.strftime("%m-%d %H:%M", time.localtime(ts))


def item_row(item: PipelineItem, now: float) -> Row:
    """A drill-down row; ``depth`` indents it (a lineage tree)."""
    return Row(item_key(item), (
        state_cell(item.state, False),
        Cell(one_line("  " * item.depth + item.name, 80), bold=item.depth == 0),
        Cell(one_line(item.status, 20), "" if item.state is State.OK else STATE_ROLE[item.state]),
        Cell(clock_short(item.started, now), "muted"),
        Cell(format_duration(item.duration) if item.duration is not None else "", "muted"),
        Cell(one_line(item.note, 160), "muted" if item.state is State.OK else STATE_ROLE[item.state]),
    ))


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}%"


LEVEL_ROLE = {State.OK: "", State.WARN: "warn", State.CRITICAL: "critical", State.UNKNOWN: "muted"}


def host_row(reading: HostReading, history: Iterable[float], stale: bool,
             levels: dict[str, tuple[float, float]]) -> Row:
    """One machine of a fleet: each figure coloured by its own level, so the red one is found at a glance."""
    role = "stale" if stale else STATE_ROLE[reading.state]

    def figure(name: str, text: str, value: float | None) -> Cell:
        warn, critical = levels.get(name, (80.0, 90.0))
        return Cell(text, "stale" if stale else LEVEL_ROLE[classify(value, warn, critical)])

    net = "" if reading.rx is None and reading.tx is None else \
        f"↓{human_bytes(reading.rx or 0)} ↑{human_bytes(reading.tx or 0)}"
    return Row(reading.key, (
        state_cell(reading.state, stale),
        Cell(one_line(reading.instance, 32), bold=True),
        figure("cpu", _percent(reading.cpu), reading.cpu),
        figure("memory", _percent(reading.memory), reading.memory),
        figure("disk", _percent(reading.disk), reading.disk),
        figure("load", "" if reading.load is None else f"{reading.load:.2f}",  # per core; levels are in percent
               None if reading.load is None else reading.load * 100),
        Cell(net, "muted"),
        Cell(sparkline(list(history), top=100.0).rjust(SPARK_WIDTH), role),
        Cell(one_line(reading.reason, 80), "muted" if reading.state is State.OK else role),
    ))


ALERT_STATUS = {  # status -> (glyph, word)
    "firing": ("✖", "FIRING"), "pending": ("…", "pending"), "silenced": ("◌", "silenced"),
    "resolved": ("✓", "resolved"), "silence": ("⏸", "silence"), "error": ("?", "UNREADABLE"),
}
ALERT_ORDER = {"error": 0, "firing": 1, "pending": 2, "silenced": 3, "silence": 4, "resolved": 5}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def alert_sort_key(alert: AlertReading) -> tuple:
    """Firing first, the worst severity first, not yet acked before acked, the newest first."""
    return (ALERT_ORDER.get(alert.status, 9), SEVERITY_RANK.get(alert.severity, 3), alert.acked,
            -(alert.since or 0.0), alert.key)


def alert_role(alert: AlertReading) -> str:
    if alert.status == "error":
        return "unknown"
    if alert.status != "firing" or alert.acked:
        return "muted"
    return {"critical": "critical", "warning": "warn"}.get(alert.severity, "")


def alert_row(alert: AlertReading, stale: bool, now: float, transition: str = "") -> Row:
    glyph, word = ALERT_STATUS.get(alert.status, ("·", alert.status))
    if alert.acked:
        word = f"{word} acked" if alert.status == "firing" else word
    role = "stale" if stale else alert_role(alert)
    status = Cell(f"⟳ {transition}", "warn", bold=True) if transition else \
        Cell(f"{glyph} {word}", role, bold=alert.status == "firing" and not alert.acked)
    if alert.status == "silence" and alert.until:
        left = alert.until - now
        lasted = f"{format_duration(left)} left" if left >= 3600 else f"{max(1, math.ceil(left / 60))}m left"
    elif alert.status == "resolved" and alert.since and alert.until:
        lasted = f"was {coarse_span(alert.until - alert.since)}"
    else:
        lasted = coarse_span(now - alert.since) if alert.since else ""
    severity = "" if alert.status in ("silence", "error") else alert.severity
    return Row(alert.key, (
        status,
        Cell(severity, role if alert.status == "firing" else "muted"),
        Cell(one_line(alert.name, 48), bold=True),
        Cell(one_line(alert.target, 40), "muted"),
        Cell(lasted, "muted"),
        Cell(one_line(alert.why or alert.reason, 120), "" if role in ("muted", "stale") else role),
        Cell(one_line(alert.source, 24), "muted"),
    ))


def one_per_alert(alerts: Iterable[AlertReading]) -> list[AlertReading]:
    """The same alert read from Prometheus and from Alertmanager is one row: Alertmanager's, which knows
    whether it is silenced."""
    chosen: dict[str, AlertReading] = {}
    for alert in alerts:
        mark = alert.fingerprint or alert.key
        held = chosen.get(mark)
        if held is None or (held.origin != "alertmanager" and alert.origin == "alertmanager"):
            chosen[mark] = alert
    return sorted(chosen.values(), key=alert_sort_key)


def _ago(ts: float | None, now: float) -> str:
    return "" if ts is None else f"{coarse_span(now - ts)} ago"


def backup_row(reading: BackupReading, stale: bool, now: float, transition: str = "") -> Row:
    """A job; its size trend is its sets' sizes, oldest to newest (a set that shrank stands out)."""
    role = "stale" if stale else STATE_ROLE[reading.state]
    newest = reading.sets[0] if reading.sets else None
    verified = "" if newest is None else ("✓ ok" if newest.verified == "ok" else
                                         "✖ FAILED" if newest.verified.startswith("failed") else "not yet")
    verified_role = "ok" if verified == "✓ ok" else "critical" if verified == "✖ FAILED" else "muted"
    state = Cell(f"⟳ {transition}", "warn", bold=True) if transition else state_cell(reading.state, stale)
    return Row(reading.key, (
        state,
        Cell(one_line(reading.key, 32), bold=True),
        Cell(_ago(reading.last_good, now), role),
        Cell("" if reading.rpo is None else format_duration(reading.rpo), "muted"),
        Cell(str(len(reading.sets))),
        Cell("" if newest is None else human_bytes(newest.size)),
        Cell(sparkline([float(s.size) for s in reversed(reading.sets)]).rjust(SPARK_WIDTH), "muted"),
        Cell(verified, "stale" if stale else verified_role),
        Cell(one_line(reading.reason, 120), "muted" if reading.state is State.OK else role),
    ))


def table_row(reading: TableReading, stale: bool, now: float, transition: str = "") -> Row:
    """A table, or a data check (its verdict in the reason)."""
    role = "stale" if stale else STATE_ROLE[reading.state]
    state = Cell(f"⟳ {transition}", "warn", bold=True) if transition else state_cell(reading.state, stale)
    if reading.check:
        figures = ("check", "", "", "", "")
    else:
        average = (reading.data_bytes / reading.data_files) if reading.data_bytes and reading.data_files else None
        figures = (_ago(reading.snapshot_at, now), "" if reading.records is None else f"{reading.records:,}",
                   "" if reading.data_files is None else f"{reading.data_files:,}",
                   "" if average is None else human_bytes(average), str(reading.snapshots))
    return Row(reading.key, (
        state,
        Cell(one_line(reading.table, 48), bold=True),
        *(Cell(text, "muted" if i == 0 and reading.check else "") for i, text in enumerate(figures)),
        Cell(one_line(reading.reason, 120), "muted" if reading.state is State.OK else role),
    ))
