"""A live table updated by diffing keyed rows: only cells that changed are redrawn."""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from .cells import Row, ThemeRoles, render_cell


class StatusTable(ThemeRoles, DataTable):
    DEFAULT_CSS = """
    StatusTable { height: 1fr; scrollbar-size-vertical: 1; scrollbar-size-horizontal: 0; }
    StatusTable > .datatable--cursor { text-style: bold; }
    """

    def __init__(self, columns: Sequence[str], **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, show_cursor=True, **kwargs)
        self._column_names = tuple(columns)
        self._rows: list[Row] = []
        self._shown: list[Row] = []
        self._filter = ""

    def on_mount(self) -> None:
        for name in self._column_names:
            self.add_column(name, key=name)
        self.track_theme()

    def on_roles_changed(self) -> None:
        self._shown = []
        self._sync()

    @property
    def filter_text(self) -> str:
        return self._filter

    @property
    def selected_key(self) -> str | None:
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= len(self._shown):
            return None
        return self._shown[self.cursor_row].key

    def set_filter(self, text: str) -> None:
        self._filter = text
        self._sync()

    def set_rows(self, rows: Sequence[Row]) -> None:
        self._rows = list(rows)
        self._sync()

    def _sync(self) -> None:
        wanted = [row for row in self._rows if row.matches(self._filter)]
        if [r.key for r in wanted] != [r.key for r in self._shown]:
            self._rebuild(wanted)
            return
        for old, new in zip(self._shown, wanted):
            if old.cells != new.cells:
                for name, before, after in zip(self._column_names, old.cells, new.cells):
                    if before != after:
                        # widening a column re-lays out the screen: only when the new text does not fit
                        wider = cell_len(after.text) > self.columns[ColumnKey(name)].content_width
                        self.update_cell(new.key, name, render_cell(after, self._role_styles), update_width=wider)
        self._shown = wanted

    def _rebuild(self, wanted: list[Row]) -> None:
        """Rows appeared, went or moved: rebuild, keeping the cursor on the same key when it survives."""
        selected = self.selected_key
        with self.app.batch_update():
            self.clear()
            for row in wanted:
                self.add_row(*(render_cell(c, self._role_styles) for c in row.cells), key=row.key)
        self._shown = wanted
        keys = [r.key for r in wanted]
        if selected in keys:
            self.move_cursor(row=keys.index(selected), animate=False)

