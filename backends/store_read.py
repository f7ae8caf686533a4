"""Reading the history store back: sparklines' points, summaries, state changes and alert events.

A mixin of HistoryStore: every read opens the file under the same lock as the writer's batches (``session``
keeps one connection for several reads), so it never meets a half-written batch or another process's lock.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from .text import one_line

READ_WAIT = 10.0  # how long a reader waits for the lock


class Transition(NamedTuple):
    ts: float
    source: str
    key: str
    old: str | None  # None: the first time this key was seen (and it was not OK)
    new: str
    reason: str


class AlertEvent(NamedTuple):
    ts: float
    source: str
    key: str
    fingerprint: str
    origin: str
    name: str
    severity: str
    status: str  # pending, firing, silenced, resolved, silence, error; "gone": no longer reported by its source
    since: float | None
    until: float | None
    target: str
    why: str


class Summary(NamedTuple):
    key: str
    metric: str
    count: int
    first: float
    last: float
    min: float
    avg: float
    max: float
    last_value: float


class StoreError(Exception):
    """A read that could not be done, in one line an operator can act on."""


class _Busy(Exception):
    """The lock (or DuckDB's own) is held elsewhere: try again later."""


class StoreReads:
    """The reads of HistoryStore; it provides ``path``, ``clock``, ``every``, ``_local`` and ``_connection``."""

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """Several reads on one open file: ``with store.session(): store.summary(...); store.transitions()``."""
        if getattr(self._local, "con", None) is not None:
            yield self
            return
        try:
            opened = self._connection(create=False, wait=READ_WAIT)
            con = opened.__enter__()
        except _Busy:
            raise StoreError(f"history store {self.path} is busy (another lakedeck, or a duckdb shell, "
                             f"holds it); try again") from None
        self._local.con = con
        try:
            yield self
        finally:
            self._local.con = None
            opened.__exit__(None, None, None)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of ``sql``; StoreError when the file is missing, busy too long or unreadable."""
        import duckdb

        con = getattr(self._local, "con", None)
        if con is None:
            with self.session():
                return self._query(sql, params)
        try:
            return con.execute(sql, list(params)).fetchall()
        except duckdb.CatalogException:
            return []  # a DuckDB file without our tables (yet): no history
        except duckdb.Error as exc:
            raise StoreError(f"history store {self.path}: {one_line(str(exc))}") from None

    def _cutoff(self, since: float | None) -> float:
        return float("-inf") if since is None else self.clock() - since

    def series(self, keys: Iterable[str] | None = None, metric: str = "value", since: float | None = None,
               points: int | None = None) -> dict[str, list[tuple[float, float]]]:
        """(ts, value) per key, oldest first, for ``metric``; ``since`` is seconds back from now.

        With ``points``: at most that many per key. With ``since`` too, the window is cut into ``points``
        equal buckets and each holds the average of its samples (24 h drawn in 60 cells reads 60 rows per key);
        without ``since``, the newest ``points`` samples of the last ``2 x points x every`` seconds: what seeds
        sparklines after a restart (recent history only: points from before a long stop would read as a trend).
        Missing file: empty. Raises StoreError when the file cannot be read.
        """
        if not self.path.exists():
            return {}
        wanted = None if keys is None else list(keys)
        if wanted is not None and not wanted:
            return {}
        where = "metric = ? AND ts >= ?" + ("" if wanted is None else " AND list_contains(?, key)")
        recent = since if since is not None or points is None else 2 * max(0, points) * max(self.every, 1.0)
        params: list[Any] = [metric, self._cutoff(recent)] + ([] if wanted is None else [wanted])
        if points is not None and since is not None:
            start = self.clock() - since
            width = max(since / max(1, points), 1e-9)
            sql = (f"SELECT key, avg(ts), avg(value) FROM samples WHERE {where} "
                   f"GROUP BY key, least(floor((ts - ?) / ?), ?) ORDER BY key, 2")
            params += [start, width, max(1, points) - 1]
        elif points is not None:
            sql = (f"SELECT key, ts, value FROM (SELECT key, ts, value, row_number() OVER "
                   f"(PARTITION BY key ORDER BY ts DESC) AS n FROM samples WHERE {where}) WHERE n <= ? "
                   f"ORDER BY key, ts")
            params.append(max(0, points))
        else:
            sql = f"SELECT key, ts, value FROM samples WHERE {where} ORDER BY key, ts"
        found: dict[str, list[tuple[float, float]]] = {}
        for key, ts, value in self._query(sql, params):
            found.setdefault(key, []).append((ts, value))
        return found

    @staticmethod
    def _about(name: str | None) -> tuple[str, list[Any]]:
        return ("TRUE", []) if name is None else ("(source = ? OR key = ?)", [name, name])

    def summary(self, name: str | None = None, since: float | None = None,
                metric: str | None = None) -> list[Summary]:
        """Per key and metric of a source (or one key): how many samples, when, min, average, max, the last."""
        about, params = self._about(name)
        sql = (f"SELECT key, metric, count(*), min(ts), max(ts), min(value), avg(value), max(value), "
               f"arg_max(value, ts) FROM samples WHERE {about} AND ts >= ?"
               + (" AND metric = ?" if metric else "") + " GROUP BY key, metric ORDER BY key, metric")
        params += [self._cutoff(since)] + ([metric] if metric else [])
        return [Summary(*row) for row in self._query(sql, params)]

    def samples(self, name: str | None = None, since: float | None = None,
                metric: str | None = None) -> list[tuple[str, str, float, float]]:
        """(key, metric, ts, value) of a source (or one key), by key, metric and time."""
        about, params = self._about(name)
        sql = (f"SELECT key, metric, ts, value FROM samples WHERE {about} AND ts >= ?"
               + (" AND metric = ?" if metric else "") + " ORDER BY key, metric, ts")
        return self._query(sql, params + [self._cutoff(since)] + ([metric] if metric else []))

    def metrics(self, name: str | None = None, since: float | None = None) -> list[str]:
        about, params = self._about(name)
        rows = self._query(f"SELECT DISTINCT metric FROM samples WHERE {about} AND ts >= ? ORDER BY 1",
                           params + [self._cutoff(since)])
        return [row[0] for row in rows]

    def transitions(self, name: str | None = None, since: float | None = None) -> list[Transition]:
        about, params = self._about(name)
        rows = self._query(f"SELECT * FROM transitions WHERE {about} AND ts >= ? ORDER BY ts, key",
                           params + [self._cutoff(since)])
        return [Transition(*row) for row in rows]

    def alert_events(self, name: str | None = None, since: float | None = None,
                     earlier: bool = False) -> list[AlertEvent]:
        """Alert events in the window, by time; with ``earlier``, also the earlier events of the alerts that have
        one in the window (when an alert resolved in the window began to fire before it)."""
        about, params = self._about(name)
        cutoff = self._cutoff(since)
        if earlier:
            sql = (f"SELECT * FROM alerts WHERE fingerprint IN (SELECT fingerprint FROM alerts WHERE {about} "
                   f"AND ts >= ?) OR ({about} AND ts >= ?) ORDER BY ts, key")
            params = params + [cutoff] + params + [cutoff]
        else:
            sql = f"SELECT * FROM alerts WHERE {about} AND ts >= ? ORDER BY ts, key"
            params = params + [cutoff]
        return [AlertEvent(*row) for row in self._query(sql, params)]

    def sources(self, since: float | None = None) -> list[str]:
        """Every source with something in the window."""
        cutoff = self._cutoff(since)
        rows = self._query("SELECT DISTINCT source FROM (SELECT source FROM samples WHERE ts >= ? UNION ALL "
                           "SELECT source FROM transitions WHERE ts >= ? UNION ALL "
                           "SELECT source FROM alerts WHERE ts >= ?) ORDER BY 1", [cutoff] * 3)
        return [row[0] for row in rows]
