"""Pipelines beyond the table: open a DAG, a run, a dbt project or a lineage job; a task's log; their actions.

Every read goes through the source's adapter with a time limit; a failure is a notification (or a stale
listing), never a crash.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from backends.adapters.pipeline_base import PipelineError
from backends.durations import format_duration
from backends.model import BackupReading, Listing, PipelineItem, PipelineReading, State, TableReading
from backends.text import one_line
from widgets.status_table import StatusTable

from .log_screen import LogScreen
from .pipeline_screen import PipelineScreen

if TYPE_CHECKING:
    from .app import LakedeckApp

MIN_READ_TIME = 10.0  # a drill-down may page through more than a poll does: never less than this
MIN_RELOAD = 2.0  # an open listing is read again this often at most


class PipelineFlow:
    def __init__(self, app: "LakedeckApp") -> None:
        self.app = app

    @property
    def engine(self):
        return self.app.engine

    def _budget(self, source_name: str) -> float:
        source = self.engine.sources[source_name]
        return max(MIN_READ_TIME, source.timeout)

    async def _read(self, source_name: str, ref: tuple[str, ...]) -> Listing:
        """The listing under ``ref``; PipelineError (one line) when it cannot be read in time."""
        source = self.engine.sources.get(source_name)
        if source is None or not hasattr(source, "open"):
            raise PipelineError(f"{source_name} has nothing to open")
        budget = self._budget(source_name)
        try:
            return await asyncio.wait_for(source.open(ref), budget)
        except asyncio.TimeoutError:
            raise PipelineError(f"{source_name} did not answer within {format_duration(budget)}") from None
        except PipelineError:
            raise
        except Exception as exc:  # an adapter bug is a notification, not a dead console
            raise PipelineError(one_line(f"{type(exc).__name__}: {exc}")) from None

    # -- opening -------------------------------------------------------------------------------

    def selected_reading(self) -> PipelineReading | None:
        focused = self.app.focused
        if isinstance(focused, StatusTable) and focused.selected_key:
            reading = self.engine.readings.get(focused.selected_key)
            if isinstance(reading, PipelineReading):
                return reading
        return None

    def open_reading(self, reading: PipelineReading) -> None:
        self.app.run_worker(self._open(reading.source, reading.ref, f"Pipelines · {reading.key}"),
                            group="pipelines", exclusive=True, exit_on_error=False)

    def open_listing(self, reading: BackupReading | TableReading) -> None:
        """A backup job's sets, or a table's snapshots: the same drill-down screen as a pipeline's runs."""
        if isinstance(reading, TableReading):
            ref, title = (reading.table,), f"Tables · {reading.key}"
        else:
            ref, title = (), f"Backups · {reading.key}"
        self.app.run_worker(self._open(reading.source, ref, title), group="pipelines", exclusive=True,
                            exit_on_error=False)

    def open_selected(self, screen: PipelineScreen) -> None:
        item = screen.selected
        if item is None:
            return
        if item.can_open:
            title = f"{screen.title_text} › {plain(item.name)}"
            self.app.run_worker(self._open(screen.source, item.ref, title), group="pipelines", exclusive=True,
                                exit_on_error=False)
        elif item.has_log:
            self.app.run_worker(self._show_log(screen.source, item), group="pipelines", exit_on_error=False)
        else:
            self.app.notify(f"Nothing under {plain(item.name)}: a shows its actions", timeout=3)

    async def _open(self, source_name: str, ref: tuple[str, ...], title: str) -> None:
        try:
            listing = await self._read(source_name, ref)
        except PipelineError as exc:
            self.app.notify(f"Cannot open {title.split(' · ', 1)[-1]}: {exc}", severity="error", timeout=6)
            return
        screen = PipelineScreen(source_name, ref, title, listing, self.app.clock())
        await self.app.push_screen(screen)
        interval = max(MIN_RELOAD, self.engine.sources[source_name].interval)
        screen.set_interval(interval, lambda: self.reload(screen))

    def reload(self, screen: PipelineScreen) -> None:
        if self.app.screen is screen and not self.app.paused:
            self.app.run_worker(self._reload(screen), group=f"reload:{id(screen)}", exclusive=True,
                                exit_on_error=False)

    async def _reload(self, screen: PipelineScreen) -> None:
        try:
            listing = await self._read(screen.source, screen.ref)
        except PipelineError as exc:
            if screen.is_attached:
                screen.show_error(str(exc), self.app.clock())
            return
        if screen.is_attached:
            screen.show(listing, self.app.clock())

    # -- logs ----------------------------------------------------------------------------------

    def log_for_focus(self) -> bool:
        """`l` on a pipeline row or a drill-down item: the log of the task it is, or of its latest failed
        task. False when the focus is not on a pipeline (the caller handles it)."""
        screen = self.app.screen
        if isinstance(screen, PipelineScreen):
            item = screen.selected
            if item is None:
                return True
            if item.has_log:
                self.app.run_worker(self._show_log(screen.source, item), group="pipelines", exit_on_error=False)
            elif not item.can_open:
                self.app.notify(f"{plain(item.name)} has no log", timeout=3)
            else:
                self.app.run_worker(self._find_log(screen.source, item.ref, plain(item.name)), group="pipelines",
                                    exit_on_error=False)
            return True
        reading = self.selected_reading()
        if reading is None:
            return False
        if reading.can_open:
            self.app.run_worker(self._find_log(reading.source, reading.ref, reading.key), group="pipelines",
                                exit_on_error=False)
        else:
            self.app.notify(f"{reading.key} has no logs to show", timeout=3)
        return True

    async def _find_log(self, source_name: str, ref: tuple[str, ...], what: str) -> None:
        """The log of the failed task under ``ref`` (a DAG: its latest failed run; a run: its failed task)."""
        try:
            for _ in range(2):  # a DAG -> a run -> a task
                listing = await self._read(source_name, ref)
                with_log = [i for i in listing.items if i.has_log]
                if with_log:
                    await self._show_log(source_name, _worst_first(with_log))
                    return
                openable = [i for i in listing.items if i.can_open]
                if not openable:
                    break
                ref = _worst_first(openable).ref
        except PipelineError as exc:
            self.app.notify(f"Cannot find a log under {what}: {exc}", severity="error", timeout=6)
            return
        self.app.notify(f"No task logs under {what}", timeout=3)

    async def _show_log(self, source_name: str, item: PipelineItem) -> None:
        source = self.engine.sources[source_name]
        budget = self._budget(source_name)
        try:
            lines = await asyncio.wait_for(source.log(item.ref), budget)
        except asyncio.TimeoutError:
            self.app.notify(f"The log of {plain(item.name)} did not come within {format_duration(budget)}",
                            severity="error", timeout=6)
            return
        except PipelineError as exc:
            self.app.notify(f"Cannot read the log of {plain(item.name)}: {exc}", severity="error", timeout=6)
            return
        title = f"Log · {source_name} · {' / '.join(item.ref[1:])}"
        screen = LogScreen(title, set(), empty="The log is empty.")
        await self.app.push_screen(screen)
        screen.view.write_lines(lines)
        screen.show_status()

    # -- actions -------------------------------------------------------------------------------

    def actions_for_focus(self) -> bool:
        """`a` on a drill-down item; False when the focus is not in a drill-down."""
        screen = self.app.screen
        if not isinstance(screen, PipelineScreen):
            return False
        item = screen.selected
        if item is None:
            return True
        actions = self.engine.item_actions(screen.source, item)
        target = actions[0].target if actions else f"{screen.source}:{plain(item.name)}"
        self.app.actions.offer(target, actions)
        return True

    def after_action(self) -> None:
        """An action finished: read the open listing again at once, so that its outcome shows."""
        if isinstance(self.app.screen, PipelineScreen):
            self.reload(self.app.screen)


def plain(name: str) -> str:
    """An item's name without the tree's indentation and arrows (``  ↓ orders`` is ``orders``)."""
    return name.strip().lstrip("↑↓← →").strip()


def _worst_first(items: list[PipelineItem]) -> PipelineItem:
    """The failed one if any (the first listed: adapters list newest first), else the first."""
    return max(items, key=lambda i: (i.state is State.CRITICAL, i.state is not State.OK, -items.index(i)))
