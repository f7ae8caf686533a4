"""What the Iceberg adapter reads from a catalog, as plain data, and the pure rules it judges it by.

The functions that touch pyiceberg run in worker threads and import it there (``pyiceberg.catalog`` costs
~380 ms): nothing here imports it at module level.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

from ..durations import format_duration, parse_duration
from ..text import human_bytes

# Many files that are small on average: the compaction hint. Fewer files than this are never worth compacting.
COMPACTION_MIN_FILES = 16


@dataclass(frozen=True)
class TableFacts:
    """One table as its current metadata says, read without touching data or manifests."""

    namespace: str
    name: str
    location: str  # the metadata file: when the catalog points elsewhere, the table changed
    snapshot_id: int | None
    snapshot_at: float | None  # epoch seconds
    records: int | None
    data_files: int | None
    data_bytes: int | None
    snapshots: int

    @property
    def ident(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class SnapshotFacts:
    id: int
    parent: int | None
    at: float
    operation: str
    summary: Mapping[str, str]


# -- opening ---------------------------------------------------------------------------------------

def sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///PATH`` URI (None for another database or an in-memory one)."""
    if not uri.startswith("sqlite:"):
        return None
    path = unquote(urlsplit(uri).path)
    if uri.startswith("sqlite:////"):
        path = "/" + path.lstrip("/")
    elif uri.startswith("sqlite:///"):
        path = path.removeprefix("/")
    return path.split("?")[0] or None


def open_catalog(name: str, kind: str, options: Mapping[str, Any]) -> Any:
    """A pyiceberg catalog; raises with a one-line reason when it cannot be opened."""
    uri = str(options["uri"])
    if kind == "sql":
        path = sqlite_path(uri)
        if path is not None and path != ":memory:" and not os.path.isfile(path):
            # SQLite would create an empty file there: a typo must not grow a new, empty catalog
            raise FileNotFoundError(f"the catalog database {path} does not exist")
        from pyiceberg.catalog.sql import SqlCatalog

        props = {"uri": uri, "init_catalog_tables": "false"}  # a console never creates catalog tables
        if options.get("warehouse"):
            props["warehouse"] = str(options["warehouse"])
        catalog = SqlCatalog(name, **props)
        list_locations(catalog, [])  # fail now, with the reason, when it is not a catalog
        return catalog
    from pyiceberg.catalog.rest import RestCatalog

    props = {"uri": uri}
    for key in ("warehouse", "token"):
        if options.get(key):
            props[key] = str(options[key])
    return RestCatalog(name, **props)


def list_locations(catalog: Any, namespaces: list[str]) -> dict[tuple[str, str], str]:
    """{(namespace, table): metadata location} of a SQL catalog in one query (the catalog's own table)."""
    from pyiceberg.catalog.sql import IcebergTables
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    stmt = select(IcebergTables.table_namespace, IcebergTables.table_name, IcebergTables.metadata_location).where(
        IcebergTables.catalog_name == catalog.name)
    type_filter = getattr(catalog, "_iceberg_type_filter", lambda: None)()  # views share the table in schema v1
    if type_filter is not None:
        stmt = stmt.where(type_filter)
    if namespaces:
        stmt = stmt.where(IcebergTables.table_namespace.in_(namespaces))
    with Session(catalog.engine) as session:
        return {(ns, table): location or "" for ns, table, location in session.execute(stmt)}


def list_tables(catalog: Any, namespaces: list[str]) -> list[tuple[str, str]]:
    """(namespace, table) of a catalog without a cheap location listing (REST)."""
    wanted = namespaces or [".".join(ns) for ns in catalog.list_namespaces()]
    return [(ns, ident[-1]) for ns in wanted for ident in catalog.list_tables(ns)]


def facts_of(table: Any, namespace: str, name: str) -> TableFacts:
    """The figures the Tables pane shows, from the metadata pyiceberg loaded: the current snapshot's summary."""
    metadata = table.metadata
    current = metadata.current_snapshot()
    summary = current.summary if current is not None and current.summary is not None else None
    return TableFacts(
        namespace=namespace, name=name, location=table.metadata_location or "",
        snapshot_id=current.snapshot_id if current is not None else None,
        snapshot_at=current.timestamp_ms / 1000 if current is not None else None,
        records=_number(summary, "total-records"), data_files=_number(summary, "total-data-files"),
        data_bytes=_number(summary, "total-files-size"), snapshots=len(metadata.snapshots),
    )


def _number(summary: Any, key: str) -> int | None:
    if summary is None:
        return None
    try:
        return int(summary.get(key))
    except (TypeError, ValueError):
        return None


def snapshots_of(table: Any) -> list[SnapshotFacts]:
    """Every snapshot of a table, newest first."""
    found = []
    for snap in table.metadata.snapshots:
        summary = snap.summary
        props = dict(summary.additional_properties) if summary is not None else {}
        operation = summary.operation.value if summary is not None else ""
        found.append(SnapshotFacts(snap.snapshot_id, snap.parent_snapshot_id, snap.timestamp_ms / 1000, operation,
                                   props))
    return sorted(found, key=lambda s: (s.at, s.id), reverse=True)


