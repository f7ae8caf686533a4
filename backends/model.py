"""Plain data shared by the engine, the adapters, the widgets and the headless commands."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple


class State(enum.IntEnum):
    """Health of one reading, ordered so that ``max()`` gives the worst."""

    OK = 0
    WARN = 1
    UNKNOWN = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name

    def exit_code(self) -> int:
        """The exit status `lakedeck check` uses: 0 OK, 1 warning, 2 critical or unknown."""
        return {State.OK: 0, State.WARN: 1}.get(self, 2)


class Pane(str, enum.Enum):
    SERVICES = "services"
    RESOURCES = "resources"
    PROCESSES = "processes"
    PIPELINES = "pipelines"
    LOGS = "logs"
    BACKUPS = "backups"
    ALERTS = "alerts"
    TABLES = "tables"


@dataclass(frozen=True)
class Reading:
    """The latest word from one thing being watched.

    ``key`` is unique across the whole engine (``"<source>"`` or ``"<source>:<part>"``);
    ``reason`` is one line an operator can act on.
    """

    key: str
    source: str
    state: State
    reason: str
    ts: float
    pane: Pane = Pane.SERVICES

    @property
    def value(self) -> float | None:
        """The number kept in history for sparklines, if any."""
        return None

    def metrics(self) -> dict[str, float]:
        """The named numbers rules can test and the history store keeps; ``value`` is the sparkline's."""
        value = self.value
        return {} if value is None else {"value": value}


@dataclass(frozen=True)
class CheckReading(Reading):
    """One service check: an HTTP endpoint, a TCP port, a process, a command."""

    kind: str = ""
    target: str = ""
    latency_ms: float | None = None
    details: tuple[tuple[str, str], ...] = ()

    @property
    def value(self) -> float | None:
        return self.latency_ms


@dataclass(frozen=True)
class GaugeReading(Reading):
    """A resource level such as CPU, memory, a disk or a network rate."""

    label: str = ""
    amount: float = 0.0
    unit: str = "%"
    percent: float | None = None
    group: str = ""
    # Earlier (ts, value) points from the source itself (a Prometheus range query): the sparkline is full
    # from the first poll. The engine takes them only while it holds fewer points of its own.
    backfill: tuple[tuple[float, float], ...] = field(default=(), compare=False, repr=False)
    pane: Pane = Pane.RESOURCES

    @property
    def value(self) -> float | None:
        if self.state is State.UNKNOWN:  # unreadable: its amount is a placeholder, not a point of history
            return None
        return self.percent if self.percent is not None else self.amount


@dataclass(frozen=True)
class HostReading(Reading):
    """One machine of a fleet, as its node_exporter reports through Prometheus: one row per host.

    Percentages are 0-100; ``load`` is the 1-minute load per core; rates are bytes per second.
    None means the metric is missing for this host (the exporter does not report it, or the host is down).
    """

    instance: str = ""
    up: bool = True
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None  # the fullest filesystem
    disk_mount: str = ""
    load: float | None = None
    rx: float | None = None
    tx: float | None = None
    backfill: tuple[tuple[float, float], ...] = field(default=(), compare=False, repr=False)  # cpu, as for gauges
    pane: Pane = Pane.RESOURCES

    @property
    def value(self) -> float | None:
        return self.cpu

    def metrics(self) -> dict[str, float]:
        named = {"value": self.cpu, "cpu": self.cpu, "memory": self.memory, "disk": self.disk, "load": self.load,
                 "rx": self.rx, "tx": self.tx, "up": 1.0 if self.up else 0.0}
        return {k: v for k, v in named.items() if v is not None}


SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class AlertReading(Reading):
    """One alert: from lakedeck's own rules, Prometheus or Alertmanager; or an Alertmanager silence.

    ``status`` is pending, firing, resolved, silenced (firing, but a silence or inhibition holds it) or
    ``silence`` for a silence row itself. ``state`` follows severity while firing (critical -> CRITICAL,
    warning -> WARN) and is OK otherwise, so counts and the worst state mean "what pages now".
    """

    origin: str = ""  # lakedeck, prometheus, alertmanager
    name: str = ""  # the rule's name or the alertname; for a silence, its matchers
    severity: str = "warning"  # info, warning, critical
    status: str = "firing"
    since: float | None = None  # when it began to fire (or to be pending); a silence's start
    until: float | None = None  # when a silence ends, or when a resolved alert resolved
    target: str = ""  # what it is about: an instance, a reading key, a job
    why: str = ""  # value against threshold, or the alert's summary; a silence's comment and author
    amount: float | None = None  # the value that fired it, when there is one
    fingerprint: str = ""  # stable identity across polls and origins (acks, silences, one row per alert)
    labels: tuple[tuple[str, str], ...] = ()
    silenced_by: tuple[str, ...] = ()
    acked: bool = False
    pane: Pane = Pane.ALERTS

    @property
    def value(self) -> float | None:
        return None

    def metrics(self) -> dict[str, float]:
        return {}


