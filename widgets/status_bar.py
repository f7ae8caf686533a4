"""The top line: where we are, counts by state, the age of the newest data, and modes."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from backends.text import visible

from .cells import role_styles


@dataclass(frozen=True)
class StatusSummary:
    host: str
    origin: str
    counts: tuple[tuple[str, int, str], ...]  # (label, count, role)
    age: str
    alerts: tuple[tuple[str, int, str], ...] = ()  # firing alerts by severity: (label, count, role)
    stale: bool = False
    paused: bool = False
    read_only: bool = False


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._summary: StatusSummary | None = None

    def show(self, summary: StatusSummary) -> None:
        if summary != self._summary:
            self._summary = summary
            self.refresh()

    def render(self) -> Text:
        summary = self._summary
        if summary is None:
            return Text("lakedeck · starting…")
        styles = role_styles(self.app.get_css_variables())
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("lakedeck", style="bold")
        text.append(f" {visible(summary.host)}")
        for label, count, role in summary.counts:
            text.append("  ")
            text.append(f"{count} {visible(label)}", style=styles.get(role) if count else styles.get("muted"))
        if summary.alerts:
            firing = sum(count for _, count, _ in summary.alerts)
            text.append("  ")
            text.append("ALERTS" if firing else "alerts", style="bold" if firing else styles.get("muted"))
            for label, count, role in summary.alerts:
                if count or label == "critical":
                    text.append(f" {count} {visible(label)}", style=styles.get(role) if count else styles.get("muted"))
        text.append("  ")
        text.append(visible(summary.age), style=styles.get("warn") if summary.stale else styles.get("muted"))
        if summary.paused:
            text.append("  ")
            text.append(" PAUSED ", style="bold reverse")
        if summary.read_only:
            text.append("  ")
            text.append(" READ-ONLY ", style="bold reverse")
        text.append(f"  {visible(summary.origin)}", style=styles.get("muted"))  # the config's path
        return text
