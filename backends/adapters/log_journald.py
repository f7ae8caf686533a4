"""A systemd unit's journal: ``journalctl -f -o json -u UNIT``, resumed after its last cursor when restarted.

Each JSON entry gives the time the entry was written (``__REALTIME_TIMESTAMP``, microseconds) and its
severity (``PRIORITY``), which beat guessing them from the text. A MESSAGE holding control characters or
bytes that are not UTF-8 comes as a list of byte values, a field over 4 KiB as null, and a field given
several times as a list of values (systemd's docs/JOURNAL_EXPORT_FORMATS.md).
"""

from __future__ import annotations

import json
from typing import Any

from ..log_reading import MAX_LINE, Piece
from ..model import LogLine
from .log_stream import StreamSource

RAW_LINE = 64 * 1024  # one JSON entry; journalctl leaves fields over 4 KiB out (null) unless --all
PRIORITIES = {"0": "critical", "1": "critical", "2": "critical", "3": "error", "4": "warn", "5": "info",
              "6": "info", "7": "debug"}
LEFT_OUT = "[message over 4 KiB left out by journalctl -o json]"


def message_text(value: Any) -> str:
    """MESSAGE as text: a string, a list of byte values, null, or a list of those (a field given twice)."""
    if isinstance(value, str):
        return value
    if value is None:
        return LEFT_OUT
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in value):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, list):
        return "\n".join(message_text(item) for item in value)
    return str(value)


def cut_text(text: str) -> tuple[str, int]:
    """``text`` cut to MAX_LINE bytes, and how many bytes were left off."""
    if len(text) * 4 <= MAX_LINE:
        return text, 0
    data = text.encode("utf-8", errors="replace")
    if len(data) <= MAX_LINE:
        return text, 0
    piece = Piece(data[:MAX_LINE], -1, len(data) - MAX_LINE)
    return piece.text(), piece.cut


class LogJournald(StreamSource):
    raw_line = RAW_LINE
    missing_hint = "install systemd or set journalctl:"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.unit: str = options["unit"]
        self.user: bool = options["user"]
        self.backlog: int = options["lines"]
        self.journalctl: str = options["journalctl"]
        self.cursor: str | None = None  # the last entry read, written by the reader thread

    def describe(self) -> str:
        return f"journalctl {'--user ' if self.user else ''}-u {self.unit}"

    async def argv(self) -> list[str]:
        argv = [self.journalctl, "-f", "-o", "json", "-u", self.unit, *(["--user"] if self.user else [])]
        if self.cursor:  # a restart: carry on after the last entry shown, without repeating or missing any
            return [*argv, "--after-cursor", self.cursor]
        return [*argv, "-n", str(self.backlog)]

    def to_lines(self, piece: Piece, read_at: float) -> list[LogLine]:
        raw = piece.text()
        entry = None
        if raw.startswith("{") and not piece.cut:
            try:
                entry = json.loads(raw)
            except ValueError:
                pass
        if not isinstance(entry, dict):  # not an entry (a warning journalctl printed): shown as it is
            text, cut = cut_text(raw)
            return [self.stamper.line(text, read_at, cut=cut + piece.cut)]
        cursor = entry.get("__CURSOR")
        if isinstance(cursor, str):
            self.cursor = cursor
        try:
            ts: float | None = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
        except (KeyError, TypeError, ValueError):
            ts = None
        level = PRIORITIES.get(str(entry.get("PRIORITY", "")), "")
        lines = message_text(entry.get("MESSAGE")).split("\n")
        while len(lines) > 1 and not lines[-1]:
            lines.pop()
        out = []
        for line in lines:  # a multi-line message (a stack trace) becomes lines that share its time and level
            text, cut = cut_text(line)
            out.append(self.stamper.line(text, read_at, ts=ts, level=level, cut=cut))
        return out
