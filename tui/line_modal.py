"""One log line in full: its facts, then its text wrapped (or pretty JSON), drawn only where it shows.

A 1 MB line is one LogLine in a wrapping LogView: rendering costs the visible rows, not the line.
"""

from __future__ import annotations

from typing import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from backends.model import LogLine
from backends.text import one_line
from widgets.log_view import LogView
from widgets.safe_text import safe, safe_lines

COPY_LIMIT = 1024 * 1024  # OSC 52 through tmux and SSH: terminals drop much larger pastes


class LineModal(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss_modal", "Close", id="line.close"),
                Binding("c", "copy", "Copy", id="line.copy")]
    DEFAULT_CSS = """
    LineModal { align: center middle; }
    LineModal > Vertical {
        width: 95%; height: 90%; border: round $accent; background: $surface; padding: 0 1;
    }
    LineModal .line--facts { height: auto; color: $text-muted; }
    LineModal LogView { height: 1fr; }
    """

    def __init__(self, title: str, facts: Sequence[tuple[str, str]], body: Sequence[str], text: str) -> None:
        super().__init__()
        self.modal_title = title
        self.facts = list(facts)
        self.body = list(body)
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = safe(self.modal_title)
            box.border_subtitle = safe("↑↓ scroll · c copy · esc close")
            width = max((len(label) for label, _ in self.facts), default=0)
            yield Static(safe_lines(f"{label.ljust(width)}  {one_line(value, 300)}" for label, value in self.facts),
                         classes="line--facts")
            yield LogView(capacity=max(1, len(self.body)), source_width=0, wrap=True, id="line-text")

    def on_mount(self) -> None:
        view = self.query_one("#line-text", LogView)
        view.write_lines([LogLine("", text, 0.0) for text in self.body])
        view.set_follow(False)
        view.cursor = 0
        view.scroll_home(animate=False)
        view.focus()

    def action_dismiss_modal(self) -> None:
        self.dismiss(None)

    def action_copy(self) -> None:
        """Copy the line (OSC 52: works over SSH in terminals that allow it)."""
        text = self.text[:COPY_LIMIT]
        self.app.copy_to_clipboard(text)
        cut = " (the first 1 MB)" if len(self.text) > COPY_LIMIT else ""
        self.notify(f"Copied to the clipboard{cut}", timeout=2)
