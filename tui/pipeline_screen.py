"""A pipeline opened full screen: a DAG's runs, a run's tasks, a dbt project's nodes, a job's lineage.

``enter`` goes one level down, ``l`` shows the selected task's log, ``a`` its actions, ``esc`` one level up.
The listing is read again every poll interval of its source while the screen is on top.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen

from backends.model import Listing, PipelineItem
from widgets.pane import Pane
from widgets.status_table import StatusTable

from . import rows
from .bindings import bindings, key_bar

SHOWN_KEYS = ("details", "logs", "actions", "filter", "refresh", "help", "back", "quit")
KEY_WORDS = {"details": "Open", "back": "Back"}


class PipelineScreen(Screen):
    BINDINGS = [binding for binding in bindings(screen=True) if binding.id == "back"]

    def __init__(self, source: str, ref: tuple[str, ...], title: str, listing: Listing, read_at: float) -> None:
        super().__init__()
        self.source = source
        self.ref = ref
        self.title_text = title
        self.listing = listing
        self.read_at = read_at
        self.items: dict[str, PipelineItem] = {}
        self.error = ""  # why the last reload failed (the rows shown are then older)

    def compose(self) -> ComposeResult:
        with Pane(self.title_text, None, "Nothing here.", id="pane-pipeline") as pane:
            yield pane.empty_notice
            yield StatusTable(self.listing.columns, id="pipeline-table", classes="pane--body")
        yield key_bar(self.app, SHOWN_KEYS, KEY_WORDS)

    def on_mount(self) -> None:
        self.show(self.listing, self.read_at)
        self.table.focus()

    @property
    def table(self) -> StatusTable:
        return self.query_one("#pipeline-table", StatusTable)

    @property
    def pane(self) -> Pane:
        return self.query_one("#pane-pipeline", Pane)

    @property
    def selected(self) -> PipelineItem | None:
        key = self.table.selected_key
        return self.items.get(key) if key is not None else None

    def show(self, listing: Listing, now: float) -> None:
        self.listing, self.read_at, self.error = listing, now, ""
        self.items = {rows.item_key(item): item for item in listing.items}
        self.table.set_rows([rows.item_row(item, now) for item in listing.items])
        self.pane.show_empty(not listing.items)
        self.show_status(now)

    def show_error(self, reason: str, now: float) -> None:
        """The reload failed: keep the rows, say why, and look stale."""
        self.error = reason
        self.show_status(now)

    def show_status(self, now: float) -> None:
        parts = [self.listing.note]
        if self.table.filter_text:
            parts.insert(0, f"filter: {self.table.filter_text}")
        if self.error:
            parts.append(f"STALE: {self.error}")
        else:
            parts.append(f"read at {rows.clock_short(self.read_at, now)}")
        self.pane.set_status(" · ".join(p for p in parts if p), stale=bool(self.error))

    def on_status_table_row_selected(self, event: StatusTable.RowSelected) -> None:
        event.stop()
        self.app.pipelines.open_selected(self)  # type: ignore[attr-defined]
