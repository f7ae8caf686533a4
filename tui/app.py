"""The console: owns the engine, turns its updates into screen updates, and keys into actions."""

from __future__ import annotations

import asyncio
import collections
import signal
import socket
import threading
import time
from typing import Callable

from textual.app import App
from textual.binding import Binding
from textual.widget import Widget

from backends.config import Config
from backends.durations import format_age
from backends.engine import Engine
from backends.keymap import KEYS
from backends.model import LogReading, State, Update
from backends.text import visible
from themes import STYLESHEET, THEMES
from widgets.action_panel import ActionPanel
from widgets.log_view import LogEntry
from widgets.status_bar import StatusBar, StatusSummary
from widgets.status_table import StatusTable

from .action_flow import ActionFlow
from .bindings import bindings
from .commands import LakedeckCommands
from .dashboard import Dashboard
from .details import process_lines, reading_lines
from .modals import TextModal
from .rows import is_stale

FLUSH_DELAY = 0.25  # at most four screen updates a second, however busy the sources
LOG_BACKLOG = 10_000
COUNT_ROLES = ((State.CRITICAL, "critical", "critical"), (State.UNKNOWN, "unknown", "unknown"),
               (State.WARN, "warn", "warn"), (State.OK, "ok", "ok"))


class LakedeckApp(App[int]):
    TITLE = "lakedeck"
    CSS_PATH = str(STYLESHEET)
    COMMANDS = {LakedeckCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = bindings(screen=False)

    def __init__(self, config: Config, *, engine: Engine | None = None, clock: Callable[[], float] = time.time,
                 hostname: str | None = None, theme: str | None = None, read_only: bool = False,
                 start_engine: bool = True) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self.engine = engine or Engine(config, clock=clock)
        self.engine.read_only = self.engine.read_only or read_only
        self.actions = ActionFlow(self)
        self.hostname = hostname or socket.gethostname()
        self.paused = False
        self._start_engine = start_engine
        self._dirty = False
        self._flush_pending = False
        self._last_flush = 0.0
        self._stale: frozenset[str] = frozenset()
        self._logs: collections.deque[LogEntry] = collections.deque(maxlen=LOG_BACKLOG)
        for candidate in THEMES.values():
            self.register_theme(candidate)
        self.theme = theme or config.theme
        if config.keys:
            self.set_keymap(dict(config.keys))

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {"status-ok": "green", "status-warn": "yellow", "status-critical": "red",
                "status-unknown": "magenta", "status-stale": "grey",
                "pane-border": "grey"}

    def get_default_screen(self) -> Dashboard:
        return Dashboard()

    @property
    def dashboard(self) -> Dashboard:
        return self.screen_stack[0]  # type: ignore[return-value]

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(signum, self.exit, 0)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        self.engine.subscribe(self._on_update)
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        self._show_summary()
        self.set_interval(1.0, self._tick)
        if self._start_engine:
            # adapters import their libraries when built: off the first paint, in the engine's worker
            self.run_worker(self.engine.start(), name="engine", group="engine", exit_on_error=False)

    async def on_unmount(self) -> None:
        try:
            await asyncio.wait_for(self.engine.stop(), 0.5)
        except (asyncio.TimeoutError, Exception):
            pass

    # -- engine updates --------------------------------------------------------------------------

    def _on_update(self, update: Update) -> None:
        for reading in update.readings:
            if isinstance(reading, LogReading) and reading.lines:
                self._logs.extend(LogEntry(visible(line.source), visible(line.text)) for line in reading.lines)
        self._dirty = True
        if not self._flush_pending and not self.paused:
            # the first update after a quiet spell is drawn at once; a burst is drawn at most 4 times a second
            self._flush_pending = True
            wait = FLUSH_DELAY - (time.monotonic() - self._last_flush)
            if wait > 0:
                self.set_timer(wait, self._flush)
            else:
                self.call_next(self._flush)

    def refresh_view(self) -> None:
        """Draw the engine's current data now (tests and snapshots call this after a manual sweep)."""
        self._dirty = True
        self._flush()

    def _flush(self) -> None:
        self._flush_pending = False
        if self.paused or not self._dirty or not self.screen_stack:  # no screens: the app is closing
            return
        self._dirty = False
        self._last_flush = time.monotonic()
        engine = self.engine
        intervals = {name: h.interval for name, h in engine.health.items()}
        with self.batch_update():
            self.dashboard.apply(engine.readings, engine.history, intervals, self.clock(), engine.transitions)
            if self._logs:
                self.dashboard.write_logs(list(self._logs))
                self._logs.clear()
            self._show_summary()

    def _tick(self) -> None:
        """Once a second: ages and staleness move even when no data arrives.

        Rows are redrawn only when a reading turned stale (or fresh); otherwise only the borders' ages.
        """
        self._show_summary()
        if self.paused or not self.screen_stack:
            return
        now = self.clock()
        intervals = {name: h.interval for name, h in self.engine.health.items()}
        stale = frozenset(k for k, r in self.engine.readings.items()
                          if is_stale(r, intervals.get(r.source, self.config.refresh), now))
        if stale != self._stale:
            self._stale = stale
            self.refresh_view()
        else:
            self.dashboard.show_status(self.engine.readings, intervals, now)

    def _show_summary(self) -> None:
        if not self.screen_stack:
            return
        readings = list(self.engine.readings.values())
        now = self.clock()
        counts = tuple((label, sum(1 for r in readings if r.state is state), role) for state, label, role in COUNT_ROLES)
        if readings:
            newest = max(r.ts for r in readings)
            age = now - newest
            stale = age > 3 * self.config.refresh
            age_text = f"newest data {format_age(age, fresh_within=1.5 * self.config.refresh)}"
        else:
            stale, age_text = False, "waiting for the first poll"
        self.dashboard.query_one("#status", StatusBar).show(StatusSummary(
            host=self.hostname, origin=self.config.origin, counts=counts, age=age_text, stale=stale,
            paused=self.paused, read_only=self.engine.read_only))

    # -- actions ---------------------------------------------------------------------------------

    def key_display(self, binding_id: str) -> str:
        spec = next(s for s in KEYS if s.id == binding_id)
        keys = self.config.keys.get(binding_id, spec.keys)
        return " or ".join(self.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))

    def _focused_pane(self) -> str:
        return self.dashboard.pane_of(self.focused) or "services"

    def action_pane(self, name: str) -> None:
        dashboard = self.dashboard
        pane = dashboard.pane(name)
        if dashboard.maximized is pane:
            dashboard.minimize()
        else:
            dashboard.minimize()
            dashboard.focus_pane(name)
            dashboard.maximize(pane, container=False)

    def _cycle(self, step: int) -> None:
        names = self.dashboard.pane_names()
        focusable = [n for n in names if any(w.focusable for w in self.dashboard.pane(n).query(".pane--body"))]
        if self.dashboard.maximized is not None:
            focusable = names
        current = self._focused_pane()
        if self.dashboard.maximized is not None:
            current = (self.dashboard.maximized.id or "").removeprefix("pane-")
        index = focusable.index(current) if current in focusable else -1
        target = focusable[(index + step) % len(focusable)]
        if self.dashboard.maximized is not None:
            self.action_pane(target)
        else:
            self.dashboard.focus_pane(target)

    def action_next_pane(self) -> None:
        self._cycle(1)

    def action_previous_pane(self) -> None:
        self._cycle(-1)

    def action_back(self) -> None:
        filtering = self._filter_pane_of(self.focused)
        panel = self.dashboard.query_one(ActionPanel)
        if filtering:
            self._close_filter(filtering, clear=True)
        elif panel.has_class("-open"):
            panel.hide()
        elif self.dashboard.maximized is not None:
            self.dashboard.minimize()

    def action_refresh_now(self) -> None:
        self.engine.refresh_now()
        if self.paused:
            self._dirty = True
            self.paused = False
            self.call_later(self._repause)
        self.notify("Polling every source now", timeout=2)

    def _repause(self) -> None:
        self.set_timer(FLUSH_DELAY * 2, lambda: setattr(self, "paused", True) or self._show_summary())

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self._show_summary()
        if not self.paused:
            self._dirty = True
            self._flush()

    def action_help(self) -> None:
        lines: list[tuple[str, str]] = []
        for group in dict.fromkeys(spec.group for spec in KEYS):
            lines.append((group, ""))
            lines += [(self.key_display(s.id), f"{s.description}  [{s.id}]") for s in KEYS if s.group == group]
        lines += [("In a table", ""), ("↑ ↓ pgup pgdn home end", "move"), ("enter", "details of the row")]
        self.push_screen(TextModal("Keys (rebind by id under keys: in lakedeck.yaml)", lines))

    def action_details(self) -> None:
        focused = self.focused
        if not isinstance(focused, StatusTable) or focused.selected_key is None:
            return
        key = focused.selected_key
        engine, now = self.engine, self.clock()
        if key.startswith("rank:"):
            rank = int(key.removeprefix("rank:"))
            if rank < len(self.dashboard.processes):
                proc = self.dashboard.processes[rank]
                self.push_screen(TextModal(f"Process {proc.pid}", process_lines(proc, now)))
            return
        reading = engine.readings.get(key)
        if reading is not None:
            lines = reading_lines(reading, engine.health.get(reading.source), engine.history.get(key, ()), now)
            self.push_screen(TextModal(f"Details · {key}", lines))

    # -- filter ----------------------------------------------------------------------------------

    async def action_filter(self) -> None:
        name = self._focused_pane()
        if self.dashboard.filterable(name):
            await self.dashboard.pane(name).open_filter(self.dashboard.filter_of(name))

    def _filter_pane_of(self, widget: object) -> str | None:
        """The pane whose filter input ``widget`` is, if it is one."""
        if isinstance(widget, Widget) and widget.has_class("pane--filter"):
            return self.dashboard.pane_of(widget)
        return None

    def on_input_changed(self, event) -> None:
        name = self._filter_pane_of(event.input)
        if name:
            self.dashboard.set_filter(name, event.value)
            self.refresh_view()

    def on_input_submitted(self, event) -> None:
        name = self._filter_pane_of(event.input)
        if name:
            self._close_filter(name, clear=False)

    def _close_filter(self, name: str, clear: bool) -> None:
        if clear:
            self.dashboard.set_filter(name, "")
        self.dashboard.pane(name).close_filter()
        self.dashboard.focus_pane(name)
        self.refresh_view()

    def action_actions(self) -> None:
        self.actions.open_menu()

    def action_restart(self) -> None:
        self.actions.shortcut("restart")

    def action_start_stop(self) -> None:
        self.actions.start_or_stop()

    def action_audit(self) -> None:
        self.run_worker(self._show_audit(), group="audit", exit_on_error=False)

    async def _show_audit(self) -> None:
        entries = await asyncio.to_thread(self.engine.audit.read, 7 * 86400.0)
        lines = [(f"{e.get('time', '?')} {e.get('event', '?')}",
                  f"{e.get('user', '?')}@{e.get('ssh_origin') or 'local'}  {e.get('target', '?')} {e.get('action', '?')}"
                  + (f" exit {e['exit_code']}" if e.get("exit_code") is not None else "")
                  + (f"  {e.get('reason') or e.get('error')}" if e.get("reason") or e.get("error") else ""))
                 for e in entries[-200:]] or [("", "no actions in the last 7 days")]
        self.push_screen(TextModal(f"Audit log · {self.engine.audit.path}", lines))

    def action_set_theme(self, name: str) -> None:
        self.theme = name


def run_console(config: Config, theme: str | None = None, read_only: bool = False) -> int:
    app = LakedeckApp(config, theme=theme, read_only=read_only)
    app.run()
    _exit_promptly()
    return app.return_code or 0


def _exit_promptly() -> None:
    """A poll stuck in a thread (a hung /proc read) must not keep the process alive after the console ends."""
    from backends.adapters.base import shutdown_threads

    shutdown_threads()
    stuck = [t for t in threading.enumerate() if t.name.startswith("lakedeck-poll") and t.is_alive()]
    deadline = time.monotonic() + 0.3
    for thread in stuck:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in stuck):
        import os
        import sys

        sys.stdout.flush()
        os._exit(0)
