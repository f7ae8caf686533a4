"""The bottom line of keys: drawn with the first frame (Textual's Footer fills itself in a frame later)."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.widget import Widget

from backends.text import visible


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar { height: 1; background: $footer-background; color: $footer-foreground; padding: 0 1; }
    KeyBar > .key-bar--key { color: $footer-key-foreground; text-style: bold; }
    """
    COMPONENT_CLASSES = {"key-bar--key"}

    def __init__(self, keys: Sequence[tuple[str, str]], **kwargs) -> None:
        super().__init__(**kwargs)
        self.keys = [(visible(key), visible(description)) for key, description in keys]  # keys come from the config

    def fitting(self, width: int) -> list[tuple[str, str]]:
        """The keys that fit in ``width`` cells, whole: the last (quit) always stays, others go from the end."""
        keys = list(self.keys)
        while len(keys) > 1 and sum(len(k) + 1 + len(d) for k, d in keys) + 2 * (len(keys) - 1) > width:
            del keys[-2]
        return keys

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-bar--key")
        text = Text(no_wrap=True, overflow="ellipsis")
        width = self.content_region.width or self.size.width
        for index, (key, description) in enumerate(self.fitting(width) if width else self.keys):
            if index:
                text.append("  ")
            text.append(key, style=key_style)
            text.append(f" {description}")
        return text
