"""Log lines out of the console: read whole from their file, or saved to a new one (never over another)."""

from __future__ import annotations

import time
from typing import Sequence

from .model import LogLine
from .text import human_bytes, one_line

WHOLE_LIMIT = 16 * 1024 * 1024  # of one line read whole from disk


def default_save_path(name: str, now: float) -> str:
    safe = "".join(char if char.isalnum() or char in "-_." else "-" for char in name).strip("-") or "logs"
    return f"lakedeck-{safe}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}.log"


def save_lines(lines: Sequence[LogLine], path: str, merged: bool) -> int:
    """Write ``lines`` to a new file (never over an existing one), whole where they were cut and the
    file they came from still holds them. Returns the number of lines written."""
    pager_cache: dict[str, object] = {}
    with open(path, "x", encoding="utf-8", errors="replace") as out:
        for line in lines:
            text = whole_text(line, pager_cache)[0] if line.cut else line.text
            out.write(f"{line.source}\t{text}\n" if merged else f"{text}\n")
    return len(lines)


def whole_text(line: LogLine, cache: dict[str, object] | None = None) -> tuple[str, str]:
    """The complete text of a cut line from its file, and a note when that was not possible."""
    if not line.cut:
        return line.text, ""
    if not line.path or line.offset < 0:
        return line.text, f"the last {human_bytes(line.cut)} were cut when read (no file to read it whole from)"
    from .log_pager import FilePager

    try:
        pager = cache.get(line.path) if cache is not None else None
        if pager is None:
            pager = FilePager(line.path, line.source)
            if cache is not None:
                cache[line.path] = pager
        text, beyond = pager.whole(line, WHOLE_LIMIT)  # type: ignore[attr-defined]
    except Exception as exc:  # the file went away or changed: say so, show what was read
        return line.text, one_line(f"cannot read the whole line: {exc}")
    return text, (f"{human_bytes(beyond)} more beyond {human_bytes(WHOLE_LIMIT)} not shown" if beyond else "")
