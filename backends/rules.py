"""lakedeck's own alert rules: a threshold on a source's readings, held for a while, with hysteresis.

Pure: no I/O, no clock, no asyncio. ``RuleBook.evaluate(readings, now)`` is called with the engine's latest
readings on every poll of the ``rules`` source and returns the alerts as they stand at ``now``.

Each (rule, reading) pair has a small state machine:

    inactive --holds--> pending --held `for`--> firing --clear for `clear_for`--> resolved --RESOLVED_KEEP--> gone
       ^                   | stops holding       ^  | holds again inside the window:
       +-------------------+                     +--+ still firing, no new page

While firing, "holds" is judged against ``clear`` (hysteresis: fires above 85, firing until at or below
80) and must stay false for ``clear_for`` before the alert resolves, so a value flapping around its
threshold pages once. A resolved alert is listed for RESOLVED_KEEP, then forgotten; holding again after
it resolved is a new alert with a new ``since``.

No data (the metric missing, None or NaN, or the reading gone) moves nothing, with two exceptions:
- a pending alert without data goes back to inactive (its ``for`` cannot be proven);
- a firing alert whose reading is gone from the engine (its source no longer reports that key) for
  GONE_AFTER resolves, so that a fleet's churn cannot hold alerts (and memory) forever. A reading that
  is present but has no value (a host that is down, a query with no result) keeps its alert firing, and
  after NO_DATA_EVALS evaluations its ``why`` says "no data since HH:MM".
A failed poll of a source does not make its readings gone: the engine keeps them until a good poll.
"""

from __future__ import annotations

import fnmatch
import math
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .adapters.alert_base import alert_state, fingerprint
from .config import RULES_SOURCE
from .durations import format_duration
from .model import (AlertReading, CheckReading, GaugeReading, HostReading, PipelineReading, Reading,
                    State)
from .text import human_bytes, one_line

RESOLVED_KEEP = 600.0  # seconds a resolved alert stays listed
GONE_AFTER = 900.0  # seconds a firing alert's reading may be gone from the engine before the alert resolves
NO_DATA_EVALS = 3  # evaluations without data before a firing alert's why says so

_LEVELS = {"warn": State.WARN, "unknown": State.UNKNOWN, "critical": State.CRITICAL}
_HOST_UNITS = {"cpu": "%", "memory": "%", "disk": "%", "rx": "B/s", "tx": "B/s"}