@dataclass(frozen=True)
class BackupSet:
    """One backup set on disk: ``DEST/JOB/<UTC time>/`` with its manifest."""

    name: str  # the directory's name: the UTC time it was started, e.g. 20261122T080512Z (checked: see backup_sets)
    path: str
    started: float
    finished: float | None
    size: int  # bytes of its files
    files: int
    verified: str = ""  # "", "ok" or "failed: <why>" (the last verify of this set)
    verified_at: float | None = None
    unpacked: int | None = None  # bytes it takes once restored (None: a files set that did not record it)


@dataclass(frozen=True)
class BackupReading(Reading):
    """One backup job: its newest good set against its RPO, the sets it keeps, their verification."""

    kind: str = ""  # files, sqlite, postgres, command
    dest: str = ""
    last_good: float | None = None  # when the newest complete set finished
    rpo: float | None = None
    sets: tuple[BackupSet, ...] = ()  # newest first
    pane: Pane = Pane.BACKUPS

    @property
    def value(self) -> float | None:
        return float(self.sets[0].size) if self.sets else None  # the size trend


@dataclass(frozen=True)
class TableReading(Reading):
    """One Iceberg table, or a data check's verdict (``check`` set) on a table or a file."""

    catalog: str = ""
    table: str = ""  # namespace.table, or the check's name
    snapshot_id: int | None = None
    snapshot_at: float | None = None
    records: int | None = None
    data_files: int | None = None
    data_bytes: int | None = None
    snapshots: int = 0
    check: str = ""  # for a data check row: what it checks, e.g. "rows 1..; nulls user_id <= 1%"
    pane: Pane = Pane.TABLES

    @property
    def value(self) -> float | None:
        return None if self.records is None else float(self.records)


@dataclass(frozen=True)
class ProcessRow:
    pid: int
    name: str
    user: str
    cpu_percent: float
    rss_bytes: int
    started: float


@dataclass(frozen=True)
class ProcessTableReading(Reading):
    """The top processes of a host, by CPU and by memory."""

    by_cpu: tuple[ProcessRow, ...] = ()
    by_memory: tuple[ProcessRow, ...] = ()
    pane: Pane = Pane.PROCESSES


class LogLine(NamedTuple):  # a tuple, not a dataclass: made for every line of a busy log, 3x cheaper
    """One log line. ``text`` is as decoded (it may hold control characters: the view makes them visible);
    ``ts`` is when it was written if the line or its source says so, else when it was read."""

    source: str
    text: str
    ts: float
    level: str = ""  # "critical", "error", "warn", "info", "debug" or "" (see backends.logtext)
    path: str = ""  # the file it came from, when it came from a file
    offset: int = -1  # where the line starts in ``path``, so that a cut line can be read whole
    cut: int = 0  # bytes left off the end of ``text`` (a very long line)


@dataclass(frozen=True)
class LogReading(Reading):
    """Lines that arrived in one log since the previous poll."""

    path: str = ""
    lines: tuple[LogLine, ...] = ()
    pane: Pane = Pane.LOGS


@dataclass(frozen=True)
class PipelineReading(Reading):
    """One pipeline: an Airflow DAG, a dbt project, an engine's pipeline, a lineage job.

    Times are epoch seconds; ``last_success`` is what freshness (``max_age``) is judged by.
    """

    kind: str = ""  # the adapter: airflow, dbt, rest, lineage
    name: str = ""  # as its own system names it: a DAG id, a project, a job
    status: str = ""  # the last run's state in that system's words: success, failed, running, queued...
    paused: bool = False
    last_start: float | None = None
    last_duration: float | None = None
    last_success: float | None = None
    next_run: float | None = None
    failures: int = 0  # failed runs in the last 24 h, failing dbt nodes, an engine's error count
    ref: tuple[str, ...] = ()  # what the adapter needs to open it or act on it
    can_open: bool = True  # enter lists its runs, nodes or lineage
    pane: Pane = Pane.PIPELINES

    @property
    def value(self) -> float | None:
        return self.last_duration


@dataclass(frozen=True)
class PipelineItem:
    """One row of a pipeline drill-down: a DAG's run, a run's task, a dbt node, a job's upstream dataset."""

    ref: tuple[str, ...]
    name: str
    state: State
    status: str = ""
    started: float | None = None
    duration: float | None = None
    note: str = ""  # one line: a failure's message, a dataset's namespace
    depth: int = 0  # indentation in a tree (lineage)
    can_open: bool = False  # enter lists what is under it
    has_log: bool = False  # l shows its log


@dataclass(frozen=True)
class Listing:
    """What opening a pipeline (or a run, or a job) shows."""

    title: str
    columns: tuple[str, ...] = ("State", "Name", "Status", "Started", "Duration", "Note")
    items: tuple[PipelineItem, ...] = ()
    note: str = ""  # e.g. "the latest 25 runs"


@dataclass
class SourceHealth:
    """How the engine's loop for one source is doing."""

    name: str
    kind: str
    interval: float
    last_poll: float | None = None
    last_ok: float | None = None
    failures: int = 0
    last_error: str = ""
    next_delay: float = 0.0
    polls: int = 0


@dataclass(frozen=True)
class Update:
    """What one finished poll changed, as handed to subscribers."""

    source: str
    readings: tuple[Reading, ...]
    health: SourceHealth = field(compare=False)
