"""Iceberg catalogs through pyiceberg (``tables:`` of kind ``sql`` or ``rest``): one row per table, data checks,
a table's snapshot history, and expire / roll back / tag.

Reading 500 tables a minute stays cheap: a SQL catalog lists every table's metadata location in one query, and
a table is loaded again (its metadata file read) only when that location changed; nothing reads data or
manifests in a poll. A REST catalog has no such listing: each table is loaded every poll.

Data checks scan data, so they keep their own rhythm: they start on the first poll and then every
``CHECK_EVERY_POLLS``-th poll (5 min at the default 60 s), in a thread of their own. A poll waits for a run only
as long as its own timeout allows; a run that takes longer reports at the next poll (it wakes the engine when
it ends), and until a first run has finished its rows say so.

pyiceberg (and DuckDB) are imported only in worker threads: ``pyiceberg.catalog`` alone costs ~380 ms.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import replace
from urllib.parse import urlsplit
from typing import Any

from ..actions import Action, ActionResult, Emit, Tier, Transcript
from ..data_checks import check_name, run_check, verdict_line
from ..data_checks import describe as describe_check
from ..durations import format_duration
from ..model import Listing, PipelineItem, Reading, State, TableReading
from .base import Source, StillRunning
from .iceberg_read import (
    TableFacts,
    ancestors,
    change_note,
    compact_count,
    compaction_hint,
    expiring,
    facts_of,
    list_locations,
    list_tables,
    open_catalog,
    parse_expire_rule,
    ref_heads,
    refs_of,
    rule_text,
    snapshot_line,
    snapshots_of,
    when,
)
from .pipeline_base import PipelineError
from .text import connect_error_reason, one_line

CHECK_EVERY_POLLS = 5
CHECK_WAIT = 0.85  # of the poll's timeout: how long a poll waits for a check run before reporting without it
ACTION_TIMEOUT = 120.0
TAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
EXPIRE_ASK = "older than a duration (7d) or keep the last N of the current history (last 5)"
UNREFERENCED = "unreferenced: not in the current history, no branch or tag"


class ActionFailed(Exception):
    """An action that must not go on; ``str()`` is one line for the operator."""


def error_line(exc: BaseException) -> str:
    """One line from a driver's error (SQLAlchemy's run over several lines and end with a link)."""
    text = str(exc).strip().splitlines()
    return one_line(f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)


class IcebergCatalog(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        # the name the tables were created under in a SQL catalog (its catalog_name column)
        self.catalog_name: str = options.get("catalog") or self.name
        self.namespaces: list[str] = list(options.get("namespaces") or ())
        self.max_age: float | None = options.get("max_age")
        self.small_file = int(options.get("small_file") or 32 * 1024 * 1024)
        self.checks: list[dict[str, Any]] = [dict(c) for c in options.get("checks") or ()]
        self._catalog: Any = None
        self._catalog_lock = threading.Lock()
        self._facts: dict[tuple[str, str], TableFacts] = {}  # by (namespace, table): reused while unchanged
        self._failed_tables: dict[tuple[str, str], str] = {}
        self._check_rows: list[TableReading] = []
        self._checks_job: asyncio.Future[list[TableReading]] | None = None
        self._checks_started = 0.0
        self._polls_since_checks = CHECK_EVERY_POLLS  # due at the first poll
        self._previews: dict[tuple[str, str], tuple[str, tuple[int, ...]]] = {}  # (table, value) -> (location, ids)

    def describe(self) -> str:
        uri = re.sub(r"//[^/@]*@", "//", str(self.spec.options.get("uri", "")))  # no credentials in the row
        return f"{self.kind} catalog {uri}"

    def failed(self, reason: str, state: State = State.UNKNOWN) -> list[Reading]:
        return [TableReading(key=self.name, source=self.name, state=state, reason=reason, ts=self.clock(),
                             catalog=self.name, table="")]

    # -- the catalog -------------------------------------------------------------------------------

    def catalog(self) -> Any:
        """The pyiceberg catalog, opened on first use (in a worker thread)."""
        with self._catalog_lock:
            if self._catalog is None:
                self._catalog = open_catalog(self.catalog_name, self.kind, self.spec.options)
            return self._catalog

    def load(self, ident: str) -> Any:
        return self.catalog().load_table(ident)

    def _read_tables(self) -> list[TableFacts]:
        catalog = self.catalog()
        if self.kind == "sql":
            locations: dict[tuple[str, str], str] | None = list_locations(catalog, self.namespaces)
            keys = sorted(locations)
        else:
            locations, keys = None, sorted(list_tables(catalog, self.namespaces))
        self._failed_tables = {}
        for key in keys:
            known = self._facts.get(key)
            if locations is not None and known is not None and known.location and known.location == locations[key]:
                continue
            try:  # cached at once: a first poll that outlives its timeout still warms the next one
                self._facts[key] = facts_of(catalog.load_table(f"{key[0]}.{key[1]}"), *key)
            except Exception as exc:  # one unreadable table is one row, not a failed catalog
                self._facts.pop(key, None)
                self._failed_tables[key] = error_line(exc)
        for gone in set(self._facts) - set(keys):
            del self._facts[gone]
        return [self._facts[k] for k in keys if k in self._facts]

    # -- polling -----------------------------------------------------------------------------------

    async def poll(self) -> list[Reading]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._start_checks_if_due()
        try:
            facts = await self.in_thread(self._read_tables)
        except StillRunning:
            raise  # the engine says how long it has hung
        except Exception as exc:
            with self._catalog_lock:
                self._catalog = None  # opened again at the next poll
            rows: list[Reading] = self.failed(one_line(f"cannot read the catalog: {self._why(exc)}"))
        else:
            now = self.clock()
            rows = [self.table_reading(f, now) for f in facts]
            rows += [self._unreadable(key, why) for key, why in sorted(self._failed_tables.items())]
        return rows + await self._check_readings(self.timeout * CHECK_WAIT - (loop.time() - started))

    def _why(self, exc: BaseException) -> str:
        """A REST catalog's failure in the operator's words: pyiceberg leaves the HTTP status out of a refusal,
        and requests' connection errors are too long to keep their cause in one line."""
        if self.kind == "rest":
            code = getattr(getattr(exc.__cause__, "response", None), "status_code", None)
            if code in (401, 403, 419):
                return one_line(f"the catalog refused the token ({code}): {exc}")
            if isinstance(exc, OSError):  # requests' ConnectionError and Timeout are OSErrors
                url = urlsplit(str(self.spec.options["uri"]))
                return connect_error_reason(exc, url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
        return error_line(exc)

    def _key(self, ident: str) -> str:
        return f"{self.name}:{ident}"

    def _unreadable(self, key: tuple[str, str], why: str) -> TableReading:
        ident = f"{key[0]}.{key[1]}"
        return TableReading(key=self._key(ident), source=self.name, state=State.UNKNOWN,
                            reason=one_line(f"cannot load its metadata: {why}"), ts=self.clock(),
                            catalog=self.name, table=ident)

    def table_reading(self, facts: TableFacts, now: float) -> TableReading:
        state, parts = State.OK, []
        limit = self.max_age
        if facts.snapshot_at is None:
            state, parts = State.WARN, ["no snapshot yet"]
        else:
            age = now - facts.snapshot_at
            limit_text = f" (max age {format_duration(limit)})" if limit is not None else ""
            parts.append(f"snapshot {format_duration(age)} ago{limit_text}")
            if limit is not None and age > limit:
                state = State.CRITICAL if age > 2 * limit else State.WARN
        if facts.records is not None:
            parts.append(f"{compact_count(facts.records)} records")
        hint = compaction_hint(facts, self.small_file)
        if hint:
            parts.append(hint)
        return TableReading(key=self._key(facts.ident), source=self.name, state=state, reason=one_line(" · ".join(parts)),
                            ts=self.clock(), catalog=self.name, table=facts.ident, snapshot_id=facts.snapshot_id,
                            snapshot_at=facts.snapshot_at, records=facts.records, data_files=facts.data_files,
                            data_bytes=facts.data_bytes, snapshots=facts.snapshots)

    # -- data checks -------------------------------------------------------------------------------

    def _start_checks_if_due(self) -> None:
        if not self.checks:
            return
        self._polls_since_checks += 1
        if self._checks_job is not None or self._polls_since_checks < CHECK_EVERY_POLLS:
            return
        self._polls_since_checks = 0
        self._checks_started = self.clock()
        # a thread of its own, not in_thread: a long scan must not make the table reading look hung
        self._checks_job = asyncio.ensure_future(asyncio.to_thread(self._run_checks, self._checks_started))
        self._checks_job.add_done_callback(lambda _: self.wake())  # report as soon as it is done

    async def _check_readings(self, budget: float) -> list[Reading]:
        job = self._checks_job
        if job is not None:
            if not job.done() and budget > 0:
                await asyncio.wait({job}, timeout=budget)
            if job.done():
                self._checks_job = None
                try:
                    self._check_rows = job.result()
                except Exception as exc:  # a bug in a check run: every check says so
                    self._check_rows = self._check_rows_all(State.UNKNOWN, f"check run failed: {error_line(exc)}")
        if job is not None and not self._check_rows:  # the first run is still going
            waited = format_duration(self.clock() - self._checks_started)
            return list(self._check_rows_all(State.UNKNOWN, f"first run still going (started {waited} ago)"))
        return list(self._check_rows)

    def _check_names(self) -> list[str]:
        names: list[str] = []
        for check in self.checks:
            name = check_name(check)
            names.append(name if name not in names else f"{name} ({len(names) + 1})")
        return names

    def _check_rows_all(self, state: State, reason: str) -> list[TableReading]:
        return [self._check_reading(name, check, state, reason, self.clock())
                for name, check in zip(self._check_names(), self.checks)]

    def _check_reading(self, name: str, check: dict[str, Any], state: State, reason: str, ts: float) -> TableReading:
        return TableReading(key=f"{self.name}:check:{name}", source=self.name, state=state, reason=reason, ts=ts,
                            catalog=self.name, table=name, check=describe_check(check))

    def _run_checks(self, now: float) -> list[TableReading]:
        """Every check, one after the other (in a worker thread). ``ts`` is when the run started."""
        rows = []
        for name, check in zip(self._check_names(), self.checks):
            ok, reason = verdict_line(run_check(check, self.clock(), self.load))
            rows.append(self._check_reading(name, check, State.OK if ok else State.CRITICAL, reason, now))
        return rows

    # -- drill-down --------------------------------------------------------------------------------

    async def open(self, ref: tuple[str, ...]) -> Listing:
        """A table's snapshots, newest first (``ref`` ends with ``namespace.table``)."""
        ident = ref[-1] if ref else ""
        try:
            table = await asyncio.wait_for(asyncio.to_thread(self.load, ident), self.timeout)
        except asyncio.TimeoutError:
            raise PipelineError(f"{ident}: no answer from the catalog within {format_duration(self.timeout)}")
        except Exception as exc:
            raise PipelineError(one_line(f"cannot load {ident}: {error_line(exc)}")) from None
        return self.listing(ident, table)

    def listing(self, ident: str, table: Any) -> Listing:
        snaps = snapshots_of(table)
        current = table.metadata.current_snapshot_id
        line = set(ancestors(snaps, current))
        refs = refs_of(table)
        items = []
        for snap in snaps:
            note = [change_note(snap.summary), ", ".join(refs.get(snap.id, ()))]
            if snap.id not in line:
                note.append("not in the current history")
            items.append(PipelineItem(
                ref=(ident, str(snap.id)), name=str(snap.id), state=State.OK,
                status=snap.operation + (" (current)" if snap.id == current else ""), started=snap.at,
                note=one_line(" · ".join(n for n in note if n))))
        return Listing(title=f"{self.name} / {ident}", items=tuple(items),
                       columns=("State", "Snapshot", "Operation", "Committed", "Duration", "Changes"),
                       note=f"{len(items)} snapshot{'s' if len(items) != 1 else ''}")

    # -- actions -----------------------------------------------------------------------------------

    def _action(self, action_id: str, title: str, tier: Tier, ident: str, ref: tuple[str, ...], call: str,
                expect: str, **extra: Any) -> Action:
        # every action on a table has the table as its target: two of them never run at once
        return Action(target=self._key(ident), id=action_id, title=title, tier=tier, call=call, timeout=ACTION_TIMEOUT,
                      expect=expect, source=self.name, ref=ref, confirm=ident, **extra)

    def item_actions(self, row: Any) -> list[Action]:
        if isinstance(row, TableReading):
            if row.check or not row.table or row.source != self.name or row.snapshot_id is None:
                return []
            ident = row.table
            return [
                self._action("expire", "Expire snapshots", Tier.DESTRUCTIVE, ident, ("table", ident),
                             f"expire snapshots of {ident}", "expiring", ask=EXPIRE_ASK),
                self._tag_action(ident, str(row.snapshot_id)),
            ]
        if isinstance(row, PipelineItem) and len(row.ref) == 2:
            ident, snapshot = row.ref
            actions = [self._tag_action(ident, snapshot)]
            if not row.status.endswith("(current)"):
                actions.insert(0, self._action("rollback", "Roll back", Tier.DESTRUCTIVE, ident,
                                               ("snapshot", ident, snapshot),
                                               f"roll back {ident} to snapshot {snapshot}", "rolling back"))
            return actions
        return []

    def _tag_action(self, ident: str, snapshot: str) -> Action:
        return self._action("tag", "Create tag", Tier.DISRUPTIVE, ident, ("snapshot", ident, snapshot),
                            f"create a tag on snapshot {snapshot} of {ident}", "tagging",
                            ask="tag name (e.g. release-2026-11)")

    def with_value(self, action: Action, value: str) -> Action:
        value = value.strip()
        if not self._own(action):
            return replace(action, value=value)
        if action.id == "expire":
            rule = parse_expire_rule(value)
            return replace(action, value=value, call=f"expire snapshots of {action.ref[1]} ({rule_text(rule)})")
        if action.id == "tag":
            if not TAG_NAME.match(value):
                raise ValueError("a tag name is letters, digits, '.', '_' or '-' (up to 100, not starting with "
                                  "'.' or '-'), e.g. release-2026-11")
            _, ident, snapshot = action.ref
            return replace(action, value=value, call=f"create tag {value} on snapshot {snapshot} of {ident}")
        return replace(action, value=value)

    @staticmethod
    def _own(action: Action) -> bool:
        """One of this adapter's actions, not a command or request the config gave the same id."""
        return bool(action.ref) and not action.argv and action.request is None

    async def preview(self, action: Action) -> list[str] | None:
        if not self._own(action) or action.id not in ("expire", "rollback"):
            return None
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._preview, action), ACTION_TIMEOUT)
        except (ActionFailed, ValueError) as exc:
            raise PipelineError(one_line(str(exc))) from None
        except asyncio.TimeoutError:
            raise PipelineError(f"no answer from the catalog within {format_duration(ACTION_TIMEOUT)}") from None

    def _preview(self, action: Action) -> list[str]:
        now = self.clock()
        if action.id == "expire":
            ident = action.ref[1]
            table = self.load(ident)
            doomed = self._expiring(table, action.value)
            self._previews[(ident, action.value)] = (table.metadata_location, tuple(s.id for s in doomed))
            history = set(ancestors(snapshots_of(table), table.metadata.current_snapshot_id))
            return [snapshot_line(s, now) + ("" if s.id in history else f" · {UNREFERENCED}") for s in doomed]
        _, ident, snapshot = action.ref
        table = self.load(ident)
        target, current, newer = self._rollback_plan(table, ident, int(snapshot))
        lines = [f"{ident}: current snapshot {current.id} ({when(current.at)}) → snapshot {target.id} "
                 f"({when(target.at)})"]
        lines += [f"leaves the current history: {snapshot_line(s, now)}" for s in newer]
        return lines

    def _expiring(self, table: Any, value: str) -> list[Any]:
        branches, tags = ref_heads(table)
        return expiring(snapshots_of(table), parse_expire_rule(value), self.clock(), table.metadata.current_snapshot_id,
                        branches, tags)

    def _rollback_plan(self, table: Any, ident: str, snapshot: int) -> tuple[Any, Any, list[Any]]:
        """(the target snapshot, the current one, the snapshots between them, newest first)."""
        snaps = snapshots_of(table)
        by_id = {s.id: s for s in snaps}
        current = table.metadata.current_snapshot_id
        if snapshot not in by_id:
            raise ActionFailed(f"{ident} has no snapshot {snapshot} (expired?)")
        if current is None:
            raise ActionFailed(f"{ident} has no current snapshot to roll back from")
        if snapshot == current:
            raise ActionFailed(f"snapshot {snapshot} is already the current snapshot of {ident}")
        line = ancestors(snaps, current)
        if snapshot not in line:
            raise ActionFailed(f"snapshot {snapshot} is not an ancestor of the current snapshot {current} of {ident}: "
                               f"a rollback only goes back along the current history")
        return by_id[snapshot], by_id[current], [by_id[i] for i in line[:line.index(snapshot)]]

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        if not self._own(action):
            return await super().run(action, emit)  # the config's own commands and requests
        transcript = Transcript(action, emit)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._do, action, transcript.say), action.timeout)
        except asyncio.TimeoutError:
            error = f"no answer from the catalog within {format_duration(action.timeout)} (it may still finish)"
            transcript.say(error)
            return transcript.result(False, error)
        except (ActionFailed, ValueError) as exc:
            error = one_line(str(exc))
            transcript.say(error)
            return transcript.result(False, error)
        except Exception as exc:  # the catalog refused the commit, or could not be reached
            error = error_line(exc)
            transcript.say(error)
            return transcript.result(False, error)
        return transcript.result(True)

    def _do(self, action: Action, say: Any) -> None:
        if action.id == "expire":
            self._do_expire(action, say)
        elif action.id == "rollback":
            _, ident, snapshot = action.ref
            table = self.load(ident)
            target, current, newer = self._rollback_plan(table, ident, int(snapshot))
            table.manage_snapshots().rollback_to_snapshot(target.id).commit()
            say(f"{ident}: current snapshot {current.id} → {target.id}"
                f" ({len(newer)} snapshot{'s' if len(newer) != 1 else ''} left the current history)")
        elif action.id == "tag":
            _, ident, snapshot = action.ref
            name = action.value.strip()
            if not TAG_NAME.match(name):
                raise ActionFailed("no valid tag name given")
            table = self.load(ident)
            if name in table.metadata.refs:
                raise ActionFailed(f"{ident} already has a tag or branch named {name}")
            if table.metadata.snapshot_by_id(int(snapshot)) is None:
                raise ActionFailed(f"{ident} has no snapshot {snapshot} (expired?)")
            table.manage_snapshots().create_tag(int(snapshot), name).commit()
            say(f"{ident}: tag {name} → snapshot {snapshot}")
        else:
            raise ActionFailed(f"the {self.kind} catalog adapter cannot run {action.id!r}")

    def _do_expire(self, action: Action, say: Any) -> None:
        ident = action.ref[1]
        table = self.load(ident)
        previewed = self._previews.pop((ident, action.value), None)
        if previewed is not None and previewed[0] != table.metadata_location:
            current = table.metadata.current_snapshot_id
            raise ActionFailed(f"{ident} changed since the preview (current snapshot now {current}): "
                               f"nothing expired; preview again")
        # exactly what the preview listed (the clock moves on, the table did not); without a preview, what the
        # rule selects now
        ids = list(previewed[1]) if previewed is not None else [s.id for s in self._expiring(table, action.value)]
        if not ids:
            say(f"{ident}: no snapshot to expire ({rule_text(parse_expire_rule(action.value))})")
            return
        table.maintenance.expire_snapshots().by_ids(ids).commit()
        left = {s.snapshot_id for s in self.load(ident).metadata.snapshots}
        for snapshot_id in ids:
            say(f"expired snapshot {snapshot_id}" + (" (STILL PRESENT)" if snapshot_id in left else ""))
        still = [i for i in ids if i in left]
        if still:
            raise ActionFailed(f"{len(still)} of {len(ids)} snapshots are still there after the commit")
        say(f"{ident}: expired {len(ids)} snapshot{'s' if len(ids) != 1 else ''}; {len(left)} left")
