"""The history store: samples, state changes and alert events in a DuckDB file, written by a thread of its own.

``record()`` runs on the event loop after every poll and only appends to in-memory queues (throttled to one
sample per reading and metric every ``every`` seconds). A daemon writer thread writes what accumulated every
``flush_every`` seconds as ONE transaction: a process killed mid-write loses that batch and nothing else.

DuckDB lets one process at a time open a file read-write, so the file is never kept open: for each batch (and
each read) the store takes an exclusive ``flock`` on ``<file>.lock`` beside it, opens, works, closes and
unlocks. Two consoles on one host take turns. A batch that cannot get the lock in a few seconds stays queued
(bounded: the oldest samples go first); the event loop never waits for any of it.

The files are private (0600) and a new one appears only whole, so a full disk leaves nothing that blocks the
next start; an empty file that one did leave is replaced (store_file).

The store never raises into the console: what goes wrong is one line in ``problem``, and samples are dropped.
``duckdb`` is imported only when the file is first opened (it costs ~115 ms to import).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from .model import AlertReading, Reading, State
from .store_file import create_whole, make_directory, set_aside, tighten, unfinished
from .store_read import AlertEvent, StoreError, StoreReads, _Busy
from .text import one_line

SCHEMA_VERSION = 1
QUEUE_LIMIT = 200_000  # samples waiting for the file (a busy lock); beyond it the oldest are dropped
EVENT_LIMIT = 50_000  # state changes and alert events waiting, likewise
MEMORY_LIMIT = 100_000  # (key, metric) throttles and last states remembered; the least recently used go
LOCK_WAIT = 3.0  # how long the writer waits for the lock before keeping the batch for later
RETAIN_EVERY = 3600.0  # old rows are deleted at most this often (and at start)
REASON_LENGTH = 500
ACTIVE = ("pending", "firing", "silenced", "error")  # an alert event that is not over yet
EXIT_WAIT = 2.0  # at exit, how long a write under way may take to finish (the lock is not waited for)
DUCKDB_CONFIG = {"threads": 1, "memory_limit": "256MB"}  # one batch at a time; a console stays small
TRANSIENT = (errno.ENOSPC, errno.EDQUOT)  # a full disk is no reason to stop writing for good
_LIVE: weakref.WeakSet[HistoryStore] = weakref.WeakSet()  # stores whose writer thread was started

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS samples (ts DOUBLE, source VARCHAR, key VARCHAR, metric VARCHAR, value DOUBLE)",
    "CREATE TABLE IF NOT EXISTS transitions (ts DOUBLE, source VARCHAR, key VARCHAR, old_state VARCHAR, "
    "new_state VARCHAR, reason VARCHAR)",
    "CREATE TABLE IF NOT EXISTS alerts (ts DOUBLE, source VARCHAR, key VARCHAR, fingerprint VARCHAR, origin VARCHAR, "
    "name VARCHAR, severity VARCHAR, status VARCHAR, since DOUBLE, until DOUBLE, target VARCHAR, why VARCHAR)",
)
# One statement per table and batch, columns passed as lists: ~100x faster than executemany.
_TYPES = {"samples": ("DOUBLE", "VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE"),
          "transitions": ("DOUBLE", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR"),
          "alerts": ("DOUBLE", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR",
                     "DOUBLE", "DOUBLE", "VARCHAR", "VARCHAR")}
INSERT = {table: f"INSERT INTO {table} SELECT * FROM (SELECT "
                 + ", ".join(f"unnest(?::{kind}[])" for kind in kinds) + ")"
          for table, kinds in _TYPES.items()}


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    state = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(state) / "lakedeck" / "history.duckdb"


def store_path(config: Any, environ: Mapping[str, str] | None = None) -> Path:
    """Where ``config.store`` puts the file: its ``path``, else the default under $XDG_STATE_HOME."""
    given = config.store.get("path")
    return Path(given).expanduser() if given else default_path(environ)


def store_for(config: Any, environ: Mapping[str, str] | None = None) -> HistoryStore | None:
    """The store the config asks for (not started), or None when ``store.enabled`` is false."""
    settings = config.store
    if not settings.get("enabled", True):
        return None
    return HistoryStore(store_path(config, environ), retention=float(settings.get("retention", 7 * 86400.0)),
                        every=float(settings.get("every", 10.0)))


def _remember(memory: dict, key: Any, value: Any) -> None:
    """``memory[key] = value``, most recent last; the least recently used half goes past MEMORY_LIMIT."""
    memory.pop(key, None)
    memory[key] = value
    if len(memory) > MEMORY_LIMIT:
        for old in list(memory)[: MEMORY_LIMIT // 2]:
            del memory[old]


def _columns(rows: Sequence[tuple], width: int) -> list[list]:
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


class HistoryStore(StoreReads):
    def __init__(self, path: Path, *, retention: float = 7 * 86400, every: float = 10.0, flush_every: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.wal_path = self.path.with_name(self.path.name + ".wal")  # DuckDB's, made 0644 at a commit: tightened
        self.retention, self.every, self.flush_every, self.clock = retention, every, flush_every, clock
        self.problem = ""  # one line when something is wrong (shown by the console); "" when all is well
        self.dropped = 0  # samples and events dropped: a queue over its bound, or a file that cannot be written
        self.batches = 0  # batches written by this process
        self._dead = False  # a problem that will not go away by itself (not a DuckDB file): drop everything
        self._closed = False
        self._samples: list[tuple] = []
        self._transitions: list[tuple] = []
        self._alerts: list[tuple] = []
        self._cond = threading.Condition()  # guards the queues and the two sequence numbers
        self._queued = 0  # record() calls that queued something
        self._written = 0  # the last of them that is in the file (or given up)
        self._asked = 0  # flush() calls
        self._served = 0  # the last of them that a writer's pass began after
        self._write_lock = threading.Lock()  # one batch at a time, whoever writes it
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._abandon = threading.Event()  # exiting: write only if the lock is free now
        self._thread: threading.Thread | None = None
        # what record() remembers (event loop only)
        self._last_sample: dict[tuple[str, str], float] = {}
        self._last_state: dict[str, State] = {}
        self._last_alert: dict[str, str] = {}  # fingerprint -> status
        self._active: dict[str, dict[str, AlertReading | AlertEvent]] = {}  # source -> fingerprint -> last seen
        self._merged: set[str] = set()  # sources whose stored active alerts were taken into _active
        # what the file said at start (set once by the writer thread; None until then)
        self._stored_states: dict[str, str] | None = None
        self._stored_alerts: dict[str, AlertEvent] | None = None
        self._schema_ok = False
        self._retained_at: float | None = None
        self._local = threading.local()  # a reading session's connection, per thread

    # -- the event loop's side -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (once). It opens the file at once: schema, retention, the last states."""
        if self._thread is None and not self._closed:
            if not _LIVE:
                atexit.register(_close_at_exit)
            _LIVE.add(self)
            self._thread = threading.Thread(target=self._run, name="lakedeck-history", daemon=True)
            self._thread.start()

    def record(self, readings: Iterable[Reading], source: str | None = None) -> None:
        """Queue one poll's samples, state changes and alert events. Cheap: no I/O, no duckdb.

        ``source`` names the poll's source; without it, it is taken from the readings (an empty poll of an
        alert source then cannot tell that its last alerts went away).
        """
        if self._dead or self._closed:
            return
        try:
            self._record(list(readings), source)
        except Exception as exc:  # a reading the store cannot take must not stop the engine's poll loop
            self.problem = f"history store {self.path}: a reading was not recorded: {one_line(repr(exc))}"

    def _record(self, readings: list[Reading], source: str | None) -> None:
        samples: list[tuple] = []
        transitions: list[tuple] = []
        alerts: list[tuple] = []
        for reading in readings:
            if isinstance(reading, AlertReading):
                self._alert_event(reading, alerts)
                continue
            for metric, value in reading.metrics().items():
                mark = (reading.key, metric)
                last = self._last_sample.get(mark)
                if last is not None and abs(reading.ts - last) < self.every:
                    continue
                _remember(self._last_sample, mark, reading.ts)
                samples.append((reading.ts, reading.source, reading.key, metric, float(value)))
            self._state_change(reading, transitions)
        names = {source} if source is not None else {r.source for r in readings if isinstance(r, AlertReading)}
        for name in names:
            self._gone(name, readings, alerts)
        if samples or transitions or alerts:
            self._enqueue(samples, transitions, alerts)

    def _state_change(self, reading: Reading, out: list[tuple]) -> None:
        before = self._last_state.get(reading.key)
        if before is not None:
            old: str | None = before.name
            changed = before is not reading.state
        else:
            stored = (self._stored_states or {}).get(reading.key)
            old = stored
            changed = stored != reading.state.name if stored is not None else reading.state is not State.OK
        _remember(self._last_state, reading.key, reading.state)
        if changed:
            out.append((reading.ts, reading.source, reading.key, old, reading.state.name,
                        one_line(reading.reason, REASON_LENGTH)))

    def _alert_event(self, alert: AlertReading, out: list[tuple]) -> None:
        mark = alert.fingerprint or alert.key
        if self._stored_alerts is not None and alert.source not in self._merged:
            self._merge_stored(alert.source)
        status = self._last_alert.get(mark)
        if status is None and self._stored_alerts is not None and mark in self._stored_alerts:
            status = self._stored_alerts[mark].status
        active = self._active.setdefault(alert.source, {})
        if alert.status in ACTIVE or alert.status == "silence":
            active[mark] = alert
        else:
            active.pop(mark, None)
        if status == alert.status:
            return
        _remember(self._last_alert, mark, alert.status)
        out.append(_alert_row(alert, alert.ts, alert.status, alert.why or alert.reason))

    def _merge_stored(self, source: str) -> None:
        """Alerts the file says were still active for ``source``: a later poll without them ends them."""
        self._merged.add(source)
        active = self._active.setdefault(source, {})
        for mark, event in (self._stored_alerts or {}).items():
            if event.source == source and event.status in ACTIVE + ("silence",) and mark not in self._last_alert:
                active.setdefault(mark, event)

    def _gone(self, source: str, readings: list[Reading], out: list[tuple]) -> None:
        """Alerts of ``source`` that were active and are missing from this poll have ended ("gone").
        A poll that failed (an alert row with status error) says nothing about the others."""
        if self._stored_alerts is not None and source not in self._merged:
            self._merge_stored(source)
        active = self._active.get(source)
        if not active:
            return
        seen = {r.fingerprint or r.key for r in readings if isinstance(r, AlertReading) and r.source == source}
        if any(isinstance(r, AlertReading) and r.status == "error" for r in readings):
            seen |= {mark for mark in active if not mark.startswith("error:")}
        now = max((r.ts for r in readings), default=None)
        now = self.clock() if now is None else now
        for mark in [m for m in active if m not in seen]:
            last = active.pop(mark)
            _remember(self._last_alert, mark, "gone")
            out.append(_alert_row(last, max(now, last.ts), "gone", f"no longer reported by {source}"))

    def _enqueue(self, samples: list[tuple], transitions: list[tuple], alerts: list[tuple]) -> None:
        with self._cond:
            self._samples += samples
            self._transitions += transitions
            self._alerts += alerts
            self._bound()
            self._queued += 1

    def _bound(self) -> None:
        """Drop the oldest beyond the limits (called holding _cond)."""
        for name, limit in (("_samples", QUEUE_LIMIT), ("_transitions", EVENT_LIMIT), ("_alerts", EVENT_LIMIT)):
            queue = getattr(self, name)
            if len(queue) > limit:
                self.dropped += len(queue) - limit
                del queue[: len(queue) - limit]

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything queued so far and wait (at most ``timeout``); True when it is all in the file."""
        with self._cond:
            self._asked += 1
            ticket, target = self._asked, self._queued
        if self._thread is None or not self._thread.is_alive():
            self._write_queued()
        else:
            self._wake.set()
            with self._cond:
                self._cond.wait_for(lambda: self._served >= ticket, timeout)
        with self._cond:
            return self._written >= target and not self.problem

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (if the lock can be had), then stop the writer thread."""
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._stop.set()
            self._wake.set()
            thread.join(timeout)
        else:
            self._write_queued()

    # -- the writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        self._write_queued(opening=True)
        while not self._stop.is_set():
            self._wake.wait(self.flush_every)
            self._wake.clear()
            self._write_queued()
        self._write_queued()

    def _write_queued(self, opening: bool = False) -> None:
        """One batch: everything queued now, in one transaction. Never raises."""
        with self._write_lock:
            with self._cond:
                batch = (self._samples, self._transitions, self._alerts)
                self._samples, self._transitions, self._alerts = [], [], []
                seq, ticket = self._queued, self._asked
            try:
                self._write(batch, seq, opening)
            finally:
                with self._cond:
                    self._served = max(self._served, ticket)
                    self._cond.notify_all()

    def _write(self, batch: tuple[list, list, list], seq: int, opening: bool) -> None:
        count = sum(map(len, batch))
        retain = self._retained_at is None or self.clock() - self._retained_at >= RETAIN_EVERY
        if self._dead:
            self._done(seq, dropped=count)
            return
        if not (count or opening or retain or self._stored_states is None):
            self._done(seq)
            return
        committed = False
        try:
            with self._connection(create=True, wait=LOCK_WAIT) as con:
                if self._stored_states is None:
                    self._load_last(con)
                if count:
                    self._insert(con, *batch)
                    self.batches += 1
                committed = True
                self.problem = ""
                self._done(seq)
                if retain:
                    self._retain(con)
        except _Busy:
            with self._cond:  # keep it for the next turn, before anything queued since
                self._samples = batch[0] + self._samples
                self._transitions = batch[1] + self._transitions
                self._alerts = batch[2] + self._alerts
                self._bound()
                self._cond.notify_all()
        except StoreError as exc:
            self.problem = str(exc)
            self._done(seq, dropped=0 if committed else count)
        except Exception as exc:  # a bug or an odd file (or closing it failed): the console goes on
            self.problem = f"history store {self.path}: {one_line(str(exc) or type(exc).__name__)}"
            self._done(seq, dropped=0 if committed else count)

    def _done(self, seq: int, dropped: int = 0) -> None:
        with self._cond:
            self.dropped += dropped
            self._written = max(self._written, seq)
            self._cond.notify_all()

    def _insert(self, con: Any, samples: list, transitions: list, alerts: list) -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            for table, rows in (("samples", samples), ("transitions", transitions), ("alerts", alerts)):
                if rows:
                    con.execute(INSERT[table], _columns(rows, len(_TYPES[table])))
            con.execute("COMMIT")
            tighten(self.wal_path)
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            raise

    def _retain(self, con: Any) -> None:
        """Delete what is older than the retention; a failure is a problem, and is tried again in an hour."""
        self._retained_at = self.clock()
        try:
            con.execute("BEGIN TRANSACTION")
            for table in ("samples", "transitions", "alerts"):
                con.execute(f"DELETE FROM {table} WHERE ts < ?", [self._retained_at - self.retention])
            con.execute("COMMIT")
            tighten(self.wal_path)
        except Exception as exc:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            self.problem = f"history store {self.path}: old rows not deleted: {one_line(str(exc))}"

    def _load_last(self, con: Any) -> None:
        """The last state of every key and the last event of every alert, so that a restart repeats neither."""
        states = con.execute("SELECT key, arg_max(new_state, ts) FROM transitions GROUP BY key").fetchall()
        alerts = con.execute("SELECT * FROM alerts QUALIFY row_number() OVER "
                             "(PARTITION BY fingerprint ORDER BY ts DESC) = 1").fetchall()
        self._stored_alerts = {row[3]: AlertEvent(*row) for row in alerts}
        self._stored_states = dict(states)

    # -- the file -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, wait: float) -> Iterator[None]:
        """Hold the exclusive lock on the sidecar file; _Busy after ``wait`` seconds."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            tighten(self.lock_path)  # made by an older lakedeck
        except PermissionError:
            fd = os.open(self.lock_path, os.O_RDONLY)  # someone else's store, read by this user: flock works too
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline or self._abandon.is_set():
                        raise _Busy() from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _connection(self, create: bool, wait: float) -> Iterator[Any]:
        """An open DuckDB connection under the lock, closed (and unlocked) after. StoreError says why not."""
        if create:
            try:
                make_directory(self.path.parent)
            except OSError as exc:
                message = (f"history store {self.path}: cannot create {self.path.parent}: {exc.strerror or exc} "
                           f"(set store.path to a writable place)")
                raise (StoreError(message) if exc.errno in TRANSIENT else self._fatal(message)) from None
        elif not self.path.exists():
            raise StoreError(f"no history store at {self.path} (the console writes it while it runs)")
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self._locked(wait))
            except OSError as exc:
                message = f"history store {self.path}: cannot lock {self.lock_path.name}: {exc.strerror or exc}"
                raise (self._fatal(message) if create else StoreError(message)) from None
            stack.callback(tighten, self.wal_path)  # after the close: a commit that failed leaves one
            con = self._open(create)
            stack.callback(con.close)
            yield con

    def _open(self, create: bool, again: bool = False) -> Any:
        import duckdb

        if not self.path.exists():
            self._schema_ok = False  # moved away while we run: a new file
            if create:
                self._create()
        try:
            try:
                con = duckdb.connect(str(self.path), config=DUCKDB_CONFIG)
                writable = True
            except duckdb.IOException as exc:
                if "ermission denied" not in str(exc) and "read-only" not in str(exc).lower():
                    raise
                con = duckdb.connect(str(self.path), read_only=True, config=DUCKDB_CONFIG)
                writable = False
        except duckdb.Error as exc:
            if "is not a valid" in str(exc) and unfinished(self.path):
                if not create:
                    raise StoreError(f"history store {self.path} is empty (left by a full disk?); the console "
                                     f"starts it afresh") from None
                if not again:  # lakedeck's own, not foreign: start afresh
                    set_aside(self.path, self.clock)
                    return self._open(create, again=True)
            raise self._open_error(exc) from None
        try:
            if writable and not self._schema_ok:
                self._migrate(con)
            if writable:
                tighten(self.path)
                tighten(self.wal_path)
        except BaseException:
            con.close()
            raise
        return con

    def _create(self) -> None:
        """A new file with the tables in it, made whole and private before it appears (store_file)."""
        import duckdb

        def make(where: str) -> None:
            con = duckdb.connect(where, config=DUCKDB_CONFIG)
            try:
                self._migrate(con)
                con.execute("CHECKPOINT")  # all in the file itself: its WAL stays behind
            finally:
                con.close()

        try:
            create_whole(self.path, make)
        except duckdb.Error as exc:
            raise self._open_error(exc) from None
        except OSError as exc:
            raise StoreError(f"history store {self.path}: cannot create it: {exc.strerror or exc}") from None

    def _open_error(self, exc: Exception) -> Exception:
        text = str(exc)
        if "Could not set lock" in text or "Conflicting lock" in text:
            return _Busy()
        if "not a valid DuckDB database" in text or "is not a valid" in text:
            return self._fatal(f"history store {self.path}: not a DuckDB file (move it away or set store.path)")
        if "version number" in text.lower() or "storage version" in text.lower():
            return self._fatal(f"history store {self.path}: written by another DuckDB version "
                               f"(move it away or set store.path): {one_line(text, 120)}")
        return StoreError(f"history store {self.path}: {one_line(text)}")

    def _fatal(self, message: str) -> StoreError:
        """A problem that will not go away by itself: said once, and every sample is dropped from now on."""
        self._dead = True
        self.problem = message
        return StoreError(message)

    def _migrate(self, con: Any) -> None:
        """Create the tables (once per process and file); a file from a newer lakedeck is left as it is."""
        con.execute(SCHEMA[0])
        row = con.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise self._fatal(f"history store {self.path}: written by a newer lakedeck (schema {row[0]}, this one "
                              f"reads {SCHEMA_VERSION}); set store.path to keep both")
        for statement in SCHEMA[1:]:
            con.execute(statement)
        if row is None:
            con.execute("INSERT INTO meta VALUES ('schema', ?)", [str(SCHEMA_VERSION)])
        self._schema_ok = True


def _close_at_exit() -> None:
    """Let a writer thread finish the write it is in before the interpreter goes: a daemon thread stopped
    inside DuckDB at exit can abort the process (or print nanobind's leak report on the terminal)."""
    for store in list(_LIVE):
        store._abandon.set()
        store.close(EXIT_WAIT)


def _alert_row(alert: AlertReading | AlertEvent, ts: float, status: str, why: str) -> tuple:
    return (ts, alert.source, alert.key, alert.fingerprint or alert.key, alert.origin, alert.name, alert.severity,
            status, alert.since, alert.until, alert.target, one_line(why, REASON_LENGTH))
