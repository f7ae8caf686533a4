"""The command palette, fed by the same key registry as the bindings and the help screen."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher

from backends.config import THEMES
from backends.keymap import KEYS
from backends.text import visible
from widgets.safe_text import safe

if TYPE_CHECKING:
    from .app import LakedeckApp

PALETTE_EXCLUDED = {"palette", "details", "back"}


class LakedeckCommands(Provider):
    def _commands(self) -> list[tuple[str, str, str]]:
        """(title, help, action) for everything the palette offers."""
        app: LakedeckApp = self.app  # type: ignore[assignment]
        found = []
        for spec in KEYS:
            if spec.id in PALETTE_EXCLUDED:
                continue
            title = f"Open pane: {spec.description}" if spec.group == "Panes" and spec.id.startswith("pane.") \
                and spec.id not in ("pane.next", "pane.previous") else spec.description
            action = f"log_view('{spec.action}')" if spec.log_view else spec.action
            found.append((visible(title), f"{app.key_display(spec.id)} · {spec.id}", action))  # keys from the config
        for name in THEMES:
            found.append((f"Theme: {name}", "switch the colour theme", f"set_theme('{name}')"))
        return found

    # The palette reads a str prompt or help as markup: both are given as Content, made inert, never markup.
    async def discover(self) -> Hits:
        for title, help_text, action in self._commands():
            yield DiscoveryHit(safe(title), partial(self.app.run_action, action), text=title,
                               help=safe(help_text))  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, highlighted(matcher, title), partial(self.app.run_action, action), text=title,
                          help=safe(help_text))  # type: ignore[arg-type]


def highlighted(matcher: Matcher, title: str) -> Content:
    """``title`` with the matched letters marked, as ``Matcher.highlight`` does, but never read as markup."""
    content = safe(title)
    _, offsets = matcher.fuzzy_search.match(matcher.query, title)
    for offset in offsets:
        if offset < len(title) and not title[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content
