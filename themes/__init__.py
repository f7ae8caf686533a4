"""lakedeck's themes. Widgets colour states only through the ``$status-*`` variables defined here."""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

STYLESHEET = Path(__file__).with_name("lakedeck.tcss")


def _status(ok: str, warn: str, critical: str, unknown: str, stale: str, border: str) -> dict[str, str]:
    return {
        "pane-border": border,
        "status-ok": ok,
        "status-warn": warn,
        "status-critical": critical,
        "status-unknown": unknown,
        "status-stale": stale,
    }


THEMES: dict[str, Theme] = {
    "dark": Theme(
        name="dark", dark=True,
        primary="#5FA8D3", secondary="#7E9CD8", accent="#62C0B5",
        warning="#E6B450", error="#F07178", success="#8BD17C",
        background="#12161C", surface="#181D25", panel="#222A35", foreground="#D5DAE1",
        variables=_status("#8BD17C", "#E6B450", "#F07178", "#C792EA", "#6C7683", "#3A4656"),
    ),
    "light": Theme(
        name="light", dark=False,
        primary="#1F5F99", secondary="#4A5FA8", accent="#0F7B72",
        warning="#8A5A00", error="#B3261E", success="#1E7B34",
        background="#F7F7F4", surface="#FFFFFF", panel="#E4E6EA", foreground="#1D2329",
        variables=_status("#1E7B34", "#8A5A00", "#B3261E", "#6A3FA0", "#6B7280", "#8A939E"),
    ),
    "high-contrast": Theme(
        name="high-contrast", dark=True,
        primary="#FFFFFF", secondary="#FFFF00", accent="#00FFFF",
        warning="#FFFF00", error="#FF5555", success="#00FF00",
        background="#000000", surface="#000000", panel="#FFFFFF", foreground="#FFFFFF",
        variables=_status("#00FF00", "#FFFF00", "#FF5555", "#FF00FF", "#C0C0C0", "#FFFFFF"),
    ),
    # Native ANSI colours: reads well on a 16-colour terminal and follows its palette.
    "ansi": Theme(
        name="ansi", dark=True, ansi=True,
        primary="ansi_blue", secondary="ansi_cyan", accent="ansi_cyan",
        warning="ansi_yellow", error="ansi_red", success="ansi_green",
        foreground="ansi_default", background="ansi_default", surface="ansi_default",
        panel="ansi_default", boost="ansi_default",
        variables={
            **_status("ansi_green", "ansi_yellow", "ansi_bright_red", "ansi_magenta", "ansi_bright_black", "ansi_white"),
            "ansi-background": "ansi_black",
            "ansi-foreground": "ansi_white",
            "border-blurred": "ansi_bright_black",
            "block-cursor-background": "ansi_blue",
            "block-cursor-foreground": "ansi_bright_white",
            "block-cursor-text-style": "bold",
            "footer-key-foreground": "ansi_cyan",
            "input-selection-background": "ansi_bright_blue",
        },
    ),
}