def refs_of(table: Any) -> dict[int, list[str]]:
    """{snapshot id: ["tag v1", "branch main"]}: the tags and branches that point at each snapshot."""
    found: dict[int, list[str]] = {}
    for ref_name, ref in sorted(table.metadata.refs.items()):
        found.setdefault(ref.snapshot_id, []).append(f"{ref.snapshot_ref_type.value} {ref_name}")
    return found


def ref_heads(table: Any) -> tuple[set[int], set[int]]:
    """(the snapshots branches point at, the snapshots tags point at)."""
    branches, tags = set(), set()
    for ref in table.metadata.refs.values():
        (tags if ref.snapshot_ref_type.value == "tag" else branches).add(ref.snapshot_id)
    return branches, tags


def ancestors(snapshots: list[SnapshotFacts], current: int | None) -> list[int]:
    """The current snapshot and its parents, newest first (what rollback may go back to)."""
    by_id = {s.id: s for s in snapshots}
    chain, seen = [], set()
    while current is not None and current in by_id and current not in seen:
        chain.append(current)
        seen.add(current)
        current = by_id[current].parent
    return chain


# -- pure rules ------------------------------------------------------------------------------------

_LAST = re.compile(r"^(?:keep\s+)?(?:the\s+)?last\s+(\d+)$")
_OLDER = re.compile(r"^(?:older\s+than\s+)?(\S+)$")


def parse_expire_rule(value: str) -> tuple[str, float]:
    """``7d`` / ``older than 7d`` -> ("older", 604800.0); ``last 5`` / ``keep last 5`` -> ("last", 5).
    ``ValueError`` with a one-line reason otherwise."""
    text = " ".join(value.strip().lower().split())
    last = _LAST.match(text)
    if last:
        count = int(last.group(1))
        if count < 1:
            raise ValueError("keep at least the last 1 snapshot (the current one is never expired)")
        return "last", float(count)
    older = _OLDER.match(text)
    if older:
        try:
            seconds = parse_duration(older.group(1))
        except ValueError:
            seconds = 0.0
        if seconds > 0:
            return "older", seconds
    raise ValueError(f"expected a duration such as 7d (expire snapshots older than it) or 'last N' "
                     f"(keep the newest N), not {value.strip()[:40]!r}")


def rule_text(rule: tuple[str, float]) -> str:
    how, amount = rule
    if how == "last":
        return f"keep the last {int(amount)} of the current history; unreferenced ones go too"
    return f"older than {format_duration(amount)}"


def expiring(snapshots: list[SnapshotFacts], rule: tuple[str, float], now: float, current: int | None,
             branches: set[int] = frozenset(), tags: set[int] = frozenset()) -> list[SnapshotFacts]:
    """The snapshots ``rule`` would expire, oldest first. Never the current snapshot, a branch's or a tag's.

    ``older than D``: every other snapshot committed before now - D.
    ``last N``: the current history (the current snapshot and its ancestors) beyond its newest N, and every
    *unreferenced* snapshot: off the current history, in no other branch's history and not a tag's (what a
    rollback left behind: nothing can reach it any more). Snapshots in another branch's history stay.
    """
    how, amount = rule
    protected = set(branches) | set(tags) | ({current} if current is not None else set())
    if how == "last":
        history = ancestors(snapshots, current)
        elsewhere = {i for head in branches if head != current for i in ancestors(snapshots, head)}
        doomed = set(history[int(amount):]) | {s.id for s in snapshots if s.id not in history}
        candidates = [s for s in snapshots if s.id in doomed and s.id not in elsewhere]
    else:
        candidates = [s for s in snapshots if s.at < now - amount]
    return sorted((s for s in candidates if s.id not in protected), key=lambda s: (s.at, s.id))


def when(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def snapshot_line(snap: SnapshotFacts, now: float) -> str:
    return f"snapshot {snap.id} · {when(snap.at)} ({format_duration(now - snap.at)} ago) · {snap.operation}"


def change_note(summary: Mapping[str, str]) -> str:
    """``+1,000 records, +2 files`` (and removals) from a snapshot's summary."""
    parts = []
    for key, sign, noun in (("added-records", "+", "records"), ("deleted-records", "-", "records"),
                            ("added-data-files", "+", "files"), ("deleted-data-files", "-", "files")):
        try:
            count = int(summary.get(key) or 0)
        except (TypeError, ValueError):
            count = 0
        if count:
            parts.append(f"{sign}{count:,} {noun if count != 1 else noun[:-1]}")
    return ", ".join(parts)


def compact_count(count: int) -> str:
    """1.2M, 34k, 980."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            value = count / size
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(count)


def compaction_hint(facts: TableFacts, small_file: int) -> str:
    """``340 files avg 2.1 MB: compaction would help`` when many files are small on average, else the files."""
    if not facts.data_files:
        return ""
    if facts.data_bytes is None:
        return f"{facts.data_files:,} files"
    average = facts.data_bytes / facts.data_files
    text = f"{facts.data_files:,} files avg {human_bytes(average)}"
    if facts.data_files >= COMPACTION_MIN_FILES and average < small_file:
        return f"{text}: compaction would help"
    return text
