"""Poll a log source the way the engine would, until what a test waits for has arrived (or a deadline)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from backends.model import LogReading, Pane

WITHIN = 15.0


async def poll_once(source) -> LogReading:
    [reading] = await source.poll()
    assert isinstance(reading, LogReading) and reading.pane is Pane.LOGS, reading
    assert reading.key == source.name and reading.source == source.name and "\n" not in reading.reason
    assert all(line.source == source.name for line in reading.lines)
    return reading


async def poll_until(source, done: Callable[[list[LogReading]], bool], within: float = WITHIN) -> list[LogReading]:
    """Every reading until ``done(readings)`` holds; fails after ``within`` seconds with what arrived."""
    readings: list[LogReading] = []
    deadline = time.monotonic() + within
    while True:
        readings.append(await poll_once(source))
        if done(readings):
            return readings
        if time.monotonic() > deadline:
            recent = [(r.state, r.reason) for r in readings[-6:]]
            raise AssertionError(f"gave up after {within:g}s; the last readings: {recent}")
        await asyncio.sleep(0.02)


def texts(readings: list[LogReading]) -> list[str]:
    return [line.text for reading in readings for line in reading.lines]


def line_count(count: int) -> Callable[[list[LogReading]], bool]:
    return lambda readings: len(texts(readings)) >= count


def ended(readings: list[LogReading]) -> bool:
    from backends.model import State

    last = readings[-1]
    return last.state is State.UNKNOWN and " exited " in last.reason and not last.reason.startswith("restarted")
