"""Durations as people write them in config and on the command line: ``500ms``, ``5s``, ``2m``, ``24h``, ``7d``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_COMPOUND = re.compile(r"^(?:\d+(?:ms|s|m|h|d))+$")  # 1h30m, 2d04h: what format_duration writes reads back
_PART = re.compile(r"(\d+)(ms|s|m|h|d)")


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``; a bare number is seconds. Raises ``ValueError`` with the accepted forms."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 500ms, 5s, 2m, 24h or 7d")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    match = _PATTERN.match(text)
    if match:
        return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if _COMPOUND.match(text.strip()):
        return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    raise ValueError("expected a duration such as 500ms, 5s, 2m, 24h, 7d or 1h30m")


def format_duration(seconds: float) -> str:
    """A short human form: ``850ms``, ``42s``, ``3m12s``, ``5h02m``, ``2d04h``."""
    if seconds < 0:
        seconds = 0
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_age(seconds: float, fresh_within: float = 1.0) -> str:
    """How long ago: ``just now`` within ``fresh_within`` (one poll's rhythm), else ``12s ago``, ``3m05s ago``.

    Within the normal rhythm the text stays put, so a live view does not redraw it every second.
    """
    return "just now" if seconds < fresh_within else f"{format_duration(seconds)} ago"


def format_uptime(seconds: float) -> str:
    """Coarse, so that it changes once a minute at most: ``<1m``, ``42m``, ``5h02m``, ``2d04h``."""
    if seconds < 60:
        return "<1m"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    return format_duration(seconds)


_CLOCK = re.compile(r"^(?:(\d{4})-(\d\d)-(\d\d)[T ])?(\d{1,2}):(\d\d)(?::(\d\d))?$")
WHEN_FORMS = "expected a time such as 14:05, 14:05:30, 2026-11-22 14:05, or how long ago such as 10m"


def parse_when(text: str, now: float) -> float:
    """A moment typed by an operator, as epoch seconds: a local clock time today (yesterday when that is
    still to come), a date and time, or a duration ago (``10m``, ``-10m``, ``2h ago``)."""
    import time

    cleaned = text.strip().removesuffix("ago").strip().removeprefix("-").strip()
    match = _CLOCK.match(cleaned)
    if match:
        year, month, day, hour, minute, second = match.groups()
        local = time.localtime(now)
        fields = (int(year), int(month), int(day)) if year else (local.tm_year, local.tm_mon, local.tm_mday)
        if int(hour) > 23 or int(minute) > 59 or int(second or 0) > 59:
            raise ValueError(f"{text.strip()!r} is not a time of day ({WHEN_FORMS})")
        when = time.mktime((*fields, int(hour), int(minute), int(second or 0), 0, 0, -1))
        return when - 86400 if not year and when > now else when
    try:
        return now - parse_duration(cleaned)
    except ValueError:
        raise ValueError(f"{text.strip()!r}: {WHEN_FORMS}") from None
