"""`lakedeck check`: one sweep of every source, printed as a table or JSON, with a cron-friendly exit code."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TextIO

from . import interrupts
from .config import Config
from .engine import Engine
from .model import (AlertReading, BackupReading, CheckReading, GaugeReading, HostReading, LogReading,
                    PipelineReading, ProcessTableReading, Reading, State, TableReading)
from .text import one_line


def summarize(reading: Reading) -> str:
    """What a reading says in a few words, beside its state."""
    if isinstance(reading, GaugeReading):
        return reading.label
    if isinstance(reading, CheckReading):
        return reading.target
    if isinstance(reading, LogReading):
        return reading.path
    if isinstance(reading, PipelineReading):
        return f"{reading.kind} " + ("paused" if reading.paused else reading.status)
    if isinstance(reading, AlertReading):
        if reading.status == "silence":
            return f"{reading.origin} silence"
        return f"{reading.origin} {reading.severity} {reading.status}" + (" acked" if reading.acked else "")
    if isinstance(reading, HostReading):
        return f"host {reading.instance}"
    if isinstance(reading, TableReading):
        return reading.check or f"table {reading.table}"
    if isinstance(reading, BackupReading):
        return f"{reading.kind} backup, {len(reading.sets)} sets"
    if isinstance(reading, ProcessTableReading):
        return f"top {len(reading.by_cpu)} processes"
    return ""


def sweep(config: Config) -> list[Reading]:
    async def run() -> list[Reading]:
        interrupts.exit_on_signals()  # a command check's process group does not outlive `check`
        engine = Engine(config)
        try:
            await engine.sweep()
        finally:
            await engine.stop()
        return list(engine.readings.values())

    return asyncio.run(run())


def exit_code(readings: list[Reading]) -> int:
    return max((r.state for r in readings), default=State.OK).exit_code()


def as_json(readings: list[Reading]) -> list[dict[str, Any]]:
    return [
        {
            "key": r.key,
            "source": r.source,
            "pane": r.pane.value,
            "state": r.state.name,
            "reason": r.reason,
            "what": summarize(r),
            "value": r.value,
            "ts": r.ts,
            **_alert_fields(r),
            **({"metrics": r.metrics()} if isinstance(r, HostReading) else {}),
        }
        for r in readings
    ]


def _alert_fields(reading: Reading) -> dict[str, Any]:
    if not isinstance(reading, AlertReading):
        return {}
    return {"alert": {"origin": reading.origin, "name": reading.name, "severity": reading.severity,
                      "status": reading.status, "since": reading.since, "until": reading.until,
                      "target": reading.target, "why": reading.why, "value": reading.amount,
                      "acked": reading.acked, "labels": dict(reading.labels)}}


def write_table(readings: list[Reading], out: TextIO) -> None:
    """A plain table: no colour, no markup, safe for cron mail and pipes."""
    rows = [(r.state.name, one_line(r.key, 40), one_line(summarize(r), 40), one_line(r.reason, 100))
            for r in sorted(readings, key=lambda r: (-r.state, r.key))]
    headers = ("STATE", "KEY", "WHAT", "REASON")
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
    counts = {state: sum(1 for r in readings if r.state is state) for state in State}
    out.write(", ".join(f"{n} {state.name.lower()}" for state, n in counts.items()) + "\n")


def run_check(config: Config, out: TextIO, as_json_output: bool = False) -> int:
    readings = sweep(config)
    if as_json_output:
        json.dump({"origin": config.origin, "readings": as_json(readings)}, out, indent=2)
        out.write("\n")
    else:
        write_table(readings, out)
    return exit_code(readings)
