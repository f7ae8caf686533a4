"""The console: owns the engine, turns its updates into screen updates, and keys into actions."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Callable

from textual.app import App
from textual.binding import Binding

from backends.config import Config
from backends.durations import format_age
from backends import interrupts
from backends.engine import Engine
from backends.keymap import KEYS
from backends.model import (AlertReading, BackupReading, LogLine, LogReading, PipelineReading, State, TableReading,
                            Update)
from backends.text import visible
from themes import STYLESHEET, THEMES
from widgets.action_panel import ActionPanel
from widgets.log_view import LogView
from widgets.pane import Pane, prompt_purpose
from widgets.status_bar import StatusBar, StatusSummary
from widgets.status_table import StatusTable

from .action_flow import ActionFlow
from .bindings import bindings
from .commands import LakedeckCommands
from .dashboard import Dashboard
from .details import process_lines, reading_lines
from .log_flow import LogFlow, pane_of
from .line_modal import LineModal
from .log_screen import LogScreen
from .modals import TextModal
from .pipeline_flow import PipelineFlow
from .pipeline_screen import PipelineScreen
from .rows import is_stale, one_per_alert

if TYPE_CHECKING:
    from backends.log_pager import FilePager

FLUSH_DELAY = 0.25  # at most four screen updates a second, however busy the sources
GATHER_DELAY = 0.03  # sources polled at the same moment answer within this and are drawn together
LOG_BACKLOG = 10_000
STORE_DELAY = 3.0  # seconds after the first paint before the history store is opened
COUNT_ROLES = ((State.CRITICAL, "critical", "critical"), (State.UNKNOWN, "unknown", "unknown"),
               (State.WARN, "warn", "warn"), (State.OK, "ok", "ok"))
ALERT_COUNTS = (("critical", "critical"), ("warning", "warn"), ("info", "muted"))
BELL_AT = {"critical": ("critical",), "warning": ("critical", "warning"), "off": ()}


def alert_counts(readings: list) -> tuple[tuple[str, int, str], ...]:
    """Firing alerts by severity, one per alert however many sources report it; acked ones are not counted."""
    alerts = one_per_alert(r for r in readings if isinstance(r, AlertReading))  # the rows the pane shows
    severities = [a.severity for a in alerts if a.status == "firing" and not a.acked]
    return tuple((label, severities.count(label), role) for label, role in ALERT_COUNTS)


def open_store(config: Config, points: int) -> "tuple[object | None, dict]":
    """The history store (started) and the points it holds for each reading's sparkline; in a thread."""
    from backends.store import store_for

    store = store_for(config)
    if store is None:
        return None, {}
    store.start()
    try:
        series = store.series(points=points)
    except Exception:  # a store that cannot be read still takes new samples; its problem is shown
        series = {}
    return store, series


