"""A bounded, fast log view: a ring of lines drawn through the line API, only the viewport rendered.

Neither ``Log(max_lines=N)`` (stops redrawing once full, Textual 8.2.8) nor ``RichLog(max_lines=N)``
(copies its buffer on every write once full) can follow a busy log and stay bounded, hence this.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from typing import Iterable

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .cells import ThemeRoles

_LEVEL = re.compile(r"\b(FATAL|CRIT(?:ICAL)?|ERR(?:OR)?|WARN(?:ING)?|INFO|DEBUG|TRACE)\b", re.IGNORECASE)
_LEVEL_ROLE = {"FATAL": "critical", "CRIT": "critical", "CRITICAL": "critical", "ERR": "critical",
               "ERROR": "critical", "WARN": "warn", "WARNING": "warn", "INFO": "", "DEBUG": "muted", "TRACE": "muted"}
MAX_SHOWN_CHARS = 2000


@dataclass(frozen=True)
class LogEntry:
    """One line to show; ``text`` must already be free of control characters."""

    source: str
    text: str

    @property
    def role(self) -> str:
        match = _LEVEL.search(self.text, 0, 200)
        return _LEVEL_ROLE.get(match.group(1).upper(), "") if match else ""


class LogView(ThemeRoles, ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LogView { height: 1fr; scrollbar-size-vertical: 1; scrollbar-size-horizontal: 0; }
    """

    def __init__(self, max_lines: int = 10_000, source_width: int = 12, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_lines = max_lines
        self.source_width = source_width
        self._lines: collections.deque[LogEntry] = collections.deque(maxlen=max_lines)
        self._shown: collections.deque[LogEntry] = collections.deque(maxlen=max_lines)
        self._filter = ""
        self._widest = 0
        self._follow = True

    def on_mount(self) -> None:
        self.track_theme()

    @property
    def line_count(self) -> int:
        return len(self._shown)

    @property
    def filter_text(self) -> str:
        return self._filter

    @property
    def following(self) -> bool:
        """At the bottom, so new lines scroll into view. A hidden view keeps what it was doing."""
        if self.size.height:
            self._follow = self.scroll_offset.y >= self.max_scroll_y
        return self._follow

    def on_resize(self) -> None:
        if self._follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)

    def write_entries(self, entries: Iterable[LogEntry]) -> None:
        """Append a batch: one size update and one refresh, however many lines."""
        follow = self.following
        new = list(entries)
        if not new:
            return
        self._lines.extend(new)
        needle = self._filter.lower()
        for entry in new:
            if not needle or needle in entry.text.lower() or needle in entry.source.lower():
                self._shown.append(entry)
                self._widest = max(self._widest, min(len(entry.text), MAX_SHOWN_CHARS))
        self._resize(follow)

    def clear(self) -> None:
        self._lines.clear()
        self._shown.clear()
        self._widest = 0
        self._follow = True
        self._resize(True)

    def set_filter(self, text: str) -> None:
        self._filter = text
        needle = text.lower()
        self._shown = collections.deque(
            (e for e in self._lines if not needle or needle in e.text.lower() or needle in e.source.lower()),
            maxlen=self.max_lines,
        )
        self._resize(True)

    def _resize(self, follow: bool) -> None:
        self.virtual_size = Size(self.source_width + 1 + self._widest, len(self._shown))
        if follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if index >= len(self._shown):
            return Strip.blank(width, self.rich_style)
        entry = self._shown[index]
        source = entry.source[: self.source_width].ljust(self.source_width) + " " if self.source_width else ""
        text = entry.text[:MAX_SHOWN_CHARS]
        base = self.rich_style
        segments = [
            Segment(source, base + self._role_styles.get("accent", Style())),
            Segment(text, base + self._role_styles.get(entry.role, Style())) if entry.role else Segment(text, base),
        ]
        strip = Strip(segments)
        return strip.crop_extend(self.scroll_offset.x, self.scroll_offset.x + width, base)
