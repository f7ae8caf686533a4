"""A bounded, fast log view: lines merged by time, drawn through the line API, only the viewport rendered.

Neither ``Log(max_lines=N)`` (stops redrawing once full, Textual 8.2.8) nor ``RichLog(max_lines=N)``
(copies its buffer on every write once full) can follow a busy log and stay bounded, hence this.
Keys: follow, wrap, timestamps, find with next/previous, top/bottom, jump to a time, save; the owner
answers the view's requests for typed input (``Ask``) and for a line's details (``LineChosen``).
"""

from __future__ import annotations

import bisect
import time
from typing import Iterable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from backends.keymap import KEYS
from backends.log_buffer import LogBuffer
from backends.log_filter import LineFilter
from backends.log_reading import CUT_MARK
from backends.model import LogLine
from backends.text import human_bytes, visible

from .cells import ThemeRoles

MAX_SHOWN_CHARS = 2000  # of one unwrapped line; a longer line is cut on screen, whole on demand
TIME_WIDTH = 13  # "HH:MM:SS.mmm "
LEVEL_ROLE = {"critical": "critical", "error": "critical", "warn": "warn", "debug": "muted"}


def _shown_length(text: str) -> int:
    """The characters ``text`` takes on screen: tabs and the symbols that stand for control and format characters
    are wider than what they replace, and a wrapped line needs rows for all of them."""
    return len(visible(text))


