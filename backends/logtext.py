"""What a log line says about itself: when it was written, how severe it is, whether it is JSON.

Cheap enough for every line of a busy log: regular expressions over the first characters, no JSON
parsing until someone asks to see a line pretty.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from typing import Callable

from .model import LogLine

HEAD = 120  # characters searched for a time or a level

_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?(?: ?(Z|[+-]\d\d:?\d\d)\b)?")
_MONTHS = {name: index for index, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
_SYSLOG = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ \d]\d) (\d\d):(\d\d):(\d\d)\b")
_JSON_TIME = re.compile(r'"(?:@timestamp|timestamp|time|ts|asctime|t)"\s*:\s*("?)([^",}]{1,40})\1')
_JSON_LEVEL = re.compile(r'"(?:level|levelname|severity|lvl|loglevel|log\.level)"\s*:\s*"([A-Za-z]{1,12})"')
# searched in the lower-cased head of a line: a case-insensitive pattern is 2.5x slower in `re`
_TEXT_LEVEL = re.compile(r"\b(fatal|panic|emerg|alert|crit(?:ical)?|err(?:or)?|severe|warn(?:ing)?|notice|info|debug|trace)\b")
LEVELS = {
    "FATAL": "critical", "PANIC": "critical", "EMERG": "critical", "ALERT": "critical", "CRIT": "critical",
    "CRITICAL": "critical", "ERR": "error", "ERROR": "error", "SEVERE": "error", "WARN": "warn",
    "WARNING": "warn", "NOTICE": "info", "INFO": "info", "DEBUG": "debug", "TRACE": "debug",
}


def _epoch_number(value: float) -> float | None:
    """Seconds, milliseconds, microseconds or nanoseconds since the epoch, told apart by size."""
    for scale in (1, 1e3, 1e6, 1e9):
        seconds = value / scale
        if seconds < 4e9:
            return seconds if seconds > 1e8 else None
    return None


class _Cache:
    """The epoch of the last whole second parsed: busy logs repeat the same second many times."""

    def __init__(self) -> None:
        self.key: tuple = ()
        self.value = 0.0


_iso_cache = _Cache()


def _iso(match: re.Match[str]) -> float:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    key = (year, month, day, hour, minute, second, zone)
    if key == _iso_cache.key:
        whole = _iso_cache.value
    else:
        fields = (int(year), int(month), int(day), int(hour), int(minute), int(second))
        if zone is None:
            whole = time.mktime((*fields, 0, 0, -1))  # no zone written: the machine's local time
        else:
            whole = float(calendar.timegm((*fields, 0, 0, 0)))
            if zone != "Z":
                sign = -1 if zone[0] == "+" else 1
                digits = zone[1:].replace(":", "")
                whole += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        _iso_cache.key, _iso_cache.value = key, whole
    return whole + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def _syslog(match: re.Match[str], now: float) -> float:
    month, day, hour, minute, second = match.groups()
    year = time.localtime(now).tm_year
    when = time.mktime((year, _MONTHS[month], int(day), int(hour), int(minute), int(second), 0, 0, -1))
    if when > now + 86400:  # syslog leaves out the year: December's lines read in January
        when = time.mktime((year - 1, _MONTHS[month], int(day), int(hour), int(minute), int(second), 0, 0, -1))
    return when


def parse_time(text: str, now: float | None = None) -> float | None:
    """When the line says it was written (ISO 8601, syslog, or a JSON time field), as epoch seconds."""
    head = text[:HEAD]
    if head[:1] == "{":
        field = _JSON_TIME.search(text, 0, 2000)
        if field:
            value = field.group(2).strip()
            try:
                return _epoch_number(float(value))
            except ValueError:
                iso = _ISO.search(value)
                if iso:
                    return _iso(iso)
    match = _ISO.search(head)
    if match:
        try:
            return _iso(match)
        except (ValueError, OverflowError):
            return None
    match = _SYSLOG.search(head)
    if match:
        try:
            return _syslog(match, time.time() if now is None else now)
        except (ValueError, OverflowError):
            return None
    return None


def parse_level(text: str) -> str:
    """``critical``, ``error``, ``warn``, ``info``, ``debug``, or "" when the line does not say."""
    if text[:1] == "{":
        field = _JSON_LEVEL.search(text, 0, 2000)
        if field:
            return LEVELS.get(field.group(1).upper(), "")
    match = _TEXT_LEVEL.search(text[:HEAD].lower())
    return LEVELS[match.group(1).upper()] if match else ""


def pretty_json(text: str) -> str | None:
    """The line as indented JSON, or None when it is not a JSON object or array."""
    stripped = text.strip()
    if not stripped[:1] in ("{", "["):
        return None
    try:
        return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
    except ValueError:
        return None


CONTINUATION_WINDOW = 1.0  # a line without a time, read this soon after one with a time, continues it


class Stamper:
    """Makes the LogLines of one source: each gets the time it says it was written, else the time of
    the line before it when read together (a stack trace continues its error), else the time it was read."""

    def __init__(self, source: str, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.clock = clock
        self._last_ts: float | None = None
        self._last_read = float("-inf")

    def line(self, text: str, read_at: float | None = None, *, ts: float | None = None, level: str = "",
             path: str = "", offset: int = -1, cut: int = 0) -> LogLine:
        read_at = self.clock() if read_at is None else read_at
        if ts is None:
            ts = parse_time(text, read_at)
        if ts is None:
            recent = self._last_ts is not None and read_at - self._last_read < CONTINUATION_WINDOW
            ts = self._last_ts if recent else read_at
        else:
            self._last_ts, self._last_read = ts, read_at
        return LogLine(self.source, text, ts, level or parse_level(text), path, offset, cut)
