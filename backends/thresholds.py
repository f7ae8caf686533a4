"""Pure threshold logic for gauges: which state a value is in, and how to say why."""

from __future__ import annotations

import math
from typing import Any, Mapping

from .config import Thresholds
from .model import State


def classify(value: float | None, warn: float | None, critical: float | None) -> State:
    """CRITICAL at or above ``critical``, WARN at or above ``warn``, else OK; no number is UNKNOWN.

    A missing level is simply not checked. Critical is tested first, so a level pair given the wrong way
    round still never reports a lower severity than the value deserves.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return State.UNKNOWN
    if critical is not None and value >= critical:
        return State.CRITICAL
    if warn is not None and value >= warn:
        return State.WARN
    return State.OK


def levels_for(metric: str, overrides: Mapping[str, Mapping[str, Any]] | None,
               defaults: Thresholds) -> tuple[float, float]:
    """The (warn, critical) levels of ``metric``: the per-metric override where given, else the defaults."""
    level = (overrides or {}).get(metric) or {}
    warn = level.get("warn")
    critical = level.get("critical")
    return (defaults.warn if warn is None else warn, defaults.critical if critical is None else critical)


def level_note(state: State, warn: float | None, critical: float | None, unit: str = "%") -> str:
    """`` (critical at 90%)`` or `` (warn at 80%)`` for a gauge that crossed a level, else nothing."""
    if state is State.CRITICAL and critical is not None:
        return f" (critical at {_number(critical)}{unit})"
    if state is State.WARN and warn is not None:
        return f" (warn at {_number(warn)}{unit})"
    return ""


def _number(value: float) -> str:
    return f"{value:g}"
