"""Where a running action's output streams, below the panes; it stays until dismissed or replaced."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Vertical

from backends.model import LogLine

from .log_view import LogView
from .safe_text import safe


def _line(text: str) -> LogLine:
    return LogLine("", text, time.time())


class ActionPanel(Vertical):
    DEFAULT_CSS = """
    ActionPanel { height: 10; border: round $accent; display: none; }
    ActionPanel.-open { display: block; }
    ActionPanel.-failed { border: round $status-critical; }
    ActionPanel.-done { border: round $status-ok; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.output = LogView(capacity=2000, source_width=0)

    def compose(self) -> ComposeResult:
        yield self.output

    def start(self, title: str, command: str) -> None:
        self.output.clear()
        self.set_class(False, "-failed", "-done")
        self.add_class("-open")
        self.border_title = safe(f"{title} · running")
        self.border_subtitle = safe("esc hides this panel")
        self.output.write_lines([_line(f"$ {command}")])

    def write(self, lines: list[str]) -> None:
        self.output.write_lines(_line(line) for line in lines)

    def finish(self, title: str, ok: bool, summary: str) -> None:
        self.set_class(ok, "-done")
        self.set_class(not ok, "-failed")
        self.border_title = safe(f"{title} · {'done' if ok else 'FAILED'}")
        self.output.write_lines([_line(summary)])

    def hide(self) -> None:
        self.remove_class("-open")
