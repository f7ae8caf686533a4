"""Ask for one value before an action is confirmed: a dbt --select, a DAG run's conf."""

from __future__ import annotations

from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from backends.text import visible

from .safe_text import safe


class AskModal(ModalScreen[str | None]):
    """Dismisses with the text entered (maybe empty), or None on escape. ``check`` returns "" when the text
    is acceptable, else one line saying why not; the modal stays open and shows it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ask.cancel")]
    DEFAULT_CSS = """
    AskModal { align: center middle; }
    AskModal > Vertical {
        width: 90%; max-width: 100; height: auto;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    AskModal Input { margin: 1 0 0 0; }
    AskModal .ask--error { color: $status-critical; height: auto; }
    """

    def __init__(self, title: str, prompt: str, check: Callable[[str], str] = lambda _: "", initial: str = "") -> None:
        super().__init__()
        self.ask_title = title
        self.prompt = prompt
        self.check = check
        self.initial = visible(initial)  # an Input draws its value as it is: a value from outside is made inert

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = safe(self.ask_title)
            box.border_subtitle = safe("enter continue · esc cancel")
            yield Static(safe(self.prompt))
            yield Input(value=self.initial, id="ask-value")
            yield Static(safe(""), classes="ask--error")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = False
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.check(event.value)
        if problem:
            self.query_one(".ask--error", Static).update(safe(problem))
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
