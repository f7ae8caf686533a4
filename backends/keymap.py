"""Every key the console binds, by id: one registry for the bindings, the help screen, the palette and config.

Plain data, so that config validation can check ``keys:`` without importing the UI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeySpec:
    id: str
    keys: str
    action: str
    description: str
    show: bool = True
    group: str = "Console"
    screen: bool = False  # bound on the dashboard screen, so that it wins over Screen's own tab keys
    log_view: bool = False  # bound on log views (they hold the focus when these keys mean something)
    short: str = ""  # the key bar's word, when the description is too long for it

    @property
    def label(self) -> str:
        return self.short or self.description


KEYS: tuple[KeySpec, ...] = (
    KeySpec("pane.services", "1", "pane('services')", "Services", show=False, group="Panes"),
    KeySpec("pane.resources", "2", "pane('resources')", "Resources", show=False, group="Panes"),
    KeySpec("pane.pipelines", "3", "pane('pipelines')", "Pipelines", show=False, group="Panes"),
    KeySpec("pane.logs", "4", "pane('logs')", "Logs", show=False, group="Panes"),
    KeySpec("pane.backups", "5", "pane('backups')", "Backups", show=False, group="Panes"),
    KeySpec("pane.tables", "6", "pane('tables')", "Tables", show=False, group="Panes"),
    KeySpec("pane.alerts", "7", "pane('alerts')", "Alerts", show=False, group="Panes"),
    KeySpec("pane.next", "tab", "next_pane", "Next pane", show=False, group="Panes", screen=True),
    KeySpec("pane.previous", "shift+tab", "previous_pane", "Previous pane", show=False, group="Panes", screen=True),
    KeySpec("back", "escape", "back", "Back to the dashboard", show=False, group="Panes", screen=True),
    KeySpec("details", "enter", "details", "Details of the selected row", show=False, group="Rows"),
    KeySpec("filter", "slash", "filter", "Filter", group="Rows"),
    KeySpec("actions", "a", "actions", "Actions", group="Actions"),
    KeySpec("restart", "r", "restart", "Restart", show=False, group="Actions"),
    KeySpec("start_stop", "s", "start_stop", "Start/stop", show=False, group="Actions"),
    KeySpec("audit", "A", "audit", "Audit log", show=False, group="Actions"),
    KeySpec("logs", "l", "logs", "Logs of the selection", group="Logs", short="Logs"),
    KeySpec("log.follow", "f", "toggle_follow", "Follow", show=False, group="Logs", log_view=True),
    KeySpec("log.wrap", "w", "toggle_wrap", "Wrap", show=False, group="Logs", log_view=True),
    KeySpec("log.time", "t", "toggle_time", "Timestamps", show=False, group="Logs", log_view=True, short="Time"),
    KeySpec("log.find", "ctrl+f", "find", "Find", show=False, group="Logs", log_view=True),
    KeySpec("log.next", "n", "find_next", "Next match", show=False, group="Logs", log_view=True),
    KeySpec("log.previous", "N", "find_previous", "Previous match", show=False, group="Logs", log_view=True),
    KeySpec("log.top", "g", "top", "Top (pages in older lines)", show=False, group="Logs", log_view=True,
            short="Top"),
    KeySpec("log.bottom", "G", "bottom", "Bottom, following", show=False, group="Logs", log_view=True),
    KeySpec("log.jump", "T", "jump", "Jump to a time", show=False, group="Logs", log_view=True, short="Jump"),
    KeySpec("log.save", "S", "save", "Save the shown lines", show=False, group="Logs", log_view=True, short="Save"),
    KeySpec("refresh", "R", "refresh_now", "Refresh", group="Console"),
    KeySpec("pause", "p", "toggle_pause", "Pause", group="Console"),
    KeySpec("help", "question_mark", "help", "Keys", group="Console"),
    KeySpec("palette", "colon,ctrl+p", "command_palette", "Commands", group="Console"),
    KeySpec("quit", "q", "quit", "Quit", group="Console"),
)

KEY_IDS: tuple[str, ...] = tuple(spec.id for spec in KEYS)