@dataclass(frozen=True)
class Rule:
    """One entry of the config's ``rules:``. Exactly one of ``above``, ``below`` and ``state`` is set."""

    name: str
    source: str  # a source's name, or a glob over source names
    target: str | None = None  # a glob over reading keys
    metric: str = "value"
    above: float | None = None
    below: float | None = None
    state: State | None = None
    clear: float | None = None  # the hysteresis level; None: the threshold itself
    hold: float = 0.0  # the config's ``for``
    clear_for: float = 60.0
    severity: str = "warning"
    description: str = ""

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Rule:
        """A rule from one validated config entry (keys as backends.config.RULE; defaults filled in if absent)."""
        given = [k for k in ("above", "below", "state") if options.get(k) is not None]
        if len(given) != 1:
            raise ValueError(f"rule {options.get('name')!r} gives {len(given)} of above, below, state (expected one)")
        state = options.get("state")
        return cls(
            name=str(options["name"]), source=str(options["source"]), target=options.get("target"),
            metric=options.get("metric") or "value",
            above=_float(options.get("above")), below=_float(options.get("below")),
            state=None if state is None else _LEVELS[str(state).lower()],
            clear=_float(options.get("clear")),
            hold=float(options.get("for") or 0.0),
            clear_for=float(60.0 if options.get("clear_for") is None else options["clear_for"]),
            severity=options.get("severity") or "warning",
            description=options.get("description") or "",
        )

    @property
    def threshold(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    @property
    def clear_level(self) -> float:
        return self.threshold if self.clear is None else self.clear

    def past(self, value: float, level: float) -> bool:
        """True when ``value`` is on the alerting side of ``level``."""
        return value > level if self.above is not None else value < level

    def holds(self, reading: Reading, firing: bool) -> tuple[bool | None, float | None]:
        """(whether the condition holds, the metric's value); None for "no data". A firing alert is judged
        against ``clear``."""
        if self.state is not None:
            return reading.state >= self.state, None
        if isinstance(reading, GaugeReading) and reading.state is State.UNKNOWN:
            return None, None  # an unreadable gauge carries a placeholder 0 (or its last value): not data
        value = reading.metrics().get(self.metric)
        if value is None or not math.isfinite(value):
            return None, None
        return self.past(value, self.clear_level if firing else self.threshold), value


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _metric_of(rule: Rule, reading: Reading) -> tuple[str, str]:
    """What the rule's number is called in a why, and its unit: ``("cpu", "%")``, ``("api p95", "ms")``."""
    if isinstance(reading, HostReading):
        metric = "cpu" if rule.metric == "value" else rule.metric
        return metric, _HOST_UNITS.get(metric, "")
    if rule.metric != "value":
        return rule.metric, ""
    if isinstance(reading, GaugeReading):
        return reading.label or "value", "%" if reading.percent is not None else reading.unit
    if isinstance(reading, CheckReading):
        return "latency", "ms"
    if isinstance(reading, PipelineReading):
        return "duration", "s"
    return "value", ""


def _amount(value: float, unit: str) -> str:
    """``91.2%``, ``412.3 ms``, ``1.2 MB/s``, ``12,345 msg/s``: as the gauges say it (four significant digits)."""
    if not math.isfinite(value):
        return "no data"
    if unit in ("B", "B/s"):
        return human_bytes(value) + unit[1:]
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{text}{unit}" if unit in ("", "%") else f"{text} {unit}"


def _span(seconds: float) -> str:
    """A rule's duration as it was probably written: ``5m``, ``45s``, ``1m30s``, ``1h``, ``1h30m``."""
    whole = int(seconds)
    if whole != seconds or whole == 0:
        return format_duration(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


def _clock(ts: float) -> str:
    """``14:05``, in the machine's local time, like the panes' clocks."""
    return time.strftime("%H:%M", time.localtime(ts))


class _Track:
    """Where one (rule, reading) pair stands, and what the alert's row needs to say."""

    __slots__ = ("status", "since", "until", "clear_since", "value", "seen", "missing", "gone_since",
                 "source", "observed", "metric", "gone")

    def __init__(self, status: str, now: float, rule: Rule, reading: Reading, value: float | None) -> None:
        self.status = status  # pending, firing, resolved
        self.since = now
        self.until: float | None = None
        self.clear_since: float | None = None
        self.value = value
        self.seen = now  # the last evaluation with data
        self.missing = 0  # evaluations without data in a row
        self.gone_since: float | None = None
        self.source = reading.source
        self.observed = (reading.state, reading.reason)  # for state rules' why
        self.metric = _metric_of(rule, reading)  # what the value is called, and its unit, for the why
        self.gone = False  # resolved because its reading went away


class RuleBook:
    """The config's rules and where each of their alerts stands."""

    def __init__(self, rules: Iterable[Rule], source: str = RULES_SOURCE) -> None:
        self.rules = tuple(rules)
        self.source = source
        names = [r.name for r in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rules named twice: {', '.join(twice)} (each rule needs its own name)")
        self._tracks: dict[tuple[int, str], _Track] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def evaluate(self, readings: Mapping[str, Reading], now: float) -> list[AlertReading]:
        """Step every rule over ``readings`` at ``now``: the pending, firing and recently resolved alerts,
        in rule order, then by reading key."""
        by_source: dict[str, list[Reading]] = {}
        for reading in list(readings.values()):
            if not isinstance(reading, AlertReading) and reading.source != self.source:
                by_source.setdefault(reading.source, []).append(reading)
        present: set[tuple[int, str]] = set()
        for index, rule in enumerate(self.rules):
            for name in fnmatch.filter(by_source, rule.source):
                for reading in by_source[name]:
                    if rule.target is None or fnmatch.fnmatchcase(reading.key, rule.target):
                        present.add((index, reading.key))
                        self._step(rule, (index, reading.key), reading, now)
        for key in [k for k in self._tracks if k not in present]:
            self._absent(key, now)
        return [self._alert(self.rules[key[0]], key[1], self._tracks[key], now) for key in sorted(self._tracks)]

    # -- the state machine ---------------------------------------------------------------------------

    def _step(self, rule: Rule, key: tuple[int, str], reading: Reading, now: float) -> None:
        track = self._tracks.get(key)
        held, value = rule.holds(reading, firing=track is not None and track.status == "firing")
        if held is None:  # no data: nothing moves, but a pending alert cannot prove its `for`
            if track is not None:
                track.missing += 1
                track.gone_since = None
                self._idle(key, track, now)
            return
        if track is not None:
            track.value, track.seen, track.missing, track.gone_since, track.gone = value, now, 0, None, False
            track.observed = (reading.state, reading.reason)
            track.metric = _metric_of(rule, reading)
        if track is None or track.status == "resolved":
            if held:  # a new alert, even right after one resolved
                track = self._tracks[key] = _Track("pending", now, rule, reading, value)
                if rule.hold <= 0:
                    track.status = "firing"
            elif track is not None:
                self._idle(key, track, now)
        elif track.status == "pending":
            if not held:
                del self._tracks[key]
            elif now - track.since >= rule.hold:
                track.status, track.since = "firing", now
        elif held:  # firing, and still past the clear level
            track.clear_since = None
        else:  # firing, but clear: resolves once clear for clear_for
            if track.clear_since is None:
                track.clear_since = now
            if now - track.clear_since >= rule.clear_for:
                track.status, track.until = "resolved", now

    def _absent(self, key: tuple[int, str], now: float) -> None:
        """The reading is gone from the engine (not in this evaluation's readings at all)."""
        track = self._tracks[key]
        track.missing += 1
        if track.status == "firing":
            if track.gone_since is None:
                track.gone_since = now
            if now - track.gone_since >= GONE_AFTER:
                track.status, track.until, track.gone = "resolved", now, True
            return
        self._idle(key, track, now)

    def _idle(self, key: tuple[int, str], track: _Track, now: float) -> None:
        """A pending alert without data is dropped; a resolved one once it has been listed long enough."""
        if track.status == "pending" or (track.status == "resolved" and now - (track.until or now) >= RESOLVED_KEEP):
            del self._tracks[key]

    # -- the alert's row -----------------------------------------------------------------------------

    def _alert(self, rule: Rule, target: str, track: _Track, now: float) -> AlertReading:
        status = track.status
        why = one_line(self._why(rule, target, track), 200)
        labels = {"alertname": rule.name, "severity": rule.severity, "source": track.source, "target": target}
        return AlertReading(
            key=f"{self.source}:{rule.name}:{target}", source=self.source, state=alert_state(rule.severity, status),
            reason=one_line(f"{rule.severity} {rule.name} {status} on {target}: {why}"), ts=now,
            origin="lakedeck", name=rule.name, severity=rule.severity, status=status, since=track.since,
            until=track.until if status == "resolved" else None, target=target, why=why,
            amount=track.value, fingerprint=fingerprint({"alertname": rule.name, "target": target}),
            labels=tuple(sorted(labels.items())))

    def _why(self, rule: Rule, target: str, track: _Track) -> str:
        if track.gone:
            text = f"{target} is gone from {track.source} since {_clock(track.gone_since or track.seen)}: resolved"
        elif rule.state is not None:
            text = self._why_state(rule, track)
        else:
            text = self._why_value(rule, track)
        if track.status == "firing" and not track.gone and track.missing >= NO_DATA_EVALS:
            text += f" · no data since {_clock(track.seen)}"
        return f"{text} · {rule.description}" if rule.description else text

    @staticmethod
    def _why_state(rule: Rule, track: _Track) -> str:
        state, reason = track.observed
        text = f"{state.label}: {reason}"
        if track.status == "pending":
            return f"{text} (firing if it lasts {_span(rule.hold)})"
        if track.status == "firing" and track.clear_since is not None:
            level = rule.state.label if rule.state is not None else ""
            return f"{text} (resolves after {_span(rule.clear_for)} below {level})"
        return text

    @staticmethod
    def _why_value(rule: Rule, track: _Track) -> str:
        value = track.value if track.value is not None else math.nan
        metric, unit = track.metric
        cmp, back = (">", "≤") if rule.above is not None else ("<", "≥")
        now_is = f"{metric} {_amount(value, unit)}"
        threshold, clear = _amount(rule.threshold, unit), _amount(rule.clear_level, unit)
        if track.status == "pending":
            return f"{now_is} {cmp} {threshold}, firing if it lasts {_span(rule.hold)}"
        if track.status == "resolved":
            return f"{now_is} {back} {clear}: resolved"
        if rule.past(value, rule.threshold):
            return f"{now_is} {cmp} {threshold}" + (f" for {_span(rule.hold)}" if rule.hold > 0 else "")
        if rule.past(value, rule.clear_level):  # in the hysteresis band
            return f"{now_is}, not yet {back} {clear} (fired {cmp} {threshold})"
        return f"{now_is} {back} {clear}, resolves after {_span(rule.clear_for)} clear"
