"""8. The history store: how fast batches go into DuckDB, and drawing 24 h of history for 50 series.

    python bench/store.py [--quick]

Insert: samples of 50 fleet hosts (8 metrics each) queued with ``HistoryStore.record()`` and written by
``flush()`` as the writer thread does: take the lock file, open the DuckDB file, one transaction, close (DuckDB
checkpoints on close), unlock. Two batch sizes: what 5 s of polling makes (50 hosts x 8 metrics, a sample every
10 s: 200 samples), and a bulk batch of 100,000 (a backlog after the lock was busy). Baselines in the same run,
into a bare table on a connection kept open (no lock, no open/close): ``executemany`` (the plain way), and one
INSERT of column lists (what the store itself does inside its transaction).
Draw: a file holding 24 h of 50 series at a 10 s interval (8,640 points each, 432,000 samples); the time from
asking for them to having 50 sparklines (``tui.rows.sparkline``) at widths 12 (a table's Trend column) and
120 (a full-width chart): ``series(since=24h, points=width)`` buckets in DuckDB and returns ``width`` averages
per series. Baseline, same run: read all 432,000 points into Python and average them into the same buckets there.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import Row, Section, listing, median, ratio

from backends.model import GaugeReading, HostReading, State
from backends.store import HistoryStore
from tui.rows import sparkline

HOSTS = 50
METRICS = 8  # value, cpu, memory, disk, load, rx, tx, up
SMALL = 200  # samples a 5 s batch holds: 50 hosts x 8 metrics every 10 s, half of them per 5 s
BULK = 100_000
EXECUTEMANY = 20_000  # executemany is slow: fewer rows, the rate is what counts
DAY = 86400
STEP = 10.0
POINTS = int(DAY / STEP)  # 8,640
WIDTHS = (12, 120)
SMALL_TARGET_MS = 100.0  # the writer thread holds the file at most this long per 5 s batch
DRAW_TARGET_MS = 250.0  # 24 h of 50 series at start: well under a second, in a thread, off the first frame


def host(i: int, ts: float) -> HostReading:
    return HostReading(key=f"fleet:web-{i:02d}", source="fleet", state=State.OK, reason="", ts=ts,
                       instance=f"web-{i:02d}:9100", cpu=(i * 7 + ts / 60) % 100, memory=40.0 + i % 30,
                       disk=55.0 + i % 20, load=0.5, rx=1.5e6, tx=2.5e5, up=True)


def polls(count: int, start: float) -> list[list[HostReading]]:
    """``count`` polls of every host, STEP apart: HOSTS x METRICS samples each."""
    return [[host(i, start + n * STEP) for i in range(HOSTS)] for n in range(count)]


def rows_of(readings: list[list[HostReading]]) -> list[tuple]:
    return [(r.ts, r.source, r.key, metric, value) for poll in readings for r in poll
            for metric, value in r.metrics().items()]


def store_batch(folder: Path, readings: list[list[HostReading]], keep: int | None = None) -> tuple[float, float, int]:
    """(seconds in record() per poll, seconds in flush(), samples written): one batch through a fresh store
    (its file already exists, with the schema: the writer's first pass at start)."""
    path = folder / "history.duckdb"
    store = HistoryStore(path, every=STEP)
    store.flush()  # the start-up pass (schema, retention, last states): not part of a batch
    started = time.perf_counter()
    for poll in readings:
        store.record(poll)
    recorded = (time.perf_counter() - started) / len(readings)
    queued = len(store._samples)
    if keep is not None:  # a 5 s batch holds half of a 10 s poll's samples
        del store._samples[keep:]
        queued = keep
    started = time.perf_counter()
    assert store.flush(timeout=120), store.problem
    took = time.perf_counter() - started
    store.close()
    return recorded, took, queued


def bare_inserts(folder: Path, rows: list[tuple]) -> tuple[float, float]:
    """Samples per second into a bare table on an open connection: (executemany, one INSERT of column lists)."""
    import duckdb

    con = duckdb.connect(str(folder / "bare.duckdb"))
    con.execute("CREATE TABLE samples (ts DOUBLE, source VARCHAR, key VARCHAR, metric VARCHAR, value DOUBLE)")
    few = rows[:EXECUTEMANY]
    started = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    con.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", few)
    con.execute("COMMIT")
    many = len(few) / (time.perf_counter() - started)
    started = time.perf_counter()
    columns = [list(column) for column in zip(*rows)]
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO samples SELECT * FROM (SELECT unnest(?::DOUBLE[]), unnest(?::VARCHAR[]), "
                "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::DOUBLE[]))", columns)
    con.execute("COMMIT")
    bulk = len(rows) / (time.perf_counter() - started)
    con.close()
    return many, bulk


def fill_day(path: Path, now: float) -> None:
    """24 h of 50 gauges at STEP ('value' only: 432,000 samples), written through the store in batches."""
    store = HistoryStore(path, every=STEP, clock=lambda: now)
    start = now - DAY + STEP
    for n in range(POINTS):
        ts = start + n * STEP
        store.record([GaugeReading(key=f"fleet:web-{i:02d}", source="fleet", state=State.OK, reason="", ts=ts,
                                   label="cpu", amount=(i * 7 + ts / 60) % 100) for i in range(HOSTS)])
        if n % 1000 == 999:  # the queue holds at most 200,000 samples
            assert store.flush(timeout=300), store.problem
    assert store.flush(timeout=300), store.problem
    store.close()


def draw_bucketed(path: Path, now: float, width: int) -> tuple[float, list[str]]:
    started = time.perf_counter()
    store = HistoryStore(path, clock=lambda: now)
    series = store.series(since=DAY, points=width)
    lines = [sparkline([v for _, v in points], width) for points in series.values()]
    return time.perf_counter() - started, lines


def draw_in_python(path: Path, now: float, width: int) -> tuple[float, list[str]]:
    started = time.perf_counter()
    store = HistoryStore(path, clock=lambda: now)
    series = store.series(since=DAY)
    start, size = now - DAY, DAY / width
    lines = []
    for points in series.values():
        sums, counts = [0.0] * width, [0] * width
        for ts, value in points:
            b = min(width - 1, int((ts - start) // size))
            sums[b] += value
            counts[b] += 1
        lines.append(sparkline([s / c for s, c in zip(sums, counts) if c], width))
    return time.perf_counter() - started, lines


def run(quick: bool = False) -> Section:
    runs = 2 if quick else 5
    now = time.time()
    small_polls = polls(1, now - 60)
    bulk_polls = polls(BULK // (HOSTS * METRICS), now - 3600)
    bulk_rows = rows_of(bulk_polls)
    record_us, small_ms, bulk_rate, many_rate, floor_rate = [], [], [], [], []
    draw: dict[int, list[float]] = {w: [] for w in WIDTHS}
    python: dict[int, list[float]] = {w: [] for w in WIDTHS}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        day = folder / "day" / "history.duckdb"
        fill_day(day, now)
        size_mb = sum(p.stat().st_size for p in day.parent.iterdir()) / 2**20
        for i in range(runs + 1):  # run 0 warms DuckDB and the page cache: not counted
            work = folder / f"run{i}"
            work.mkdir()
            _, took, _ = store_batch(work, small_polls, keep=SMALL)
            recorded, bulk_took, bulk_count = store_batch(work, bulk_polls)
            many, floor = bare_inserts(work, bulk_rows)
            drawn = {w: draw_bucketed(day, now, w) for w in WIDTHS}
            naive = {w: draw_in_python(day, now, w) for w in WIDTHS}
            for w in WIDTHS:
                assert len(drawn[w][1]) == HOSTS and all(len(line) == w for line in drawn[w][1]), drawn[w][1][:2]
                assert len(naive[w][1]) == HOSTS
            if i:
                record_us.append(recorded * 1e6)
                small_ms.append(took * 1000)
                bulk_rate.append(bulk_count / bulk_took)
                many_rate.append(many)
                floor_rate.append(floor)
                for w in WIDTHS:
                    draw[w].append(drawn[w][0])
                    python[w].append(naive[w][0])
    small = median(small_ms)
    rows = [
        Row(f"a 5 s batch ({SMALL} samples: 50 hosts x 8 metrics at 10 s), lock to unlock", f"{small:.1f} ms",
            target=f"< {SMALL_TARGET_MS:g} ms", passed=small < SMALL_TARGET_MS),
        Row(f"insert rate, bulk batch of {BULK:,} samples through the store", f"{median(bulk_rate):,.0f} samples/s",
            f"{median(floor_rate):,.0f} samples/s (one INSERT of column lists, open connection)",
            ratio(median(bulk_rate), median(floor_rate))),
        Row("the same insert rate, against plain executemany on an open connection",
            f"{median(bulk_rate):,.0f} samples/s",
            f"{median(many_rate):,.0f} samples/s (executemany)", ratio(median(bulk_rate), median(many_rate))),
        Row("record() on the event loop, per poll of 50 hosts (throttle, queue)", f"{median(record_us):.0f} µs"),
    ]
    for w in WIDTHS:
        ms, base = median(draw[w]) * 1000, median(python[w]) * 1000
        rows.append(Row(f"24 h of 50 series to 50 sparklines of width {w}", f"{ms:.0f} ms",
                        f"{base:.0f} ms (all 432,000 points into Python)", ratio(ms, base),
                        f"< {DRAW_TARGET_MS:g} ms", ms < DRAW_TARGET_MS))
    return Section(
        "8. History store: DuckDB batches and 24 h of sparklines",
        __doc__.split("\n\n", 2)[2].replace("\n", " ").strip() + f" Median of {runs} runs after one uncounted.",
        rows,
        [f"- 5 s batch runs (ms): {listing(small_ms, '{:.1f}')}",
         f"- bulk insert runs (samples/s): store {listing(bulk_rate, '{:,.0f}')}; column lists "
         f"{listing(floor_rate, '{:,.0f}')}; executemany {listing(many_rate, '{:,.0f}')}",
         *(f"- width {w} runs (ms): bucketed {listing([v * 1000 for v in draw[w]], '{:.0f}')}; in Python "
           f"{listing([v * 1000 for v in python[w]], '{:.0f}')}" for w in WIDTHS),
         f"- the 24 h file: {HOSTS * POINTS:,} samples in {size_mb:.1f} MiB (with its WAL, if any)"],
    )


if __name__ == "__main__":
    print(run("--quick" in sys.argv).markdown())
