"""`lakedeck history` and `lakedeck report`: what the history store kept, as a table, JSON or a Markdown report.

Times are UTC, written as the audit log writes them (``2026-11-22T14:05:03Z``). Both commands return an exit
code and write to ``out`` / ``err``; a problem is one line on ``err`` and exit 2, never a traceback.
"""

from __future__ import annotations

import calendar
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TextIO

from .audit import AuditLog
from .audit import default_path as audit_default_path
from .durations import format_duration
from .model import State
from .store import HistoryStore, store_path
from .store_read import AlertEvent, StoreError, Transition
from .text import one_line, visible

ENDED = ("resolved", "gone")
REPORT_ROWS = 200  # state changes and actions listed in a report; the rest are counted
TIMELINE_ROWS = 500


def stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def span(seconds: float) -> str:
    """``6h``, ``24h``, ``7d``, ``90m`` for round windows; format_duration otherwise."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0 and (unit != "d" or seconds >= 2 * 86400):
            return f"{int(seconds // size)}{unit}"
    return format_duration(seconds)


def number(value: float | None) -> str:
    """Short and exact enough to read: ``12.5``, ``0.0031``, ``1.234e+06``."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 0.01:
        return f"{value:.4g}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _open(config: Any, now: float | None, environ: Mapping[str, str] | None) -> HistoryStore:
    clock = (lambda: now) if now is not None else time.time
    return HistoryStore(store_path(config, environ), clock=clock)


def _missing(config: Any, store: HistoryStore) -> str:
    disabled = "" if config.store.get("enabled", True) else f"; store.enabled is false in {config.origin}"
    return f"no history store at {store.path} (the console writes it while it runs{disabled})"


# -- lakedeck history -------------------------------------------------------------------------------

