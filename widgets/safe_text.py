"""Text from outside as a widget shows it: made inert by ``backends.text.visible`` and never parsed as markup.

Titles, borders, headings, menu entries and lines hold names, reasons and paths that others control (an alert's
labels, a file's name, a service's output, the config's names): every one is built here, so none of them can send
an escape sequence to the terminal (OSC 52 to the clipboard, OSC 8 links, cursor moves), reorder what is shown
(bidi overrides), hide part of itself (zero-width characters) or be read as markup.
"""

from __future__ import annotations

from typing import Iterable

from textual.content import Content

from backends.text import visible


def safe(text: str) -> Content:
    """``text`` as Content: controls and format characters shown as symbols, ``[`` shown as ``[``."""
    return Content(visible(text))


def safe_lines(lines: Iterable[str]) -> Content:
    """Several lines as one Content: each made inert (a newline inside a line is shown, not taken)."""
    return Content("\n".join(visible(line) for line in lines))
