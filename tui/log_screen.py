"""One log (or a few) full screen: a service's logs opened with `l`, a line's source, or `lakedeck tail`.

When the view shows one file, it can page in older lines from disk (the file, then its rotated
predecessors) and filter the whole file, however big: ``pager`` does the reading, in threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.screen import Screen

from backends.model import LogLine
from widgets.log_view import LogView
from widgets.pane import Pane

from .bindings import bindings, key_bar

if TYPE_CHECKING:
    from backends.log_pager import FilePager

SHOWN_KEYS = ("log.follow", "filter", "log.find", "log.wrap", "log.jump", "log.save", "log.time", "log.top",
              "help", "back", "quit")  # by importance: a narrow terminal drops them from the end, quit stays
KEY_WORDS = {"back": "Back"}


class LogScreen(Screen):
    BINDINGS = [binding for binding in bindings(screen=True) if binding.id == "back"]

    def __init__(self, title: str, sources: set[str], *, attached: tuple[str, ...] = (),
                 pager: "FilePager | None" = None, path: str = "", empty: str = "", can_go_back: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.sources = sources  # the engine sources whose lines this screen shows
        self.attached = attached  # sources started for this screen, stopped when it closes
        self.pager = pager
        self.can_go_back = can_go_back
        self.empty = empty or "Waiting for the first lines…"
        self.path = path  # when set, only lines of this file (a glob source follows several)
        self.history_done = False  # the pager has nothing older
        self.scanning = False
        self.scan_note = ""
        self.tail_lines = 2000  # lines read from the file's end when it opens or `G` reloads it
        self.read_from_disk: dict[int, str] = {}  # offset -> text of the lines the pager read from the end
        self.last_offset = -1

    def accept(self, lines: list[LogLine]) -> list[LogLine]:
        """The live lines this screen shows: its sources', its file's, none it already read from disk,
        and none while it shows a whole-file filter's results."""
        if self.scanning:
            return []
        kept = [line for line in lines if line.source in self.sources and (not self.path or line.path == self.path)]
        if self.read_from_disk:
            if any(line.offset > self.last_offset for line in kept):
                self.read_from_disk = {}  # the live source has passed what was read: no more repeats
            kept = [line for line in kept if self.read_from_disk.get(line.offset, None) != line.text]
        return kept

    def remember_read(self, lines: list[LogLine]) -> None:
        """Lines the pager read from the file's end: the live source may deliver some of them again."""
        self.read_from_disk = {line.offset: line.text for line in lines if line.offset >= 0}
        self.last_offset = max(self.read_from_disk, default=-1)

    def compose(self) -> ComposeResult:
        with Pane(self.title_text, None, self.empty, id="pane-log") as pane:
            yield pane.empty_notice
            yield LogView(id="screen-log-view", classes="pane--body")
        yield key_bar(self.app, [k for k in SHOWN_KEYS if k != "back" or self.can_go_back], KEY_WORDS)

    def on_mount(self) -> None:
        self.view.focus()

    @property
    def view(self) -> LogView:
        return self.query_one("#screen-log-view", LogView)

    @property
    def pane(self) -> Pane:
        return self.query_one("#pane-log", Pane)

    def show_status(self, extra: str = "") -> None:
        view = self.view
        self.pane.show_empty(view.line_count == 0 and not view.filter_text)
        parts = [p for p in (self.scan_note, view.status(), extra) if p]
        self.pane.set_status(" · ".join(parts))