def run_history(config: Any, name: str, since: float = 6 * 3600.0, metric: str | None = None,
                as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None, *,
                now: float | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Exit 0 with the history of ``name`` (a source or a reading's key), 2 when there is none."""
    out, err = out or sys.stdout, err or sys.stderr
    store = _open(config, now, environ)
    if not store.path.exists():
        err.write(f"lakedeck history: {_missing(config, store)}\n")
        return 2
    try:
        with store.session():
            summary = store.summary(name, since, metric)
            transitions = store.transitions(name, since)
            alerts = store.alert_events(name, since)
            samples = store.samples(name, since, metric) if as_json else []
            known = [] if summary or transitions or alerts else store.sources(since)
            other_metrics = store.metrics(name, since) if metric and not summary else []
    except StoreError as exc:
        err.write(f"lakedeck history: {exc}\n")
        return 2
    window = f"since {span(since)} ago"
    if metric and not summary and other_metrics:
        err.write(f"lakedeck history: no samples of metric {metric!r} for {name!r} {window} "
                  f"(its metrics: {', '.join(other_metrics)})\n")
        return 2
    if not (summary or transitions or alerts):
        listed = f"sources with history: {', '.join(known)}" if known else "no source has history in that window"
        err.write(f"lakedeck history: no history for {name!r} {window} in {store.path} ({listed})\n")
        return 2
    clock = store.clock()
    if as_json:
        json.dump(_history_json(store, name, since, clock, summary, samples, transitions, alerts), out, indent=2)
        out.write("\n")
        return 0
    out.write(visible(f"history of {name!r} {window} ({stamp(clock - since)} to {stamp(clock)}), from {store.path}")
              + "\n")
    if summary:
        header = ("KEY", "METRIC", "SAMPLES", "FIRST", "LAST", "MIN", "AVG", "MAX", "LAST VALUE")
        rows = [(one_line(s.key, 80), one_line(s.metric, 40), str(s.count), stamp(s.first), stamp(s.last),
                 number(s.min), number(s.avg), number(s.max), number(s.last_value)) for s in summary]
        _table(out, header, rows, right=(2, 5, 6, 7, 8))
    else:
        out.write("no samples\n")
    out.write(f"state changes ({len(transitions)}):\n" if transitions else "no state changes\n")
    for t in transitions:
        out.write(one_line(f"  {stamp(t.ts)}  {t.key}  {t.old or '(new)'} → {t.new}  {t.reason}", 400) + "\n")
    if alerts:
        out.write(f"alert events ({len(alerts)}):\n")
        for a in alerts:
            out.write(one_line(f"  {stamp(a.ts)}  {a.name}  {a.severity}  {a.status}"
                               + (f"  on {a.target}" if a.target else "") + (f"  {a.why}" if a.why else ""), 400)
                      + "\n")
    return 0


def _table(out: TextIO, header: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> None:
    right = set(right)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        out.write("  ".join(cells).rstrip() + "\n")


def _history_json(store: HistoryStore, name: str, since: float, clock: float, summary: list, samples: list,
                  transitions: list[Transition], alerts: list[AlertEvent]) -> dict[str, Any]:
    points: dict[tuple[str, str], list[list[float]]] = {}
    for key, metric, ts, value in samples:
        points.setdefault((key, metric), []).append([ts, value])
    return {
        "store": str(store.path), "name": name, "since": since, "from": clock - since, "to": clock,
        "series": [{**s._asdict(), "first_time": stamp(s.first), "last_time": stamp(s.last),
                    "samples": points.get((s.key, s.metric), [])} for s in summary],
        "transitions": [{**t._asdict(), "time": stamp(t.ts)} for t in transitions],
        "alerts": [{**a._asdict(), "time": stamp(a.ts)} for a in alerts],
    }


# -- lakedeck report --------------------------------------------------------------------------------

@dataclass
class Episode:
    """One alert from firing to resolved (``resolved`` None: still firing)."""

    fingerprint: str
    name: str
    severity: str
    target: str
    source: str
    fired: float
    resolved: float | None = None
    why: str = ""
    ended_by: str = ""  # the status that ended it: resolved, or gone (no longer reported)


def episodes(events: Iterable[AlertEvent]) -> list[Episode]:
    """Alert events (by time) as episodes of firing: when each alert fired, when it stopped and why."""
    found: list[Episode] = []
    open_: dict[str, Episode] = {}
    before: dict[str, str] = {}
    for ev in sorted(events, key=lambda e: e.ts):
        previous = before.get(ev.fingerprint)
        before[ev.fingerprint] = ev.status
        current = open_.get(ev.fingerprint)
        if ev.status in ("firing", "silenced"):
            if current is None:  # seen going from pending to firing: now; else when it says it began
                fired = ev.ts if previous == "pending" or ev.since is None or ev.since > ev.ts else ev.since
                current = open_[ev.fingerprint] = Episode(ev.fingerprint, ev.name, ev.severity, ev.target, ev.source,
                                                          fired, why=ev.why)
                found.append(current)
            current.severity, current.why = ev.severity, ev.why or current.why
        elif ev.status in ENDED:
            if current is None and ev.status == "resolved" and ev.since is not None and previous is None:
                current = Episode(ev.fingerprint, ev.name, ev.severity, ev.target, ev.source, ev.since, why=ev.why)
                found.append(current)  # first seen already resolved: it says when it fired
            if current is not None:
                current.resolved = ev.until if ev.status == "resolved" and ev.until else ev.ts
                current.ended_by = ev.status
                open_.pop(ev.fingerprint, None)
    return found


def md(text: object, limit: int = 300) -> str:
    """Untrusted text made safe for a Markdown table cell or list item: one line, no pipes or HTML."""
    flat = one_line(str(text), limit)
    return flat.replace("|", "\\|").replace("<", "\\<").replace(">", "\\>")


def _entry_time(entry: Mapping[str, Any]) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(str(entry.get("time", "")), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def _result(entry: Mapping[str, Any]) -> str:
    parts = []
    if entry.get("exit_code") is not None:
        parts.append(f"exit {entry['exit_code']}")
    if entry.get("duration") is not None:
        parts.append(format_duration(float(entry["duration"])))
    why = entry.get("reason") or entry.get("error") or ""
    return ", ".join(parts) + (f" ({why})" if why and parts else why)


def run_report(config: Any, since: float = 86400.0, output: str | None = None, out: TextIO | None = None,
               err: TextIO | None = None, *, now: float | None = None,
               environ: Mapping[str, str] | None = None) -> int:
    """Exit 0 with the Markdown report on ``out`` (or in ``output``), 2 without a store or when it cannot write."""
    out, err = out or sys.stdout, err or sys.stderr
    store = _open(config, now, environ)
    if not store.path.exists():
        err.write(f"lakedeck report: {_missing(config, store)}\n")
        return 2
    try:
        with store.session():
            events = store.alert_events(since=since, earlier=True)
            transitions = store.transitions(since=since)
    except StoreError as exc:
        err.write(f"lakedeck report: {exc}\n")
        return 2
    clock = store.clock()
    audit = AuditLog(Path(config.audit_log).expanduser() if config.audit_log else audit_default_path(environ))
    actions = [e for e in audit.read(since, now=clock) if _entry_time(e) is not None]
    text = report(since, clock, events, transitions, actions, store.path, audit.path)
    if output is None:
        out.write(text)
        return 0
    target = Path(output)
    try:
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        err.write(f"lakedeck report: cannot write {output}: {exc.strerror or exc}\n")
        return 2
    out.write(visible(f"lakedeck report: wrote {output}") + "\n")
    return 0


def report(since: float, now: float, events: Sequence[AlertEvent], transitions: Sequence[Transition],
           actions: Sequence[Mapping[str, Any]], store: Path, audit: Path) -> str:
    """The Markdown incident summary of the window ``[now - since, now]``."""
    start = now - since
    fired = [e for e in episodes(events) if e.fired <= now and (e.resolved is None or e.resolved >= start)]
    fired.sort(key=lambda e: e.fired)
    lines = [f"# Incident report: {stamp(start)} to {stamp(now)} (last {span(since)})", "",
             f"From the history store `{store}` and the audit log `{audit}`, by `lakedeck report` "
             f"at {stamp(now)}. Times are UTC.", "", "## Summary", ""]
    lines += _summary(fired, transitions, actions) + ["", "## Alerts", ""]
    if fired:
        lines += ["| Alert | Severity | Target | Fired | Resolved | For | Why |", "|---|---|---|---|---|---|---|"]
        for e in fired:
            resolved = stamp(e.resolved) if e.resolved is not None else "still firing"
            took = format_duration((e.resolved if e.resolved is not None else now) - e.fired)
            took += "" if e.resolved is not None else " so far"
            why = e.why + (" (no longer reported by its source)" if e.ended_by == "gone" else "")
            lines.append(f"| {md(e.name, 120)} | {md(e.severity)} | {md(e.target, 120)} | {stamp(e.fired)} | "
                         f"{resolved} | {took} | {md(why)} |")
    else:
        lines.append("No alert fired in this window.")
    lines += ["", "## State changes", ""] + _changes(transitions)
    lines += ["", "## Actions", ""] + _actions(actions)
    lines += ["", "## Timeline", ""] + _timeline(start, now, fired, events, actions)
    lines += ["", "## Impact", "", "<!-- who and what was affected, how badly, for how long -->", "",
              "## Root cause", "", "<!-- what happened and why; what made it worse or better -->", "",
              "## Follow-ups", "", "<!-- - [ ] what to change so it does not happen again; owner; when -->", ""]
    return "\n".join(lines)


def _summary(fired: list[Episode], transitions: Sequence[Transition],
             actions: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    if fired:
        counts = Counter(e.severity for e in fired)
        by = ", ".join(f"{counts[s]} {s}" for s in ("critical", "warning", "info") if counts[s])
        by += "".join(f", {n} {md(s, 20)}" for s, n in counts.items() if s not in ("critical", "warning", "info"))
        still = sum(e.resolved is None for e in fired)
        lines.append(f"- Alerts fired: {len(fired)} ({by})" + (f"; {still} still firing." if still else "."))
    else:
        lines.append("- Alerts fired: none.")
    if transitions:
        keys = {t.key for t in transitions}
        worst = max((State[t.new] for t in transitions if t.new in State.__members__), default=State.OK)
        bad = sorted({t.key for t in transitions if t.new == worst.name})
        shown = ", ".join(md(k, 60) for k in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        lines.append(f"- State changes: {len(transitions)} across {len(keys)} reading{'s' if len(keys) != 1 else ''}"
                     + (f"; worst {worst.name}: {shown}." if worst is not State.OK else "."))
    else:
        lines.append("- State changes: none.")
    if actions:
        events = Counter(str(e.get("event", "?")) for e in actions)
        people = sorted({str(e.get("user", "?")) for e in actions})
        lines.append(f"- Actions: {len(actions)} audit entries ("
                     + ", ".join(f"{n} {md(k, 20)}" for k, n in sorted(events.items())) + ") by "
                     + ", ".join(md(p, 40) for p in people) + ".")
    else:
        lines.append("- Actions: none in the audit log.")
    return lines


def _rank(t: Transition) -> int:
    return max(State[s] if s in State.__members__ else State.UNKNOWN for s in (t.old or "OK", t.new))


def _changes(transitions: Sequence[Transition]) -> list[str]:
    if not transitions:
        return ["No reading changed state in this window."]
    shown = list(transitions)
    note = []
    if len(shown) > REPORT_ROWS:  # the most severe changes stay, in time order
        kept = set(sorted(range(len(shown)), key=lambda i: (-_rank(shown[i]), i))[:REPORT_ROWS])
        note = ["", f"{len(shown) - REPORT_ROWS} less severe changes are left out: `lakedeck history SOURCE` "
                    f"lists them all."]
        shown = [t for i, t in enumerate(shown) if i in kept]
    lines = ["| Time | Reading | Change | Reason |", "|---|---|---|---|"]
    lines += [f"| {stamp(t.ts)} | {md(t.key, 120)} | {t.old or '(first seen)'} → {t.new} | {md(t.reason)} |"
              for t in shown]
    return lines + note


def _who(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('user', '?')}@{entry.get('ssh_origin') or 'local'}"


def _actions(actions: Sequence[Mapping[str, Any]]) -> list[str]:
    if not actions:
        return ["No action in the audit log in this window."]
    lines = ["| Time | Who | Event | Target | Action | Result | Command |", "|---|---|---|---|---|---|---|"]
    for e in actions[-REPORT_ROWS:]:
        lines.append(f"| {md(e.get('time', '?'), 30)} | {md(_who(e), 80)} | {md(e.get('event', '?'), 20)} | "
                     f"{md(e.get('target', '?'), 120)} | {md(e.get('action', '?'), 40)} | {md(_result(e))} | "
                     f"{md(e.get('command', ''))} |")
    if len(actions) > REPORT_ROWS:
        lines += ["", f"{len(actions) - REPORT_ROWS} earlier entries are left out: `lakedeck audit` lists them all."]
    return lines


def _timeline(start: float, now: float, fired: list[Episode], events: Sequence[AlertEvent],
              actions: Sequence[Mapping[str, Any]]) -> list[str]:
    items: list[tuple[float, int, str]] = []
    for e in fired:
        if e.fired >= start:
            items.append((e.fired, 0, f"alert **{md(e.name, 120)}** ({md(e.severity, 20)}) fired"
                                      + (f" on {md(e.target, 120)}" if e.target else "")
                                      + (f": {md(e.why)}" if e.why else "")))
        if e.resolved is not None and e.resolved <= now:
            verb = "resolved" if e.ended_by == "resolved" else "no longer reported"
            items.append((e.resolved, 0, f"alert **{md(e.name, 120)}** {verb} after "
                                         f"{format_duration(e.resolved - e.fired)}"))
    for ev in events:
        if ev.ts < start:
            continue
        if ev.status == "error":
            items.append((ev.ts, 1, f"alert source {md(ev.source, 60)} could not be read: {md(ev.why)}"))
        elif ev.status == "gone" and ev.fingerprint.startswith("error:"):
            items.append((ev.ts, 1, f"alert source {md(ev.source, 60)} answers again"))
        elif ev.status == "silence":
            items.append((ev.ts, 1, f"silence {md(ev.name, 120)}" + (f": {md(ev.why)}" if ev.why else "")))
    for entry in actions:
        result = _result(entry)
        items.append((_entry_time(entry) or start, 2,
                      f"{md(_who(entry), 80)} {md(entry.get('event', '?'), 20)} {md(entry.get('action', '?'), 40)} "
                      f"on {md(entry.get('target', '?'), 120)}" + (f" ({md(result)})" if result else "")))
    if not items:
        return ["Nothing happened in this window."]
    items.sort(key=lambda item: (item[0], item[1]))
    lines = [f"- {stamp(ts)} {text}" for ts, _, text in items[:TIMELINE_ROWS]]
    if len(items) > TIMELINE_ROWS:
        lines += ["", f"{len(items) - TIMELINE_ROWS} later entries are left out."]
    return lines
