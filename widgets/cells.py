"""Plain cells for tables and the theme roles that colour them.

A widget never picks a colour: a cell names a *role* (``ok``, ``warn``, ``critical``...), and the
role is looked up in the current theme's variables (``$status-ok``...) when the cell is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.color import Color as RichColor
from rich.style import Style
from rich.text import Text
from textual.color import Color

from backends.text import visible

ROLE_VARIABLES = {
    "ok": "status-ok",
    "warn": "status-warn",
    "critical": "status-critical",
    "unknown": "status-unknown",
    "stale": "status-stale",
    "muted": "status-stale",
    "accent": "accent",
}


@dataclass(frozen=True)
class Cell:
    """One cell's text (made inert here, once: cells carry names, reasons and labels from outside) and role."""

    text: str
    role: str = ""
    bold: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", visible(self.text))


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[Cell, ...]
    search_text: str = ""

    def matches(self, needle: str) -> bool:
        if not needle:
            return True
        haystack = self.search_text or " ".join(c.text for c in self.cells)
        return needle.lower() in haystack.lower()


def _rich_colour(value: str | None) -> RichColor | None:
    """A theme's colour in Rich's terms: Textual's names (``ansi_bright_red``, ``$accent`` values) are not Rich's."""
    if not value:
        return None
    try:
        return Color.parse(value).rich_color
    except Exception:  # a colour Textual cannot parse: the role goes uncoloured rather than the view breaking
        return None


def role_styles(variables: dict[str, str]) -> dict[str, Style]:
    """Rich styles for each role from a theme's CSS variables."""
    styles = {}
    for role, variable in ROLE_VARIABLES.items():
        colour = _rich_colour(variables.get(variable))
        styles[role] = Style(color=colour, dim=role == "muted") if colour else Style(dim=role in ("stale", "muted"))
    return styles


class ThemeRoles:
    """Mixin for widgets: ``_role_styles`` follows the app's theme, and ``on_roles_changed`` redraws."""

    _role_styles: dict[str, Style] = {}

    def track_theme(self) -> None:
        self._role_styles = role_styles(self.app.get_css_variables())  # type: ignore[attr-defined]
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)  # type: ignore[attr-defined]

    def _theme_changed(self, _theme: object) -> None:
        self._role_styles = role_styles(self.app.get_css_variables())  # type: ignore[attr-defined]
        self.on_roles_changed()

    def on_roles_changed(self) -> None:
        self.refresh()  # type: ignore[attr-defined]


def render_cell(cell: Cell, styles: dict[str, Style]) -> Text:
    """The cell as Text. Never parsed as markup: cells carry untrusted text."""
    style = styles.get(cell.role, Style())
    if cell.bold:
        style = style + Style(bold=True)
    return Text(cell.text, style=style, no_wrap=True, end="")