class LogView(ThemeRoles, ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LogView { height: 1fr; scrollbar-size-vertical: 1; scrollbar-size-horizontal: 0; }
    """
    BINDINGS = [
        *(Binding(spec.keys, spec.action, spec.description, show=spec.show, id=spec.id)
          for spec in KEYS if spec.log_view),
        Binding("up", "cursor(-1)", show=False), Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False), Binding("pagedown", "page(1)", show=False),
        Binding("home", "top", show=False), Binding("end", "bottom", show=False),
        Binding("enter", "choose", show=False),
    ]

    class Changed(Message):
        """Following, wrapping, the filter or the find changed: the owner updates what it says about the view."""

        def __init__(self, view: "LogView") -> None:
            super().__init__()
            self.view = view

    class Ask(Message):
        """The view needs typed input: ``what`` is "find", "jump" or "save"."""

        def __init__(self, view: "LogView", what: str) -> None:
            super().__init__()
            self.view = view
            self.what = what

    class LineChosen(Message):
        def __init__(self, view: "LogView", line: LogLine) -> None:
            super().__init__()
            self.view = view
            self.line = line

    class NeedEarlier(Message):
        """The cursor reached the oldest line held: an owner with the file on disk can page in earlier lines."""

        def __init__(self, view: "LogView") -> None:
            super().__init__()
            self.view = view

    class NeedLatest(Message):
        """Older lines paged in pushed the newest out: to follow again the owner reloads the end."""

        def __init__(self, view: "LogView") -> None:
            super().__init__()
            self.view = view

    def __init__(self, capacity: int = 20_000, source_width: int | None = None, wrap: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.buffer = LogBuffer(capacity)
        self.fixed_source_width = source_width  # None: a source column only when lines come from several sources
        self._sources: set[str] = set()
        self.follow = True
        self.wrap = wrap
        self.show_time = False
        self.finder: LineFilter | None = None
        self.cursor = -1  # index into the shown lines; -1: none yet (follows the last line)
        self.unseen = 0  # lines that arrived below while not following
        self._widest = 0
        self._row_starts: list[int] | None = None  # wrap mode: the first screen row of each shown line
        self._row_width = 0
        self._visible_cache: dict[int, tuple[LogLine, str]] = {}

    def on_mount(self) -> None:
        self.track_theme()

    # -- what the view holds --------------------------------------------------------------------

    @property
    def lines(self) -> list[LogLine]:
        """The shown lines (those that pass the filter), oldest first."""
        return self.buffer.shown

    @property
    def line_count(self) -> int:
        return len(self.buffer.shown)

    @property
    def filter_text(self) -> str:
        matcher = self.buffer.filter
        return matcher.text if matcher else ""

    @property
    def selected_line(self) -> LogLine | None:
        shown = self.buffer.shown
        return shown[self._cursor_index()] if shown else None

    @property
    def following(self) -> bool:
        return self.follow

    @property
    def source_width(self) -> int:
        if self.fixed_source_width is not None:
            return self.fixed_source_width
        if len(self._sources) < 2:
            return 0
        return min(16, max(len(name) for name in self._sources))

    def _prefix_width(self) -> int:
        width = self.source_width
        return (TIME_WIDTH if self.show_time else 0) + (width + 1 if width else 0)

    def _cursor_index(self) -> int:
        count = len(self.buffer.shown)
        if self.follow or self.cursor < 0 or self.cursor >= count:
            return max(0, count - 1)
        return self.cursor

    # -- writing --------------------------------------------------------------------------------

    def write_lines(self, lines: Iterable[LogLine]) -> None:
        """Append a batch, merged by time: one size update and one refresh, however many lines."""
        batch = list(lines)
        if not batch or self.buffer.tail_dropped:  # paged back through history: the owner reloads the end
            return
        for line in batch:
            self._sources.add(line.source)
        width_before = self._prefix_width()
        added = self.buffer.add(batch)
        if self._prefix_width() != width_before:
            self._row_starts = None
        shown = self.buffer.shown
        for line in shown[len(shown) - added.appended:] if added.appended else ():
            self._widest = max(self._widest, min(_shown_length(line.text), MAX_SHOWN_CHARS))
        if added.inserted or added.trimmed:
            self._row_starts = None
        elif self._row_starts is not None and added.appended:
            self._extend_rows(len(shown) - added.appended)
        if not self.follow:
            self.unseen += added.appended
            if self.cursor >= 0:
                if added.inserted and 0 <= added.first_inserted <= self.cursor:
                    self.cursor += added.inserted
                self.cursor = max(0, self.cursor - added.trimmed)
            if added.trimmed and not self.wrap:
                self.scroll_to(y=max(0, self.scroll_offset.y - added.trimmed), animate=False, force=True)
        self._resize()
        if not self.follow and added.appended:
            self.post_message(self.Changed(self))

    def prepend_lines(self, lines: Sequence[LogLine]) -> None:
        """Earlier lines paged in from disk, added above; the cursor stays on the same line."""
        if not lines:
            return
        self.follow = False
        cursor = self._cursor_index()
        moved = self.buffer.prepend(lines)
        self._row_starts = None
        self.cursor = min(cursor + moved, len(self.buffer.shown) - 1)
        for line in lines:
            self._widest = max(self._widest, min(_shown_length(line.text), MAX_SHOWN_CHARS))
        self._resize()
        self._show_cursor()

    def clear(self) -> None:
        self.buffer.clear()
        self._sources.clear()
        self._widest = 0
        self._row_starts = None
        self.follow, self.cursor, self.unseen = True, -1, 0
        self._resize()

    def set_filter(self, text: str) -> LineFilter | None:
        """Show only lines matching ``text`` (regex, smart case, leading ``!`` inverts)."""
        selected = None if self.follow else self.selected_line
        matcher = self.buffer.set_filter(text)
        self._row_starts = None
        if selected is not None:  # stay at the same moment: the selected line, or the nearest shown after it
            self.cursor = min(self.buffer.index_at(selected.ts), max(0, len(self.buffer.shown) - 1))
        else:
            self.cursor = -1
        self._resize()
        self._show_cursor()
        self.post_message(self.Changed(self))
        return matcher

    def set_find(self, text: str) -> LineFilter | None:
        """Highlight ``text`` (regex, smart case) and go to its nearest match at or above the cursor."""
        finder = LineFilter(text, invertible=False) if text else None
        if finder is not None and finder.error:  # refused (RE2 cannot run it, or not a pattern): say why, keep the old one
            self.notify(finder.error, severity="error", timeout=5)
            return finder
        self.finder = finder
        self.refresh()
        if self.finder is not None:
            self.find_next(forward=False, include_current=True)
        self.post_message(self.Changed(self))
        return self.finder

    def find_next(self, forward: bool = True, include_current: bool = False) -> bool:
        if self.finder is None:
            return False
        start = self._cursor_index()
        if include_current:
            start += 1 if not forward else -1
        found = self.buffer.find(self.finder, start, forward)
        if found is None:
            self.notify(f"no line matches {self.finder.text!r}", severity="warning", timeout=3)
            return False
        self._move_to(found)
        return True

    def jump_to_time(self, ts: float) -> None:
        """The first line written at or after ``ts`` (the last line when all are older)."""
        shown = self.buffer.shown
        if shown:
            self._move_to(min(self.buffer.index_at(ts), len(shown) - 1))

    # -- keys ----------------------------------------------------------------------------------

    def action_toggle_follow(self) -> None:
        self.set_follow(not self.follow)

    def set_follow(self, follow: bool) -> None:
        if follow:
            self.follow, self.cursor, self.unseen = True, -1, 0
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
        else:
            self.cursor = self._cursor_index()
            self.follow = False
        self.refresh()
        self.post_message(self.Changed(self))

    def action_toggle_wrap(self) -> None:
        cursor = self._cursor_index()
        self.wrap = not self.wrap
        self._row_starts = None
        self._resize()
        self._scroll_to_line(cursor)
        self.post_message(self.Changed(self))

    def action_toggle_time(self) -> None:
        self.show_time = not self.show_time
        self._row_starts = None
        self._resize()
        self.post_message(self.Changed(self))

    def action_find(self) -> None:
        self.post_message(self.Ask(self, "find"))

    def action_find_next(self) -> None:
        if self.finder is None:
            self.post_message(self.Ask(self, "find"))
        else:
            self.find_next(forward=True)

    def action_find_previous(self) -> None:
        if self.finder is None:
            self.post_message(self.Ask(self, "find"))
        else:
            self.find_next(forward=False)

    def action_jump(self) -> None:
        self.post_message(self.Ask(self, "jump"))

    def action_save(self) -> None:
        self.post_message(self.Ask(self, "save"))

    def action_top(self) -> None:
        if self.buffer.shown:
            self._move_to(0)
            self.post_message(self.NeedEarlier(self))

    def action_bottom(self) -> None:
        if self.buffer.tail_dropped:
            self.post_message(self.NeedLatest(self))
        else:
            self.set_follow(True)

    def action_cursor(self, step: int) -> None:
        shown = self.buffer.shown
        if not shown:
            return
        target = self._cursor_index() + step
        if target >= len(shown):
            self.action_bottom()
            return
        self._move_to(max(0, target))
        if target < 0 or self.cursor == 0:
            self.post_message(self.NeedEarlier(self))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.scrollable_content_region.height - 1))

    def action_choose(self) -> None:
        line = self.selected_line
        if line is not None:
            self.post_message(self.LineChosen(self, line))

    def _move_to(self, index: int) -> None:
        was_following = self.follow
        self.follow = index >= len(self.buffer.shown) - 1 and was_following
        self.cursor = index
        self._show_cursor()
        self.refresh()
        if was_following != self.follow:
            self.post_message(self.Changed(self))

    def _show_cursor(self) -> None:
        if self.follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
            return
        first, count = self._rows_of_line(self._cursor_index())
        height = self.scrollable_content_region.height or 1
        top = self.scroll_offset.y
        if first < top:
            self.scroll_to(y=first, animate=False, force=True)
        elif first + count > top + height:
            self.scroll_to(y=max(0, first + count - height), animate=False, force=True)

    def _scroll_to_line(self, index: int) -> None:
        if self.follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
        else:
            self.scroll_to(y=self._rows_of_line(index)[0], animate=False, force=True)

    def on_mouse_scroll_up(self) -> None:
        if self.follow and self.max_scroll_y > 0:
            self.set_follow(False)

    # -- layout --------------------------------------------------------------------------------

    def _text_width(self) -> int:
        return max(1, self.scrollable_content_region.width - self._prefix_width())

    def _extend_rows(self, start: int) -> None:
        starts = self._row_starts
        assert starts is not None
        shown = self.buffer.shown
        width = self._row_width
        total = starts.pop()  # the end sentinel
        for line in shown[start:]:
            starts.append(total)
            total += max(1, -(-(_shown_length(line.text) + self._notice_length(line)) // width))
        starts.append(total)

    def _wrap_rows(self) -> list[int]:
        width = self._text_width()
        if self._row_starts is None or self._row_width != width:
            self._row_width = width
            self._row_starts = [0]
            self._extend_rows(0)
        return self._row_starts

    def _rows_of_line(self, index: int) -> tuple[int, int]:
        if not self.wrap:
            return index, 1
        starts = self._wrap_rows()
        if index >= len(starts) - 1:
            return starts[-1], 1
        return starts[index], starts[index + 1] - starts[index]

    def _resize(self) -> None:
        shown = self.buffer.shown
        if self.wrap:
            height = self._wrap_rows()[-1]
            width = self.scrollable_content_region.width
        else:
            height = len(shown)
            width = self._prefix_width() + self._widest + 1
        self.virtual_size = Size(width, height)
        if self.follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
        self.refresh()

    def on_resize(self) -> None:
        self._row_starts = None
        self._resize()
        self._scroll_to_line(self._cursor_index())

    # -- drawing -------------------------------------------------------------------------------

    @staticmethod
    def _notice(line: LogLine) -> str:
        return f" …+{human_bytes(line.cut)} (enter shows it whole)" if line.cut else ""

    def _notice_length(self, line: LogLine) -> int:
        return len(self._notice(line)) + (len(CUT_MARK) if line.cut else 0)

    def render_line(self, y: int) -> Strip:
        row = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        shown = self.buffer.shown
        if self.wrap:
            starts = self._wrap_rows()
            index = bisect.bisect_right(starts, row) - 1
            part = row - starts[index] if 0 <= index < len(shown) else 0
        else:
            index, part = row, 0
        if not 0 <= index < len(shown):
            return Strip.blank(width, base)
        line = shown[index]
        strip = Strip(self._segments(line, part, not self.follow and index == self._cursor_index() and self.has_focus))
        if self.wrap:
            return strip.crop_extend(0, width, base)
        return strip.crop_extend(self.scroll_offset.x, self.scroll_offset.x + width, base)

    def _segments(self, line: LogLine, part: int, selected: bool) -> list[Segment]:
        roles = self._role_styles
        base = self.rich_style
        if selected:
            base = base + Style(reverse=True)
        segments: list[Segment] = []
        prefix = self._prefix_width()
        if part:
            segments.append(Segment(" " * prefix, base))
        else:
            if self.show_time:
                stamp = time.strftime("%H:%M:%S", time.localtime(line.ts)) + f".{int(line.ts * 1000) % 1000:03d} "
                segments.append(Segment(stamp, base + roles.get("muted", Style())))
            width = self.source_width
            if width:
                segments.append(Segment(visible(line.source)[:width].ljust(width) + " ", base + roles.get("accent", Style())))
        text = self._visible(line)
        if self.wrap:
            span = self._text_width()
            text = (text + self._notice(line))[part * span:(part + 1) * span]
            notice = ""
        else:
            notice = self._notice(line) if len(text) <= MAX_SHOWN_CHARS else f" …+{len(text) - MAX_SHOWN_CHARS} more characters"
            text = text[:MAX_SHOWN_CHARS]
        style = base + roles.get(LEVEL_ROLE.get(line.level, ""), Style())
        if line.cut and not part:
            segments.append(Segment(CUT_MARK, base + roles.get("muted", Style())))
        segments += self._highlighted(text, style)
        if notice:
            segments.append(Segment(notice, base + roles.get("muted", Style())))
        return segments

    def _visible(self, line: LogLine) -> str:
        """The line with control characters as symbols, kept for the rows of a wrapped line drawn next."""
        cache = self._visible_cache
        found = cache.get(id(line))
        if found is None or found[0] is not line:
            if len(cache) > 256:
                cache.clear()
            found = cache[id(line)] = (line, visible(line.text))
        return found[1]

    def _highlighted(self, text: str, style: Style) -> list[Segment]:
        spans = self.finder.spans(text) if self.finder is not None else []
        if not spans:
            return [Segment(text, style)]
        mark = style + Style(reverse=True, bold=True)
        segments, position = [], 0
        for start, end in spans:
            if start > position:
                segments.append(Segment(text[position:start], style))
            segments.append(Segment(text[start:end], mark))
            position = end
        if position < len(text):
            segments.append(Segment(text[position:], style))
        return segments

    def status(self) -> str:
        """A few words for the pane's border: following or paused, wrap, filter, find."""
        parts = []
        if self.follow:
            parts.append("following")
        else:
            parts.append(f"paused · {self.unseen:,} new below (f follows)" if self.unseen else "paused (f follows)")
        if self.wrap:
            parts.append("wrap")
        matcher = self.buffer.filter
        if matcher is not None:
            parts.append(f"filter {matcher.text}: {len(self.buffer.shown):,} of {len(self.buffer.lines):,}")
            if matcher.error:
                parts.append(matcher.error)
        if self.finder is not None:
            parts.append(f"find {self.finder.text} (n/N)")
        return " · ".join(parts)
