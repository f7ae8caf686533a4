"""The lines a log view holds: several sources merged by time, bounded, with the filter applied.

Plain data (no UI), so the console and the headless ``lakedeck logs`` read the same thing.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable

from .log_filter import LineFilter
from .model import LogLine

TRIM_SLACK = 0.1  # trim a tenth of the capacity at once, so a full buffer does not shift on every line


@dataclass
class Added:
    """What one ``add`` did to the shown lines, so a view can keep its place."""

    appended: int = 0  # shown lines added at the end
    inserted: int = 0  # shown lines that arrived late and went in before the end (merge by time)
    trimmed: int = 0  # shown lines dropped from the front to stay within capacity
    first_inserted: int = -1  # the smallest index an inserted line went to (before trimming)


class LogBuffer:
    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self.lines: list[LogLine] = []
        self._times: list[float] = []
        self._filter: LineFilter | None = None
        self._shown: list[LogLine] = []
        self._shown_times: list[float] = []
        self.dropped = 0  # lines that fell off the front since the start
        self.tail_dropped = False  # older lines paged in pushed the newest out: no longer live
        self._last_key: dict[str, float] = {}  # per source, the time its newest line was placed at

    @property
    def filter(self) -> LineFilter | None:
        return self._filter

    @property
    def shown(self) -> list[LogLine]:
        """The lines that pass the filter, in time order (all of them when there is no filter)."""
        return self._shown if self._filter else self.lines

    @property
    def shown_times(self) -> list[float]:
        return self._shown_times if self._filter else self._times

    def add(self, batch: Iterable[LogLine]) -> Added:
        """Merge a batch in by time; a line as old as the newest goes after it (arrival order is kept)."""
        added = Added()
        matcher = self._filter
        keyed = []
        for line in batch:
            # a source's own lines keep their order (a log is not re-sorted); sources interleave by time
            key = max(line.ts, self._last_key.get(line.source, line.ts))
            self._last_key[line.source] = key
            keyed.append((key, line))
        keyed.sort(key=_first)
        for key, line in keyed:
            index = self._insert(self.lines, self._times, line, key)
            if matcher is None:
                self._count(added, index, len(self.lines))
            elif matcher.matches(line):
                self._count(added, self._insert(self._shown, self._shown_times, line, key), len(self._shown))
        added.trimmed = self._trim()
        return added

    @staticmethod
    def _insert(lines: list[LogLine], times: list[float], line: LogLine, key: float) -> int:
        if not times or key >= times[-1]:
            lines.append(line)
            times.append(key)
            return len(lines) - 1
        index = bisect.bisect_right(times, key)
        lines.insert(index, line)
        times.insert(index, key)
        return index

    @staticmethod
    def _count(added: Added, index: int, length: int) -> None:
        if index == length - 1:
            added.appended += 1
        else:
            added.inserted += 1
            added.first_inserted = index if added.first_inserted < 0 else min(added.first_inserted, index)

    def _trim(self) -> int:
        if len(self.lines) <= self.capacity:
            return 0
        excess = max(len(self.lines) - self.capacity, int(self.capacity * TRIM_SLACK))
        gone = self.lines[:excess]
        del self.lines[:excess]
        del self._times[:excess]
        self.dropped += excess
        if self._filter is None:
            return excess
        # the shown lines are a subsequence of the lines: drop those that were among the dropped
        shown_gone = 0
        for line in gone:
            if shown_gone < len(self._shown) and self._shown[shown_gone] is line:
                shown_gone += 1
        del self._shown[:shown_gone]
        del self._shown_times[:shown_gone]
        return shown_gone

    def prepend(self, lines: Iterable[LogLine]) -> int:
        """Older lines paged in from disk go before all others, in the order given (a file's order even
        where its lines carry no time). Over capacity, the newest lines go. Returns how many are shown."""
        older = list(lines)
        if not older:
            return 0
        ceiling = self._times[0] if self._times else float("inf")
        times = []
        for line in reversed(older):  # times must not decrease, for bisect
            ceiling = min(ceiling, line.ts)
            times.append(ceiling)
        times.reverse()
        self.lines[:0] = older
        self._times[:0] = times
        shown = len(older)
        if self._filter is not None:
            kept = [(line, ts) for line, ts in zip(older, times) if self._filter.matches(line)]
            self._shown[:0] = [line for line, _ in kept]
            self._shown_times[:0] = [ts for _, ts in kept]
            shown = len(kept)
        excess = len(self.lines) - self.capacity
        if excess > 0:
            gone = self.lines[-excess:]
            del self.lines[-excess:]
            del self._times[-excess:]
            self.tail_dropped = True
            if self._filter is not None:
                gone_ids = {id(line) for line in gone}
                while self._shown and id(self._shown[-1]) in gone_ids:
                    self._shown.pop()
                    self._shown_times.pop()
        return shown

    def clear(self) -> None:
        self.tail_dropped = False
        self._last_key.clear()
        self.lines.clear()
        self._times.clear()
        self._shown.clear()
        self._shown_times.clear()

    def set_filter(self, text: str) -> LineFilter | None:
        """Filter by ``text`` (see LineFilter); "" shows everything. Returns the filter in force."""
        matcher = LineFilter(text) if text else None
        if matcher is not None and matcher.empty:
            matcher = None
        self._filter = matcher
        if matcher is None:
            self._shown, self._shown_times = [], []
        else:
            kept = [(line, key) for line, key in zip(self.lines, self._times) if matcher.matches(line)]
            self._shown = [line for line, _ in kept]
            self._shown_times = [key for _, key in kept]
        return matcher

    def index_at(self, ts: float) -> int:
        """The first shown line written at or after ``ts`` (len(shown) when all are older)."""
        return bisect.bisect_left(self.shown_times, ts)

    def find(self, matcher: LineFilter, start: int, forward: bool = True) -> int | None:
        """The next shown line after ``start`` (or before it) whose text matches, wrapping around."""
        shown = self.shown
        count = len(shown)
        if not count:
            return None
        step = 1 if forward else -1
        for distance in range(1, count + 1):
            index = (start + step * distance) % count
            if matcher.search(shown[index].text):
                return index
        return None


def _first(pair: tuple[float, LogLine]) -> float:
    return pair[0]
