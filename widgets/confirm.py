"""Confirmation before anything that changes a system: Cancel is focused, a held key cannot confirm, and a
destructive action is confirmed only by typing its target's name."""

from __future__ import annotations

import time
from typing import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from backends.text import visible

from .safe_text import safe

ARM_DELAY = 0.6  # seconds before Run can be pressed: longer than a key's auto-repeat delay


class ConfirmModal(ModalScreen[bool]):
    """Dismisses with True only when Run is pressed after the arm delay (and the typed name matches).

    The name to type is the target's name as shown: made inert like every other text here, so a name holding
    control characters can still be typed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]
    DEFAULT_CSS = """
    ConfirmModal { align: center middle; }
    ConfirmModal > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: thick $status-warn; background: $surface; padding: 0 1;
    }
    ConfirmModal.-destructive > Vertical { border: thick $status-critical; }
    ConfirmModal .confirm--command { background: $boost; padding: 0 1; margin: 1 0; height: auto; }
    ConfirmModal .confirm--preview { max-height: 12; height: auto; border: round $pane-border; }
    ConfirmModal Input { margin: 1 0 0 0; }
    ConfirmModal Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ConfirmModal Button { margin-left: 2; }
    """

    def __init__(self, title: str, command: str, *, preview: Sequence[str] | None = None, type_to_confirm: str = "",
                 clock=time.monotonic) -> None:
        super().__init__(classes="-destructive" if type_to_confirm else "")
        self.confirm_title = title
        self.command = command
        self.preview = None if preview is None else list(preview)
        self.type_to_confirm = visible(type_to_confirm)
        self.clock = clock
        self.opened_at = clock()

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = safe(self.confirm_title)
            box.border_subtitle = safe("esc cancel")
            yield Static(safe("This will run:"))
            yield Static(safe(self.command), classes="confirm--command")
            if self.type_to_confirm:
                if self.preview is None:
                    yield Static(safe("This action has no dry run: read the command above before confirming."))
                elif self.preview:
                    yield Static(safe(f"It will affect ({len(self.preview)}):"))
                    with VerticalScroll(classes="confirm--preview"):
                        for line in self.preview:
                            yield Static(safe(line))
                else:
                    yield Static(safe("The dry run lists nothing it would affect."))
                yield Static(safe(f"Type {self.type_to_confirm} to confirm:"))
                yield Input(placeholder=self.type_to_confirm, id="confirm-name")
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button("Run", id="run", variant="error", disabled=bool(self.type_to_confirm))

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()
        name_input = self.query(Input)
        if name_input:
            name_input.first().cursor_blink = False

    @property
    def armed(self) -> bool:
        return self.clock() - self.opened_at >= ARM_DELAY

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#run", Button).disabled = event.value != self.type_to_confirm

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value == self.type_to_confirm and self.armed:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "run":
            if not self.armed:
                self.notify("Too quick: press Run again to confirm", severity="warning", timeout=2)
                return
            if self.type_to_confirm and self.query_one("#confirm-name", Input).value != self.type_to_confirm:
                return
            self.dismiss(True)
        else:
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
