"""What every pipeline adapter (airflow, dbt, rest, lineage) shares: freshness, drill-down, item actions."""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from ..actions import Action
from ..durations import format_duration
from ..model import Listing, LogLine, PipelineItem, PipelineReading, Reading, State
from .base import Source

# the worst status words of the systems we read, as states; anything else running-ish is OK
FAILED_WORDS = {"failed", "error", "fail", "upstream_failed", "crashed"}


_FRACTION = re.compile(r"\.(\d+)")


def epoch(value: Any) -> float | None:
    """An ISO 8601 time from an API as epoch seconds (a time without a zone is UTC); None when it is not one."""
    if not value or not isinstance(value, str):
        return None
    # Python 3.10 reads only 3 or 6 digits of a fraction, and no "Z"
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "00000")[:6], value.strip().replace("Z", "+00:00"), count=1)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def epoch_seconds(value: Any) -> float:
    """A time as an API writes it, in epoch seconds: ISO 8601 (no zone: UTC), or a number of seconds or of
    milliseconds (told apart by size). ``ValueError`` when it is neither."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        value = float(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(value)
        return value / 1000 if value > 1e11 else float(value)  # 1e11 s is the year 5138; 1e11 ms is 1973
    found = epoch(value)
    if found is None:
        raise ValueError(value)
    return found


def time_or_none(value: Any) -> float | None:
    """``epoch_seconds`` for a time that may be absent or unreadable (an error's, a run's): None then."""
    if value is None or value == "":
        return None
    try:
        return epoch_seconds(value)
    except (ValueError, OverflowError):
        return None


def is_number(value: Any) -> bool:
    """A finite JSON number (``true`` and ``NaN`` are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class PipelineError(Exception):
    """Opening, reading a log or preparing an action failed; ``str()`` is one line for the operator."""


class PipelineSource(Source):
    """A source whose readings are pipelines (``PipelineReading``), each of which can be opened.

    Adapters implement ``read()``; the base adds freshness against ``max_age`` (late: WARN, twice as late:
    CRITICAL). ``ref`` tuples are the adapter's own: it makes them and it alone reads them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_age: float | None = self.spec.options.get("max_age")
        self.max_age_for: dict[str, float] = dict(self.spec.options.get("max_age_for") or {})

    async def read(self) -> list[Reading]:
        raise NotImplementedError

    async def poll(self) -> list[Reading]:
        now = self.clock()
        return [self.judge_freshness(r, now) if isinstance(r, PipelineReading) else r for r in await self.read()]

    def failed(self, reason: str, state: State = State.UNKNOWN) -> list[Reading]:
        return [PipelineReading(key=self.name, source=self.name, state=state, reason=reason, ts=self.clock(),
                                kind=self.kind, name=self.name, status="unreachable", can_open=False)]

    def reading(self, name: str, state: State, reason: str, **fields: Any) -> PipelineReading:
        """A pipeline of this source, keyed ``<source>:<name>``."""
        return PipelineReading(key=f"{self.name}:{name}", source=self.name, state=state, reason=reason,
                               ts=self.clock(), kind=self.kind, name=name, **fields)

    # -- freshness ---------------------------------------------------------------------------------

    def max_age_of(self, name: str) -> float | None:
        """``max_age_for`` by exact name, then by glob, else ``max_age``."""
        if name in self.max_age_for:
            return self.max_age_for[name]
        for pattern, seconds in self.max_age_for.items():
            if fnmatch.fnmatchcase(name, pattern):
                return seconds
        return self.max_age

    def judge_freshness(self, reading: PipelineReading, now: float) -> PipelineReading:
        """A pipeline whose last success is older than its max age is late. A paused one is not judged:
        pausing is the operator's decision, and the row says paused."""
        limit = self.max_age_of(reading.name)
        if limit is None or reading.paused:
            return reading
        if reading.last_success is None:
            late, why = State.WARN, f"late: no successful run seen (max age {format_duration(limit)})"
        else:
            age = now - reading.last_success
            if age <= limit:
                return reading
            late = State.CRITICAL if age > 2 * limit else State.WARN
            why = f"late: last success {format_duration(age)} ago (max age {format_duration(limit)})"
        if late <= reading.state and reading.state is not State.OK:
            return replace(reading, reason=f"{reading.reason} · {why}" if reading.reason else why)
        return replace(reading, state=max(late, reading.state),
                       reason=f"{why} · {reading.reason}" if reading.reason else why)

    # -- drill-down and actions --------------------------------------------------------------------

    async def open(self, ref: tuple[str, ...]) -> Listing:
        """What is under a pipeline, a run or a job (``PipelineError`` when it cannot be read)."""
        raise PipelineError(f"the {self.kind} adapter cannot open {'/'.join(ref) or self.name}")

    async def log(self, ref: tuple[str, ...]) -> list[LogLine]:
        """The log of an item whose ``has_log`` is true (an Airflow task try), as lines for the log viewer."""
        raise PipelineError(f"the {self.kind} adapter has no log for {'/'.join(ref) or self.name}")

    def item_actions(self, row: PipelineReading | PipelineItem) -> list[Action]:
        """What can be done to one pipeline row or drill-down item (target ``<source>:<name>``)."""
        return []

    def with_value(self, action: Action, value: str) -> Action:
        """``action`` with the value its ``ask`` asked for; ``ValueError`` (one line) when it is not valid."""
        return replace(action, value=value)
