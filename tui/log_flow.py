"""What log views ask of the console: typed input (find, jump to a time, save), a line in full, `l`,
older lines from disk, and filtering a whole file. File work runs in threads; the screen never waits."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from typing import TYPE_CHECKING

from backends.durations import parse_when
from backends.log_save import default_save_path, save_lines, whole_text
from backends.logtext import pretty_json
from backends.model import LogLine
from backends.text import human_bytes, one_line
from widgets.log_view import LogView
from widgets.pane import Pane
from widgets.status_table import StatusTable

from .line_modal import LineModal
from .log_screen import LogScreen

if TYPE_CHECKING:
    from .app import LakedeckApp

PAGE = 500  # older lines paged in at a time
HINTS = {
    "find": "find: a regular expression to highlight · enter go · n/N next/previous · esc close",
    "jump": "jump to: 14:05, 14:05:30, 2026-11-22 14:05, or 10m (ago) · enter go · esc close",
    "save": "save the shown lines to a new file · enter save · esc close",
}


def pane_of(widget: object) -> Pane | None:
    while widget is not None:
        if isinstance(widget, Pane):
            return widget
        widget = getattr(widget, "parent", None)
    return None


class LogFlow:
    def __init__(self, app: "LakedeckApp") -> None:
        self.app = app
        self._scans: dict[int, threading.Event] = {}  # id(screen) -> cancel

    # -- typed input ---------------------------------------------------------------------------

    async def ask(self, view: LogView, what: str) -> None:
        pane = pane_of(view)
        if pane is None:
            return
        initial = ""
        if what == "find" and view.finder is not None:
            initial = view.finder.text
        elif what == "save":
            initial = default_save_path(pane.title, self.app.clock())
        await pane.open_prompt(what, HINTS[what], initial)

    def submitted(self, pane: Pane, purpose: str, value: str) -> bool:
        """Act on a submitted prompt; False keeps the prompt open (the input was not understood)."""
        view = next(iter(pane.query(LogView)), None)
        if view is None:
            return True
        if purpose == "find":
            finder = view.set_find(value.strip())
            if finder is not None and finder.error:
                return False
        elif purpose == "jump":
            try:
                view.jump_to_time(parse_when(value, self.app.clock()))
            except ValueError as exc:
                self.app.notify(str(exc), severity="error", timeout=5)
                return False
        elif purpose == "save":
            if not value.strip():
                return False
            lines = list(view.lines)
            self.app.run_worker(self._save(lines, value.strip(), view.source_width > 0), group="save",
                                exit_on_error=False)
        return True

    async def _save(self, lines: list[LogLine], path: str, merged: bool) -> None:
        target = os.path.abspath(os.path.expanduser(path))
        try:
            count = await asyncio.to_thread(save_lines, lines, target, merged)
        except FileExistsError:
            self.app.notify(f"{target} exists: lakedeck never overwrites a file; choose another name",
                            severity="error", timeout=8)
            return
        except OSError as exc:
            self.app.notify(one_line(f"cannot save to {target}: {exc.strerror or exc}"), severity="error", timeout=8)
            return
        self.app.notify(f"Saved {count:,} lines to {target}", timeout=5)

    # -- a line in full ------------------------------------------------------------------------

    def show_line(self, line: LogLine) -> None:
        self.app.run_worker(self._show_line(line), group="line", exit_on_error=False)

    async def _show_line(self, line: LogLine) -> None:
        text, note = await asyncio.to_thread(whole_text, line)
        pretty = pretty_json(text) if len(text) < 4 * 1024 * 1024 else None
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(line.ts)) + f".{int(line.ts * 1000) % 1000:03d}"
        facts = [("source", line.source), ("time", when), ("level", line.level or "-")]
        if line.path:
            facts.append(("file", f"{line.path}" + (f" at byte {line.offset:,}" if line.offset >= 0 else "")))
        facts.append(("length", f"{len(text.encode('utf-8', 'replace')):,} bytes" + (f" ({note})" if note else "")))
        body = pretty.splitlines() if pretty is not None else [text]
        self.app.push_screen(LineModal("JSON line" if pretty is not None else "Log line", facts, body, text))

    # -- `l` -----------------------------------------------------------------------------------

    async def open_for_focus(self) -> None:
        focused = self.app.focused
        if isinstance(focused, LogView):
            if isinstance(focused.screen, LogScreen):
                self.app.notify("This screen already shows that log; esc goes back", timeout=3)
                return
            line = focused.selected_line
            if line is not None:
                await self.open_line_source(line, focused)
            return
        if isinstance(focused, StatusTable) and focused.selected_key:
            reading = self.app.engine.readings.get(focused.selected_key)
            if reading is not None:
                await self.open_service_logs(reading.source)
                return
        self.app.notify("Select a service or a log line first, then press l", timeout=3)

    async def open_service_logs(self, name: str) -> None:
        engine = self.app.engine
        spec, source = engine.spec(name), engine.sources.get(name)
        if spec is None or source is None:
            return
        if spec.section != "services":
            self.app.notify("l opens the logs of a service or of a log line: select one of those", timeout=4)
            return
        linked = spec.options.get("logs")
        if linked:
            screen = LogScreen(f"Logs · {name} ({linked})", {linked})
            await self._push_seeded(screen, lambda line: line.source == linked)
            return
        log_spec = source.log_spec() if hasattr(source, "log_spec") else None
        if log_spec is None:
            self.app.notify(f"No logs known for {name}: add `logs: NAME` to it in lakedeck.yaml, naming a "
                            "source under logs:", severity="warning", timeout=8)
            return
        await engine.attach(log_spec)
        await self.app.push_screen(LogScreen(f"Logs · {name}", {log_spec.name}, attached=(log_spec.name,)))

    async def open_line_source(self, line: LogLine, view: LogView) -> None:
        pager = None
        if line.path and os.path.isfile(line.path):
            from backends.log_pager import FilePager

            pager = FilePager(line.path, line.source)
        title = f"Logs · {line.source}" + (f" · {line.path}" if line.path else "")
        screen = LogScreen(title, {line.source}, pager=pager, path=line.path)
        await self._push_seeded(screen, lambda other: other.source == line.source
                                and (not line.path or other.path == line.path))

    async def _push_seeded(self, screen: LogScreen, keep) -> None:
        await self.app.push_screen(screen)
        if screen.pager is not None:
            await self.reload_end(screen)
        else:
            screen.view.write_lines([line for line in self.app.dashboard.log_view.buffer.lines if keep(line)])
        screen.show_status()

    async def close_screen(self, screen: LogScreen) -> None:
        self.cancel_scan(screen)
        for name in screen.attached:
            await self.app.engine.detach(name)

    # -- history from disk ---------------------------------------------------------------------

    async def page_earlier(self, screen: LogScreen) -> None:
        view = screen.view
        if screen.pager is None or screen.history_done or screen.scanning:
            return
        first = view.buffer.lines[0] if view.buffer.lines else None
        if first is None or first.path != screen.pager.path and first.offset < 0:
            return
        older = await asyncio.to_thread(screen.pager.before, first, PAGE)
        if not older:
            screen.history_done = True
            self.app.notify("That is the start of this log and its rotated files", timeout=3)
            return
        view.prepend_lines(older)
        screen.show_status()

    async def reload_end(self, screen: LogScreen, already: "concurrent.futures.Future[list[LogLine]] | None" = None) -> None:
        """Show the end of the screen's file again (``already``: that read, started before the console was)."""
        if screen.pager is None:
            screen.view.set_follow(True)
            return
        if already is not None:
            lines = await asyncio.wrap_future(already)
        else:
            lines = await asyncio.to_thread(screen.pager.tail, screen.tail_lines)
        view = screen.view
        view.clear()
        view.write_lines(lines)
        screen.remember_read(lines)
        screen.history_done = False
        screen.show_status()

    # -- filtering a whole file ----------------------------------------------------------------

    def start_scan(self, screen: LogScreen, text: str) -> bool:
        """Filter the whole file behind ``screen`` (and its history), streaming matches with progress.
        False when the pattern is refused: the view is left as it is and the reason is shown."""
        from backends.log_filter import LineFilter

        refused = LineFilter(text).error if text else ""
        if refused:
            self.app.notify(refused, severity="error", timeout=5)
            return False
        self.cancel_scan(screen)
        if screen.pager is None or not text:
            return True
        cancel = threading.Event()
        self._scans[id(screen)] = cancel
        screen.view.clear()
        screen.view.set_filter(text)
        screen.scanning = True
        self.app.run_worker(self._scan(screen, text, cancel), group="scan", exit_on_error=False)
        return True

    def cancel_scan(self, screen: LogScreen) -> bool:
        cancel = self._scans.pop(id(screen), None)
        if cancel is None:
            return False
        cancel.set()
        return True

    async def _scan(self, screen: LogScreen, text: str, cancel: threading.Event) -> None:
        from backends.log_filter import LineFilter

        pager, view = screen.pager, screen.view
        assert pager is not None
        loop = asyncio.get_running_loop()
        progress = [0, 0]
        found = [0]
        started = time.monotonic()

        def on_progress(done: int, total: int) -> None:
            progress[0], progress[1] = done, total

        def deliver(batch: list[LogLine]) -> None:
            found[0] += len(batch)
            view.write_lines(batch)
            percent = 100 * progress[0] // progress[1] if progress[1] else 0
            screen.scan_note = f"filtering the whole file: {percent}% · {found[0]:,} matches · esc stops"
            screen.show_status()

        def run() -> None:
            for batch in pager.scan(LineFilter(text), cancel, on_progress, include_history=True):
                if cancel.is_set():
                    break
                loop.call_soon_threadsafe(deliver, batch)

        try:
            await asyncio.to_thread(run)
        except Exception as exc:  # a file that vanished mid-scan: say so, keep what was found
            screen.scan_note = one_line(f"filter stopped: {exc}")
        else:
            seconds = time.monotonic() - started
            stopped = "stopped at" if cancel.is_set() else "filtered"
            screen.scan_note = (f"{stopped} {human_bytes(progress[0])} in {seconds:.1f}s: {found[0]:,} matches"
                                + (f", the newest {view.line_count:,} shown" if found[0] > view.line_count else ""))
        self._scans.pop(id(screen), None)
        screen.scanning = False
        screen.show_status()
