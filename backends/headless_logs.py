"""`lakedeck logs`: the configured logs merged by time, filtered, printed (and followed), for scripts and SSH
one-liners. Printed text has its control characters made visible, as on screen."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from typing import TextIO

from . import interrupts
from .config import Config
from .engine import Engine
from .log_buffer import LogBuffer
from .log_filter import LineFilter
from .log_reading import CUT_MARK
from .model import LogLine, LogReading
from .text import human_bytes, visible

STREAM_SETTLE = 1.0  # a streaming source (journalctl, docker compose logs) needs a moment to print its backlog
FOLLOW_EVERY = 0.5


def run_logs(config: Config, names: list[str], *, lines: int = 50, pattern: str = "", follow: bool = False,
             out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Exit 0, or 2 when a named source is not a log in the config or the pattern cannot run."""
    refused = LineFilter(pattern).error
    if refused:
        err.write(visible(f"lakedeck logs: --grep {pattern}: {refused}") + "\n")
        return 2
    logs = config.section("logs")
    unknown = [name for name in names if name not in {spec.name for spec in logs}]
    if unknown:
        offered = ", ".join(spec.name for spec in logs) or "none: add some under logs: in lakedeck.yaml"
        err.write(visible(f"lakedeck logs: no log named {', '.join(map(repr, unknown))} (the logs are: {offered})")
                  + "\n")
        return 2
    chosen = tuple(spec for spec in logs if not names or spec.name in names)
    if not chosen:
        err.write("lakedeck logs: no logs in the config: add some under logs: in lakedeck.yaml\n")
        return 2
    several = len(chosen) > 1
    return asyncio.run(_logs(replace(config, sources=chosen), lines, pattern, follow, several, out, err))


async def _logs(config: Config, count: int, pattern: str, follow: bool, several: bool, out: TextIO,
                err: TextIO) -> int:
    interrupts.exit_on_signals(streams=(out, err))  # a followed journalctl or command does not outlive `logs -f`
    engine = Engine(config)
    buffer = LogBuffer(capacity=max(count, 1))
    buffer.set_filter(pattern)
    try:
        updates = await engine.sweep()
        if any(spec.kind != "file" for spec in config.sources):
            await asyncio.sleep(STREAM_SETTLE)
            updates += await asyncio.gather(*(engine.poll_once(spec.name) for spec in config.sources))
        for update in updates:
            for reading in update.readings:
                if isinstance(reading, LogReading):
                    buffer.add(reading.lines)
                    if not reading.lines and reading.state.name != "OK":
                        err.write(visible(f"lakedeck logs: {reading.source}: {reading.reason}") + "\n")
        _print(buffer.shown[-count:] if count else [], several, out)
        while follow:
            await asyncio.sleep(FOLLOW_EVERY)
            tick = LogBuffer()
            tick.set_filter(pattern)
            for update in await asyncio.gather(*(engine.poll_once(spec.name) for spec in config.sources)):
                for reading in update.readings:
                    if isinstance(reading, LogReading):
                        tick.add(reading.lines)
            _print(tick.shown, several, out)
    finally:
        await engine.stop()
    return 0


def _print(lines: list[LogLine], several: bool, out: TextIO) -> None:
    for line in lines:
        text = visible(line.text)
        if line.cut:  # cut when read (log_reading.MAX_LINE), marked as on screen
            text = f"{CUT_MARK}{text} …+{human_bytes(line.cut)}"
        out.write(f"{visible(line.source)}\t{text}\n" if several else f"{text}\n")
    out.flush()