class LakedeckApp(App[int]):
    TITLE = "lakedeck"
    CSS_PATH = str(STYLESHEET)
    COMMANDS = {LakedeckCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    ESCAPE_TO_MINIMIZE = False  # `back` decides: a prompt closes first, then the action panel, then full screen
    BINDINGS = bindings(screen=False)

    def __init__(self, config: Config, *, engine: Engine | None = None, clock: Callable[[], float] = time.time,
                 hostname: str | None = None, theme: str | None = None, read_only: bool = False,
                 start_engine: bool = True, tail: bool = False, tail_lines: int = 1000,
                 tail_read: "tuple[FilePager, concurrent.futures.Future[list[LogLine]]] | None" = None) -> None:
        super().__init__()
        self.config = config
        self.tail_mode = tail  # `lakedeck tail FILE...`: only the log screen of those files
        self.tail_lines = tail_lines
        self.tail_read = tail_read  # the file's end, being read since before Textual was imported
        self.clock = clock
        self.engine = engine or Engine(config, clock=clock)
        self.engine.read_only = self.engine.read_only or read_only
        self.actions = ActionFlow(self)
        self.logs = LogFlow(self)
        self.pipelines = PipelineFlow(self)
        self.hostname = hostname or socket.gethostname()
        self.paused = False
        self._start_engine = start_engine
        self._dirty = False
        self._flush_pending = False
        self._last_flush = 0.0
        self._stale: frozenset[str] = frozenset()
        self._logs: collections.deque[LogLine] = collections.deque(maxlen=LOG_BACKLOG)
        self._shown_log_states: dict[str, tuple[State, str]] = {}
        self._alerts_seen: dict[str, set[str]] = {}  # source -> alerts firing at its last poll (for the bell)
        self.exit_watchdog = False  # run_console: a signal ends the process even if Textual's shutdown stalls
        self.ending_groups: list[int] | None = None  # the child process groups a signal sent SIGTERM to
        for candidate in THEMES.values():
            self.register_theme(candidate)
        self.theme = theme or config.theme
        if config.keys:
            self.set_keymap(dict(config.keys))

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every notification (a widget's ``notify`` comes here too) names things from outside: a target, a path,
        a reason. Made inert and never read as markup, whatever the caller asked."""
        super().notify(visible(message), title=visible(title), severity=severity, timeout=timeout, markup=False)

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
                loop.add_signal_handler(signum, self.end_on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        self.engine.subscribe(self._on_update)
        if self.tail_mode:
            self.push_screen(self._tail_screen())
        self.call_after_refresh(self._after_first_paint)

    def _tail_screen(self) -> LogScreen:
        specs = self.config.section("logs")
        names = {spec.name for spec in specs}
        if len(specs) == 1:
            path = specs[0].options["path"]
            if self.tail_read is not None:
                pager, already = self.tail_read
            else:
                from backends.log_pager import FilePager

                pager, already = FilePager(path, specs[0].name), None
            screen = LogScreen(f"{path}", names, pager=pager, path=path, can_go_back=False)
            screen.tail_lines = self.tail_lines
            self.call_after_refresh(lambda: self.run_worker(self.logs.reload_end(screen, already), group="page"))
            return screen
        return LogScreen("Logs · " + ", ".join(spec.options["path"] for spec in specs), names, can_go_back=False)

    def _after_first_paint(self) -> None:
        self._show_summary()
        self.set_interval(1.0, self._tick)
        if self._start_engine:
            # adapters import their libraries when built: off the first paint, in the engine's worker
            self.run_worker(self.engine.start(), name="engine", group="engine", exit_on_error=False)
            if self.config.store.get("enabled") and self.engine.store is None:
                # after the first polls: importing and opening DuckDB holds the GIL for a while
                self.set_timer(STORE_DELAY, lambda: self.run_worker(self._attach_store(), name="store", group="engine",
                                                                    exit_on_error=False))

    async def _attach_store(self) -> None:
        """History from disk fills the sparklines; new samples are written in the store's own thread."""
        store, series = await asyncio.to_thread(open_store, self.config, self.config.history)
        if store is None:
            return
        self.engine.store = store
        self.engine.seed_history(series)
        problem = getattr(store, "problem", "")
        if problem:
            self.notify(problem, severity="warning", timeout=8)
        self.refresh_view()

    def end_on_signal(self, signum: int) -> None:
        """SIGTERM or SIGHUP (a dropped SSH session): a running action's process group is killed and its `failed`
        line written first, then the console exits; with ``exit_watchdog`` on, within ``interrupts.WATCHDOG``
        seconds whatever Textual's shutdown does (it can stall writing to a terminal that is gone)."""
        if self.ending_groups is not None:
            return
        self.ending_groups = self.engine.interrupt(interrupts.signal_name(signum))
        if self.exit_watchdog:
            interrupts.start_watchdog(self.ending_groups, code=0)
        self.exit(0)

    async def on_unmount(self) -> None:
        try:
            await asyncio.wait_for(self.engine.stop(), 0.5)
        except (asyncio.TimeoutError, Exception):
            pass
        store = self.engine.store
        if store is not None:  # the last batch is written if it can be in half a second; never more is lost
            try:
                await asyncio.wait_for(asyncio.to_thread(store.close), 0.5)
            except (asyncio.TimeoutError, Exception):
                pass

    # -- engine updates --------------------------------------------------------------------------

    def _on_update(self, update: Update) -> None:
        changed = not update.readings  # an action's transition
        if update.source in self._alerts_seen or any(isinstance(r, AlertReading) for r in update.readings):
            self._ring_for_new_alerts(update)
        for reading in update.readings:
            if isinstance(reading, LogReading):
                if reading.lines:
                    self._logs.extend(reading.lines)
                    changed = True
                elif not changed:
                    shown = self._shown_log_states.get(reading.key)
                    changed = shown != (reading.state, reading.reason)
                self._shown_log_states[reading.key] = (reading.state, reading.reason)
            else:
                changed = True
        if not changed:
            return  # a quiet log said "0 new lines" again: the once-a-second tick keeps its age current
        self._dirty = True
        if not self._flush_pending and not self.paused:
            # the first update after a quiet spell is drawn almost at once (sources polled together land in
            # one frame); a burst is drawn at most 4 times a second
            self._flush_pending = True
            wait = max(GATHER_DELAY, FLUSH_DELAY - (time.monotonic() - self._last_flush))
            self.set_timer(wait, self._flush)

    def _ring_for_new_alerts(self, update: Update) -> None:
        """The terminal bell when an alert of the configured severity starts firing. Alerts already firing at a
        source's first poll are not new; an acked or silenced one never rings."""
        firing = {r.fingerprint or r.key for r in update.readings
                  if isinstance(r, AlertReading) and r.status == "firing" and not r.acked
                  and r.severity in BELL_AT.get(self.config.bell, ())}
        before = self._alerts_seen.get(update.source)
        self._alerts_seen[update.source] = firing
        if before is not None and firing - before:
            self.bell()

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
                self._write_logs(list(self._logs))
                self._logs.clear()
            self._show_summary()

    def _write_logs(self, lines: list[LogLine]) -> None:
        """The dashboard's Logs pane gets the configured logs; each log screen the lines it shows."""
        screens = [screen for screen in self.screen_stack if isinstance(screen, LogScreen)]
        attached = {name for screen in screens for name in screen.attached}
        if not self.tail_mode:  # `lakedeck tail` never shows the dashboard: filling it would halve its speed
            self.dashboard.write_logs([line for line in lines if line.source not in attached] if attached else lines)
        for screen in screens:
            kept = screen.accept(lines)
            if kept:
                screen.view.write_lines(kept)
                screen.show_status()

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
        alerts = alert_counts(readings) if self.config.section("alerts") else ()
        watched = [r for r in readings if not isinstance(r, AlertReading)]  # alerts are counted on their own
        counts = tuple((label, sum(1 for r in watched if r.state is state), role) for state, label, role in COUNT_ROLES)
        if readings:
            newest = max(r.ts for r in readings)
            age = now - newest
            stale = age > 3 * self.config.refresh
            age_text = f"newest data {format_age(age, fresh_within=1.5 * self.config.refresh)}"
        else:
            stale, age_text = False, "waiting for the first poll"
        bar = next(iter(self.dashboard.query("#status").results(StatusBar)), None)
        if bar is None:  # the app is closing: its widgets are gone before its timers
            return
        bar.show(StatusSummary(
            host=self.hostname, origin=self.config.origin, counts=counts, alerts=alerts, age=age_text, stale=stale,
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
        focusable = [n for n in names if not self.dashboard.pane(n).has_class("-empty")
                     and any(w.focusable for w in self.dashboard.pane(n).query(".pane--body"))]
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
        prompt_pane = self._prompt_pane()
        if prompt_pane is not None:
            self._close_prompt(prompt_pane, clear=prompt_purpose(self.focused) == "filter")
            return
        if isinstance(self.screen, LogScreen):
            self._leave_log_screen(self.screen)
            return
        if isinstance(self.screen, PipelineScreen):
            self.pop_screen()
            return
        panel = next(iter(self.dashboard.query(ActionPanel)), None)
        if panel is not None and panel.has_class("-open"):
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
        if isinstance(reading, PipelineReading) and reading.can_open:
            self.pipelines.open_reading(reading)
            return
        if isinstance(reading, BackupReading) or (isinstance(reading, TableReading) and not reading.check
                                                  and reading.key != reading.source):
            self.pipelines.open_listing(reading)
            return
        if reading is not None:
            lines = reading_lines(reading, engine.health.get(reading.source), engine.history.get(key, ()), now)
            self.push_screen(TextModal(f"Details · {key}", lines))

    # -- filter and the other prompts ----------------------------------------------------------

    async def action_filter(self) -> None:
        pane = pane_of(self.focused)
        if pane is None and self.screen is self.dashboard:
            pane = self.dashboard.pane(self._focused_pane())
        if pane is not None and pane.filter_targets():
            await pane.open_filter(pane.filter_text())

    def _prompt_pane(self) -> Pane | None:
        """The pane whose prompt (filter, find...) has the focus, if one has."""
        return pane_of(self.focused) if prompt_purpose(self.focused) else None

    def on_input_changed(self, event) -> None:
        if prompt_purpose(event.input) != "filter":
            return
        pane = pane_of(event.input)
        if pane is not None:
            for target in pane.filter_targets():
                target.set_filter(event.value)
            self._after_filter(pane)

    def on_input_submitted(self, event) -> None:
        purpose = prompt_purpose(event.input)
        pane = pane_of(event.input)
        if not purpose or pane is None:
            return
        if purpose == "filter":
            screen = pane.screen
            if isinstance(screen, LogScreen) and screen.pager is not None and event.value:
                if not self.logs.start_scan(screen, event.value):
                    return  # a refused pattern: the prompt stays open to mend it
            self._close_prompt(pane, clear=False)
        elif self.logs.submitted(pane, purpose, event.value):
            self._close_prompt(pane, clear=False)

    def _close_prompt(self, pane: Pane, clear: bool) -> None:
        if clear:
            for target in pane.filter_targets():
                target.set_filter("")
            screen = pane.screen
            if isinstance(screen, LogScreen) and (self.logs.cancel_scan(screen) or screen.scan_note):
                screen.scan_note = ""
                screen.scanning = False
                self.run_worker(self.logs.reload_end(screen), group="logs", exit_on_error=False)
        pane.close_filter()
        body = next((w for w in pane.query(".pane--body") if w.focusable), None)
        if body is not None:
            body.focus()
        self._after_filter(pane)

    def _after_filter(self, pane: Pane) -> None:
        if isinstance(pane.screen, LogScreen):
            pane.screen.show_status()
        else:
            self.refresh_view()

    # -- logs ------------------------------------------------------------------------------------

    def action_logs(self) -> None:
        if self.pipelines.log_for_focus():
            return
        self.run_worker(self.logs.open_for_focus(), group="logs", exit_on_error=False)

    def action_log_view(self, action: str) -> None:
        """A log view's key from the palette: for the focused log view, else the one on this screen."""
        view = self.focused if isinstance(self.focused, LogView) else next(iter(self.screen.query(LogView)), None)
        if view is not None:
            self.run_worker(self.run_action(action, view), group="logs", exit_on_error=False)

    def _leave_log_screen(self, screen: LogScreen) -> None:
        if screen.scanning and self.logs.cancel_scan(screen):
            return  # esc stops a whole-file filter first; the next esc leaves
        if not screen.can_go_back:
            return
        self.run_worker(self.logs.close_screen(screen), group="logs", exit_on_error=False)
        self.pop_screen()

    def on_log_view_changed(self, event: LogView.Changed) -> None:
        screen = event.view.screen
        if isinstance(screen, LogScreen):
            screen.show_status()
        elif screen is self.dashboard:
            self.dashboard.show_status(self.engine.readings, {n: h.interval for n, h in self.engine.health.items()},
                                       self.clock())

    async def on_log_view_ask(self, event: LogView.Ask) -> None:
        await self.logs.ask(event.view, event.what)

    def on_log_view_line_chosen(self, event: LogView.LineChosen) -> None:
        if not isinstance(event.view.screen, LineModal):
            self.logs.show_line(event.line)

    def on_log_view_need_earlier(self, event: LogView.NeedEarlier) -> None:
        screen = event.view.screen
        if isinstance(screen, LogScreen):
            self.run_worker(self.logs.page_earlier(screen), group="page", exclusive=True, exit_on_error=False)

    def on_log_view_need_latest(self, event: LogView.NeedLatest) -> None:
        screen = event.view.screen
        if isinstance(screen, LogScreen):
            self.run_worker(self.logs.reload_end(screen), group="page", exclusive=True, exit_on_error=False)

    def action_actions(self) -> None:
        if not self.pipelines.actions_for_focus():
            self.actions.open_menu()

    def action_restart(self) -> None:
        self.actions.shortcut("restart")

    def action_start_stop(self) -> None:
        self.actions.start_or_stop()

    def action_audit(self) -> None:
        self.run_worker(self._show_audit(), group="audit", exit_on_error=False)

    async def _show_audit(self) -> None:
        try:
            entries = await asyncio.to_thread(self.engine.audit.read, 7 * 86400.0)
        except OSError as exc:
            self.notify(f"cannot read the audit log at {self.engine.audit.path}: {exc.strerror or exc}",
                        severity="error", timeout=8)
            return
        locks = await asyncio.to_thread(lambda: self.engine.lock_dir)  # it may create /run/lakedeck
        lines = [(f"{e.get('time', '?')} {e.get('event', '?')}",
                  f"{e.get('user', '?')}@{e.get('ssh_origin') or 'local'}  {e.get('target', '?')} {e.get('action', '?')}"
                  + (f" exit {e['exit_code']}" if e.get("exit_code") is not None else "")
                  + (f"  {e.get('reason') or e.get('error')}" if e.get("reason") or e.get("error") else ""))
                 for e in entries[-200:]] or [("", "no actions in the last 7 days")]
        self.push_screen(TextModal(f"Audit log · {self.engine.audit.path}", [("", locks.describe()), *lines]))

    def action_set_theme(self, name: str) -> None:
        self.theme = name


def run_console(config: Config, theme: str | None = None, read_only: bool = False, tail: bool = False,
                tail_lines: int = 1000, tail_read=None) -> int:
    app = LakedeckApp(config, theme=theme, read_only=read_only, tail=tail, tail_lines=tail_lines, tail_read=tail_read)
    app.exit_watchdog = True
    app.run()
    if app.ending_groups is not None:  # a signal ended it: what its actions started ends too
        signal.alarm(0)  # Textual's shutdown is over: the backstop is not needed
        interrupts.end_groups(app.ending_groups)
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
