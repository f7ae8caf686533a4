"""The command palette, fed by the same key registry as the bindings and the help screen."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from backends.config import THEMES
from backends.keymap import KEYS

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
            found.append((title, f"{app.key_display(spec.id)} · {spec.id}", action))
        for name in THEMES:
            found.append((f"Theme: {name}", "switch the colour theme", f"set_theme('{name}')"))
        return found

    async def discover(self) -> Hits:
        for title, help_text, action in self._commands():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=help_text)
