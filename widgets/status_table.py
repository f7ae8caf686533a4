"""A live table of keyed rows drawn through the line API: only rows whose cells changed are redrawn.

DataTable keys its line cache on a global update count, so one changed cell re-renders every visible
row; here each row's strip is cached on its own content, and ``set_rows`` refreshes only changed lines.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from backends.text import visible

from .cells import Row, ThemeRoles, render_cell

GAP = 2  # spaces between columns
EDGE = 1  # space before the first and after the last column


class StatusTable(ThemeRoles, ScrollView, can_focus=True):
    DEFAULT_CSS = """
    StatusTable {
        height: 1fr; background: $surface; color: $foreground;
        scrollbar-size-vertical: 1; scrollbar-size-horizontal: 0;
        &:focus { background-tint: $foreground 5%; }
        & > .status-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .status-table--cursor {
            background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground; text-style: bold;
        }
        &:focus > .status-table--header { background-tint: $foreground 5%; }
        &:focus > .status-table--cursor {
            background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"status-table--header", "status-table--cursor"}
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "cursor_home", "First row", show=False),
        Binding("end", "cursor_end", "Last row", show=False),
    ]

    class RowSelected(Message):
        """Enter (or a click on the cursor row) on a row: ``key`` is that row's key."""

        def __init__(self, table: StatusTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> StatusTable:
            return self.table

    def __init__(self, columns: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self._column_names = tuple(visible(name) for name in columns)  # a listing's columns may come from outside
        self._widths = [cell_len(name) for name in self._column_names]
        self._rows: list[Row] = []
        self._shown: list[Row] = []
        self._filter = ""
        self._cursor = 0
        self._strips: dict[str, tuple[tuple, Strip]] = {}  # row key -> (what it was drawn from, strip)
        self._measured: dict[str, Row] = {}  # row key -> the row whose cells the column widths include
        self._header: tuple[tuple, Strip] | None = None
        self.rows_rendered = 0  # strips built (not taken from the cache): for tests and profiling

    def on_mount(self) -> None:
        self.track_theme()
        self._update_virtual_size()

    def on_roles_changed(self) -> None:
        self._strips.clear()
        self._header = None
        self.refresh()

    # -- the public interface ----------------------------------------------------------------------

    @property
    def filter_text(self) -> str:
        return self._filter

    @property
    def row_count(self) -> int:
        return len(self._shown)

    @property
    def keys(self) -> list[str]:
        """Keys of the rows shown, top to bottom."""
        return [row.key for row in self._shown]

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def selected_key(self) -> str | None:
        return self._shown[self._cursor].key if 0 <= self._cursor < len(self._shown) else None

    def set_filter(self, text: str) -> None:
        if text != self._filter:
            self._filter = text
            self._sync(force=True)

    def set_rows(self, rows: Sequence[Row]) -> None:
        self._rows = list(rows)
        self._sync()

    def move_cursor(self, *, row: int | None = None, animate: bool = False, scroll: bool = True) -> None:
        if row is None or not self._shown:
            return
        row = max(0, min(row, len(self._shown) - 1))
        if row != self._cursor:
            self.refresh_line(self._cursor + 1)
            self._cursor = row
            self.refresh_line(row + 1)
        if scroll:
            self._scroll_to_cursor()

    # -- keeping the screen in step ----------------------------------------------------------------

    def _sync(self, force: bool = False) -> None:
        wanted = [row for row in self._rows if row.matches(self._filter)] if self._filter else self._rows
        old = self._shown
        same_keys = not force and len(old) == len(wanted) and all(a.key == b.key for a, b in zip(old, wanted))
        changed = [i for i, (a, b) in enumerate(zip(old, wanted)) if a is not b and a.cells != b.cells] if same_keys else []
        if same_keys and not changed:
            self._shown = wanted
            return  # nothing to draw
        grew = False
        measured = self._measured
        for i in (changed if same_keys else range(len(wanted))):
            row = wanted[i]
            if measured.get(row.key) is row:
                continue  # widths only grow: a row measured before cannot widen a column
            measured[row.key] = row
            for c, cell in enumerate(row.cells[: len(self._widths)]):
                width = cell_len(cell.text)
                if width > self._widths[c]:
                    self._widths[c], grew = width, True
        if same_keys:
            self._shown = wanted
            if grew:
                self._update_virtual_size()
                self.refresh()
            else:
                for i in changed:
                    self.refresh_line(i + 1)
            return
        selected = self.selected_key
        self._shown = wanted
        keys = [row.key for row in wanted]
        self._cursor = keys.index(selected) if selected in keys else max(0, min(self._cursor, len(wanted) - 1))
        if len(self._strips) > 2 * len(wanted) + 16 or len(self._measured) > 2 * len(wanted) + 16:
            alive = set(keys)  # drop what is kept for rows long gone
            self._strips = {k: v for k, v in self._strips.items() if k in alive}
            self._measured = {k: v for k, v in self._measured.items() if k in alive}
        self._update_virtual_size()
        self.refresh()
        self._scroll_to_cursor()

    def _update_virtual_size(self) -> None:
        width = 2 * EDGE + sum(self._widths) + GAP * max(0, len(self._widths) - 1)
        self.virtual_size = Size(width, len(self._shown) + 1)

    def _scroll_to_cursor(self) -> None:
        if not self.size.height:
            return
        visible = max(1, self.scrollable_content_region.height - 1)  # the header takes a line
        top = self.scroll_offset.y
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False)

    def on_focus(self) -> None:
        self.refresh()  # the cursor and the tint follow focus

    on_blur = on_focus

    # -- keys and mouse ----------------------------------------------------------------------------

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - max(1, self.scrollable_content_region.height - 1))

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + max(1, self.scrollable_content_region.height - 1))

    def action_cursor_home(self) -> None:
        self.move_cursor(row=0)

    def action_cursor_end(self) -> None:
        self.move_cursor(row=len(self._shown) - 1)

    def action_select_cursor(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        row = self.scroll_offset.y + offset.y - 1
        if row < len(self._shown):
            if row == self._cursor:
                self.action_select_cursor()
            self.move_cursor(row=row)

    # -- drawing -----------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x = self.scroll_offset.x
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("status-table--header")
            signature: tuple = (tuple(self._widths), width, scroll_x, style)
            if self._header is None or self._header[0] != signature:
                cells = [(name, Style()) for name in self._column_names]
                self._header = (signature, self._draw(cells, style, width, scroll_x))
            return self._header[1]
        index = self.scroll_offset.y + y - 1
        if index >= len(self._shown):
            return Strip.blank(width, base)
        row = self._shown[index]
        style = base + self.get_component_rich_style("status-table--cursor") if index == self._cursor else base
        signature = (row.cells, tuple(self._widths), width, scroll_x, style)
        cached = self._strips.get(row.key)
        if cached is None or cached[0] != signature:
            roles = self._role_styles
            cells = [(text.plain, text.style) for text in (render_cell(cell, roles) for cell in row.cells)]
            cached = self._strips[row.key] = (signature, self._draw(cells, style, width, scroll_x))
        return cached[1]

    def _draw(self, cells: list[tuple[str, Style | str]], style: Style, width: int, scroll_x: int) -> Strip:
        """One line: each cell padded to its column, never parsed as markup, cropped to the viewport."""
        self.rows_rendered += 1
        segments = [Segment(" " * EDGE, style)]
        last = len(self._widths) - 1
        for c, (text, cell_style) in enumerate(cells[: last + 1]):
            segments.append(Segment(text, style + cell_style if isinstance(cell_style, Style) else style))
            pad = self._widths[c] - cell_len(text) + (EDGE if c == last else GAP)
            segments.append(Segment(" " * pad, style))
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, style)
