"""A titled pane of the dashboard: says when its data was refreshed, looks stale when it is, and
explains itself when empty."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.containers import Vertical
from textual.widgets import Static

from .safe_text import safe

if TYPE_CHECKING:
    from textual.widgets import Input


FILTER_HINT = "filter: type to hide what does not match · enter keep · esc clear"


def prompt_purpose(widget: object) -> str:
    """What a pane's input is for ("filter", "find"...), or "" when ``widget`` is not one."""
    return getattr(widget, "purpose", "") if getattr(widget, "has_class", None) and widget.has_class("pane--filter") else ""


class Pane(Vertical):
    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    Pane {
        border: round $pane-border;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        height: 1fr;
        padding: 0;
    }
    Pane:focus-within { border: round $accent; }
    Pane.-stale { border: round $status-stale; border-subtitle-color: $status-warn; }
    Pane > .pane--empty { color: $text-muted; padding: 0 1; height: auto; display: none; }
    Pane.-empty > .pane--empty { display: block; }
    Pane.-empty > .pane--body { display: none; }
    Pane > Input.pane--filter, Pane > Input.pane--filter:focus {
        dock: bottom; display: none; height: 1; border: none; padding: 0 1; background: $boost;
    }
    Pane.-filtering > Input.pane--filter { display: block; }
    """

    def __init__(self, title: str, number: int | None, empty_message: str, *, id: str, classes: str = "") -> None:
        super().__init__(id=id, classes=f"-empty {classes}".strip())  # empty until data comes: set now
        self.number = number
        self.title = title
        self.border_title = safe(f"{number} {title}" if number is not None else title)  # a file's, a job's name
        self.empty_message = empty_message
        self.empty_notice = Static(safe(empty_message), classes="pane--empty")  # the owner yields it first
        self.filter_input: Input | None = None  # made on first use: every widget costs start-up time

    async def open_filter(self, text: str) -> None:
        await self.open_prompt("filter", FILTER_HINT, text)

    async def open_prompt(self, purpose: str, hint: str, text: str = "") -> None:
        """A one-line input at the bottom of the pane (filter, find, jump to a time, save).

        Awaited, so that keys typed right after the key that opened it wait for the input and land in it.
        """
        if self.filter_input is None:
            from textual.widgets import Input  # loaded on first use: start-up is measured

            self.filter_input = Input(classes="pane--filter")
            self.filter_input.cursor_blink = False  # a blinking cursor costs CPU and bytes in a live view
            await self.mount(self.filter_input)
        self.filter_input.purpose = purpose  # type: ignore[attr-defined]
        self.filter_input.placeholder = hint
        self.filter_input.value = text
        self.add_class("-filtering")
        self.filter_input.focus()

    def filter_targets(self) -> list:
        """The pane's bodies that can be filtered: its tables and log views."""
        return [w for w in self.query(".pane--body") if hasattr(w, "set_filter")]

    def filter_text(self) -> str:
        targets = self.filter_targets()
        return targets[0].filter_text if targets else ""

    def close_filter(self) -> None:
        self.remove_class("-filtering")

    def show_empty(self, empty: bool, quiet: str = "") -> None:
        """``quiet``: what to say instead of the set-up hint once the pane is configured but has nothing to show
        (no alerts firing)."""
        self.set_class(empty, "-empty")
        self.set_class(not empty, "-filled")
        message = quiet or self.empty_message
        if empty and message != getattr(self, "_shown_empty", self.empty_message):
            self._shown_empty = message
            self.empty_notice.update(safe(message))

    def set_status(self, text: str, stale: bool = False) -> None:
        """The border's subtitle: when the data was refreshed, a filter, a pause."""
        self.set_class(stale, "-stale")
        if text != getattr(self, "_status_text", None):
            self._status_text = text
            self.border_subtitle = safe(text) if text else None
