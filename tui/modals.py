"""Details of a row and the list of keys: modal screens that close with escape."""

from __future__ import annotations

from typing import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from widgets.safe_text import safe


class TextModal(ModalScreen[None]):
    """A titled list of (label, value) lines. Titles, labels and values are untrusted: made inert, never markup."""

    BINDINGS = [Binding("escape,q,enter", "dismiss_modal", "Close", id="modal.close"),
                Binding("c", "copy", "Copy", id="modal.copy")]
    DEFAULT_CSS = """
    TextModal { align: center middle; }
    TextModal > VerticalScroll {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    TextModal .modal--line { width: 1fr; height: auto; }
    TextModal .modal--heading { text-style: bold; margin-top: 1; }
    """

    def __init__(self, title: str, lines: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.modal_title = title
        self.lines = list(lines)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = safe(self.modal_title)
            scroll.border_subtitle = safe("c copy · esc close")
            width = max((len(label) for label, _ in self.lines), default=0)
            for label, value in self.lines:
                if not value and label:
                    yield Static(safe(label), classes="modal--line modal--heading")
                else:
                    yield Static(safe(f"{label.ljust(width)}  {value}"), classes="modal--line")

    def action_dismiss_modal(self) -> None:
        self.dismiss(None)

    def action_copy(self) -> None:
        """Copy the text (OSC 52: works over SSH in terminals that allow it)."""
        text = "\n".join(f"{label}  {value}".rstrip() for label, value in self.lines)
        self.app.copy_to_clipboard(text)
        self.notify("Copied to the clipboard", timeout=2)
