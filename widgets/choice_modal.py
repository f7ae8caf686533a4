"""Pick one of a few labelled choices (the action menu): arrows and enter, or escape."""

from __future__ import annotations

from typing import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from .safe_text import safe


class ChoiceModal(ModalScreen[str | None]):
    """Dismisses with the chosen id, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="choice.cancel")]
    DEFAULT_CSS = """
    ChoiceModal { align: center middle; }
    ChoiceModal > OptionList {
        width: 90%; max-width: 100; height: auto; max-height: 80%;
        border: round $accent; background: $surface;
    }
    """

    def __init__(self, title: str, choices: Sequence[tuple[str, str]], empty: str = "Nothing to choose") -> None:
        super().__init__()
        self.choice_title = title
        self.choices = list(choices)
        self.empty = empty

    def compose(self) -> ComposeResult:
        options = [Option(safe(label), id=choice_id) for choice_id, label in self.choices]
        menu = OptionList(*options) if options else OptionList(Option(safe(self.empty), disabled=True))
        menu.border_title = safe(self.choice_title)
        menu.border_subtitle = safe("enter choose · esc cancel")
        yield menu

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
