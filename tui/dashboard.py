"""The dashboard: every pane together; each can be opened full screen."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from textual.app import ComposeResult
from textual.containers import Grid
from textual.screen import Screen
from textual.widget import Widget

from backends.model import (AlertReading, BackupReading, CheckReading, GaugeReading, HostReading, Pane as PaneKind,
                            PipelineReading, ProcessRow, ProcessTableReading, Reading, TableReading)
from backends.thresholds import levels_for
from backends.keymap import KEYS
from widgets.key_bar import KeyBar
from backends.model import LogLine
from widgets.log_view import LogView
from widgets.cells import Row
from widgets.pane import Pane
from widgets.status_bar import StatusBar
from widgets.status_table import StatusTable

from . import rows
from .bindings import bindings

PANES: tuple[tuple[str, str, int], ...] = (
    ("services", "Services", 1),
    ("resources", "Resources", 2),
    ("pipelines", "Pipelines", 3),
    ("logs", "Logs", 4),
    ("backups", "Backups", 5),
    ("tables", "Tables", 6),
    ("alerts", "Alerts", 7),
)
# Panes shown in the grid only when their section is configured (their number still opens them, with the
# hint of what would fill them): an unused pane would take rows the others need at 80x24.
OPTIONAL = {"alerts": ("alerts",), "pipelines": ("pipelines",), "backups": ("backups",), "tables": ("tables",)}
GAUGE_GROUP_ORDER = {"": 0, "disks": 1, "network": 2}  # per-core and other long groups last
GRID_ORDER = ("services", "resources", "alerts", "pipelines", "backups", "tables", "logs")
EMPTY = {
    "services": "Empty: add checks under services: in lakedeck.yaml (http, tcp, process, command).",
    "resources": "Empty: add a host under hosts: in lakedeck.yaml (kind: local is this machine).",
    "pipelines": "Empty: add sources under pipelines: in lakedeck.yaml (airflow, dbt, rest, lineage).",
    "logs": "Empty: add files under logs: in lakedeck.yaml (path: /var/log/app/*.log).",
    "backups": "Empty: add jobs under backups: in lakedeck.yaml (files, sqlite, postgres, command).",
    "tables": "Empty: add Iceberg catalogs under tables: in lakedeck.yaml (sql, rest).",
    "alerts": "Empty: add rules: or sources under alerts: in lakedeck.yaml (prometheus, alertmanager).",
}
QUIET = "No alerts: nothing firing, pending or silenced."


def top_processes(tables: Sequence[ProcessTableReading]) -> list[ProcessRow]:
    """The top by CPU, then as many more by memory: a steady number of rows, so the table never re-lays out."""
    chosen: dict[int, ProcessRow] = {}
    for table in tables:
        for proc in table.by_cpu:
            chosen.setdefault(proc.pid, proc)
        extra = [p for p in table.by_memory if p.pid not in chosen][: len(table.by_cpu)]
        for proc in extra:
            chosen[proc.pid] = proc
    return list(chosen.values())


class Dashboard(Screen):
    BINDINGS = bindings(screen=True)
    processes: list[ProcessRow] = []  # as the processes table shows them, by rank
    _row_cache: dict[str, tuple[Reading, tuple, Row]] = {}
    _pipeline_cache: dict[str, tuple[tuple, float, Row]] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        numbers = {name: number for name, _, number in PANES}
        titles = {name: title for name, title, _ in PANES}
        used = [name for name in GRID_ORDER if self.is_used(name)]
        optional = [name for name in used if name in OPTIONAL]
        with Grid(id="panes") as grid:
            # services and resources, the optional panes two by two, then the logs across the width
            grid.styles.grid_size_rows = 2 + (len(optional) + 1) // 2
            grid.styles.grid_rows = " ".join(["3fr"] + ["auto"] * ((len(optional) + 1) // 2) + ["2fr"])
            for name in GRID_ORDER:
                classes = "" if name in used else "-unused"
                if name in optional and len(optional) % 2 and name == optional[-1]:
                    classes = "-wide"
                with Pane(titles[name], numbers[name], EMPTY[name], id=f"pane-{name}", classes=classes) as pane:
                    yield pane.empty_notice
                    yield from self._pane_body(name)
        app = self.app
        yield KeyBar([(app.key_display(spec.id).split(" or ")[0], spec.label) for spec in KEYS if spec.show])

    def is_used(self, name: str) -> bool:
        return name not in OPTIONAL or any(self.app.config.section(section) for section in OPTIONAL[name])

    def _pane_body(self, name: str) -> Iterable[Widget]:
        if name == "services":
            yield StatusTable(rows.SERVICE_COLUMNS, id="services-table", classes="pane--body")
        elif name == "resources":
            if any(spec.kind == "prometheus" for spec in self.app.config.section("hosts")):
                yield StatusTable(rows.HOST_COLUMNS, id="hosts-table", classes="pane--body")
            yield StatusTable(rows.GAUGE_COLUMNS, id="gauges-table", classes="pane--body")
            yield StatusTable(rows.PROCESS_COLUMNS, id="processes-table", classes="pane--body")
        elif name == "alerts" and self.app.config.section("alerts"):
            yield StatusTable(rows.ALERT_COLUMNS, id="alerts-table", classes="pane--body")
        elif name == "backups" and self.app.config.section("backups"):
            yield StatusTable(rows.BACKUP_COLUMNS, id="backups-table", classes="pane--body")
        elif name == "tables" and self.app.config.section("tables"):
            yield StatusTable(rows.TABLE_COLUMNS, id="tables-table", classes="pane--body")
        elif name == "pipelines" and self.app.config.section("pipelines"):  # no table to build when none is watched
            yield StatusTable(rows.PIPELINE_COLUMNS, id="pipelines-table", classes="pane--body")
        elif name == "logs":
            yield LogView(id="log-view", classes="pane--body")

    def on_mount(self) -> None:
        self.query_one("#services-table").focus()

    def pane(self, name: str) -> Pane:
        return self.query_one(f"#pane-{name}", Pane)

    def pane_names(self) -> list[str]:
        return [name for name, _, _ in PANES]

    def pane_of(self, widget: Widget | None) -> str | None:
        while widget is not None:
            if isinstance(widget, Pane):
                return widget.id.removeprefix("pane-") if widget.id else None
            widget = widget.parent if isinstance(widget.parent, Widget) else None
        return None

    def focus_pane(self, name: str) -> None:
        targets = [w for w in self.pane(name).query(".pane--body") if w.focusable]
        if targets:
            targets[0].focus()
        else:
            self.set_focus(None)

    # -- data ------------------------------------------------------------------------------------

    def apply(self, readings: Mapping[str, Reading], history: Mapping[str, Sequence[tuple[float, float]]],
              intervals: Mapping[str, float], now: float, transitions: Mapping[str, str] = {}) -> None:
        by_pane = self._by_pane(readings)

        def stale(r: Reading) -> bool:
            return rows.is_stale(r, intervals.get(r.source, 2.0), now)

        cache, self._row_cache = self._row_cache, {}

        def row(reading: Reading, *inputs, build) -> Row:
            """The row made last time for this very reading and inputs, else a new one: with 200
            services and a poll landing every few milliseconds, rebuilding every row is most of the cost."""
            hit = cache.get(reading.key)
            if hit is None or hit[0] is not reading or hit[1] != inputs:
                hit = (reading, inputs, build())
            self._row_cache[reading.key] = hit
            return hit[2]

        services = [r for r in by_pane.get(PaneKind.SERVICES, []) if isinstance(r, CheckReading)]
        services.sort(key=lambda r: (-r.state, r.key))
        self.query_one("#services-table", StatusTable).set_rows([
            row(r, stale(r), transitions.get(r.source, ""),
                build=lambda r=r: rows.service_row(r, stale(r), transitions.get(r.source, "")))
            for r in services])

        gauges = [r for r in by_pane.get(PaneKind.RESOURCES, []) if isinstance(r, GaugeReading)]
        gauges.sort(key=lambda g: GAUGE_GROUP_ORDER.get(g.group, len(GAUGE_GROUP_ORDER)))
        self.query_one("#gauges-table", StatusTable).set_rows([
            row(g, stale(g), build=lambda g=g: rows.gauge_row(g, (v for _, v in history.get(g.key, ())), stale(g)))
            for g in gauges])
        pipelines = [r for r in by_pane.get(PaneKind.PIPELINES, []) if isinstance(r, PipelineReading)]
        pipelines.sort(key=lambda r: (-r.state, r.key))  # failures first
        if pipelines:
            self.query_one("#pipelines-table", StatusTable).set_rows(
                [self._pipeline_row(p, stale(p), transitions.get(p.key, ""), now) for p in pipelines])
        if len(self._pipeline_cache) > 2 * len(pipelines) + 16:
            alive = {p.key for p in pipelines}
            self._pipeline_cache = {k: v for k, v in self._pipeline_cache.items() if k in alive}

        hosts = [r for r in by_pane.get(PaneKind.RESOURCES, []) if isinstance(r, HostReading)]
        if hosts:
            hosts.sort(key=lambda h: (-h.state, h.instance))
            self.query_one("#hosts-table", StatusTable).set_rows([
                row(h, stale(h), build=lambda h=h: rows.host_row(h, (v for _, v in history.get(h.key, ())), stale(h),
                                                                self._host_levels(h.source)))
                for h in hosts])
        alerts = [r for r in by_pane.get(PaneKind.ALERTS, []) if isinstance(r, AlertReading)]
        if self.app.config.section("alerts"):
            self.query_one("#alerts-table", StatusTable).set_rows(
                [rows.alert_row(a, stale(a), now, transitions.get(a.key, "")) for a in rows.one_per_alert(alerts)])

        if self.app.config.section("backups"):
            jobs = sorted((r for r in by_pane.get(PaneKind.BACKUPS, []) if isinstance(r, BackupReading)),
                          key=lambda r: (-r.state, r.key))
            self.query_one("#backups-table", StatusTable).set_rows([
                row(j, stale(j), transitions.get(j.key, ""),
                    build=lambda j=j: rows.backup_row(j, stale(j), now, transitions.get(j.key, "")))
                for j in jobs])
        if self.app.config.section("tables"):
            catalog = sorted((r for r in by_pane.get(PaneKind.TABLES, []) if isinstance(r, TableReading)),
                             key=lambda r: (-r.state, bool(r.check), r.key))
            self.query_one("#tables-table", StatusTable).set_rows([
                row(t, stale(t), transitions.get(t.key, ""),
                    build=lambda t=t: rows.table_row(t, stale(t), now, transitions.get(t.key, "")))
                for t in catalog])

        tables = [r for r in by_pane.get(PaneKind.PROCESSES, []) if isinstance(r, ProcessTableReading)]
        self.processes = sorted(top_processes(tables), key=lambda p: (-p.cpu_percent, -p.rss_bytes))
        self.query_one("#processes-table", StatusTable).set_rows(
            [rows.process_row(p, rank, now) for rank, p in enumerate(self.processes)])
        for table in self.pane("resources").query(StatusTable):  # a fleet without a local host: no empty tables
            table.set_class(not table.keys, "-none")
        self.show_status(readings, intervals, now, by_pane)

    def _host_levels(self, source: str) -> dict[str, tuple[float, float]]:
        spec = next((s for s in self.app.config.section("hosts") if s.name == source), None)
        overrides = spec.options.get("thresholds") if spec else None
        return {metric: levels_for(metric, overrides, self.app.config.thresholds)
                for metric in ("cpu", "memory", "disk", "load")}

    def _pipeline_row(self, reading: PipelineReading, stale: bool, transition: str, now: float) -> Row:
        """The row made before for this reading while its texts still hold (its times move in whole minutes):
        with a thousand DAGs, building every row at every refresh would take most of a frame."""
        shown = (reading.state, reading.reason, reading.status, reading.paused, reading.last_start,
                 reading.last_duration, reading.next_run, reading.failures, stale, transition)
        hit = self._pipeline_cache.get(reading.key)
        if hit is None or hit[0] != shown or now >= hit[1]:  # each poll brings new readings: compare what shows
            times, until = rows.pipeline_times(reading, now)
            hit = (shown, until, rows.pipeline_row(reading, stale, times, transition))
            self._pipeline_cache[reading.key] = hit
        return hit[2]

    @staticmethod
    def _by_pane(readings: Mapping[str, Reading]) -> dict[PaneKind, list[Reading]]:
        by_pane: dict[PaneKind, list[Reading]] = {}
        for reading in readings.values():
            by_pane.setdefault(reading.pane, []).append(reading)
        return by_pane

    def show_status(self, readings: Mapping[str, Reading], intervals: Mapping[str, float], now: float,
                    by_pane: dict[PaneKind, list[Reading]] | None = None) -> None:
        """Only the panes' borders (when each was refreshed, stale or not): what moves with the clock alone."""
        by_pane = by_pane if by_pane is not None else self._by_pane(readings)
        self._set_pane("services", by_pane.get(PaneKind.SERVICES, []), intervals, now)
        self._set_pane("resources", by_pane.get(PaneKind.RESOURCES, []) + by_pane.get(PaneKind.PROCESSES, []),
                       intervals, now)
        self._set_pane("pipelines", by_pane.get(PaneKind.PIPELINES, []), intervals, now)
        self._set_pane("logs", by_pane.get(PaneKind.LOGS, []), intervals, now)
        if self.app.config.section("alerts"):
            self._set_pane("alerts", by_pane.get(PaneKind.ALERTS, []), intervals, now, quiet=QUIET)
        for name, kind in (("backups", PaneKind.BACKUPS), ("tables", PaneKind.TABLES)):
            if self.app.config.section(name):
                self._set_pane(name, by_pane.get(kind, []), intervals, now)

    def _set_pane(self, name: str, readings: Sequence[Reading], intervals: Mapping[str, float], now: float,
                  quiet: str = "") -> None:
        pane = self.pane(name)
        pane.show_empty(not readings, quiet)
        status, stale = rows.pane_status(readings, intervals, now)
        if name == "logs":
            status = " · ".join(part for part in (self.log_view.status(), status) if part)
        else:
            active_filter = self.pane(name).filter_text()
            if active_filter:
                status = f"filter: {active_filter} · {status}" if status else f"filter: {active_filter}"
        pane.set_status(status, stale)

    @property
    def log_view(self) -> LogView:
        return self.query_one("#log-view", LogView)

    def write_logs(self, lines: Sequence[LogLine]) -> None:
        self.log_view.write_lines(lines)

    def on_status_table_row_selected(self, event: StatusTable.RowSelected) -> None:
        event.stop()
        self.app.action_details()
