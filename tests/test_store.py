"""The history store against real DuckDB files: throttling, state changes, alert events, restart, retention,
a writer killed mid-write, two writers on one file, and files it cannot use."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

duckdb = pytest.importorskip("duckdb")

from backends import store as store_module  # noqa: E402
from backends.config import parse  # noqa: E402
from backends.model import AlertReading, CheckReading, GaugeReading, HostReading, State  # noqa: E402
from backends.store import HistoryStore, default_path, store_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def gauge(key: str, ts: float, value: float, state: State = State.OK, source: str = "host") -> GaugeReading:
    return GaugeReading(key=key, source=source, state=state, reason=state.name, ts=ts, label=key, amount=value)


def alert(status: str, ts: float, fingerprint: str = "fp1", name: str = "DiskFull", source: str = "am",
          **more) -> AlertReading:
    state = State.CRITICAL if status == "firing" else State.OK
    return AlertReading(key=f"{source}:{name}:{fingerprint}", source=source, state=state, reason="", ts=ts,
                        origin="alertmanager", name=name, severity="critical", status=status, fingerprint=fingerprint,
                        target="db-1", why="disk 97% > 90%", **more)


def rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "state" / "lakedeck" / "history.duckdb"


def test_samples_are_throttled_per_key_and_metric(db):
    store = HistoryStore(db, every=10.0, clock=Clock())
    for ts in (0, 3, 6, 10, 12, 19, 20, 31):
        store.record([gauge("cpu", NOW + ts, ts)])
    store.record([HostReading(key="fleet:web-1", source="fleet", state=State.OK, reason="", ts=NOW, cpu=5.0,
                              memory=40.0, up=True)])
    assert store.flush()
    assert store.series(["cpu"])["cpu"] == [(NOW + 0, 0.0), (NOW + 10, 10.0), (NOW + 20, 20.0), (NOW + 31, 31.0)]
    assert rows(db, "SELECT metric, value FROM samples WHERE key = 'fleet:web-1' ORDER BY metric") == \
        [("cpu", 5.0), ("memory", 40.0), ("up", 1.0), ("value", 5.0)]
    store.close()


def test_record_is_cheap_and_the_writer_thread_writes_in_batches(db):
    store = HistoryStore(db, every=0, flush_every=3600, clock=Clock())
    store.record([gauge("cpu", NOW + i, i) for i in range(3)])
    assert not db.exists()  # nothing touches the disk until the writer runs
    store.start()
    store.record([gauge("mem", NOW, 1.0)])
    assert store.flush(timeout=10)
    assert rows(db, "SELECT count(*) FROM samples") == [(4,)]
    assert rows(db, "SELECT value FROM meta WHERE name = 'schema'") == [(str(store_module.SCHEMA_VERSION),)]
    store.close()
    assert not store._thread.is_alive()


def test_importing_the_store_does_not_import_duckdb():
    code = "import sys, backends.store, backends.history_cli; print('duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_a_restart_reads_back_what_was_written(db):
    clock = Clock()
    first = HistoryStore(db, every=10.0, clock=clock)
    first.start()
    for i in range(30):
        first.record([gauge("cpu", NOW + 10 * i, float(i)), gauge("disk", NOW + 10 * i, 50.0)])
    first.close()
    clock.now = NOW + 300
    second = HistoryStore(db, every=10.0, clock=clock)  # a new console on the same file
    series = second.series()
    assert series["cpu"] == [(NOW + 10 * i, float(i)) for i in range(30)]
    assert second.series(["cpu"], points=5)["cpu"] == [(NOW + 10 * i, float(i)) for i in range(25, 30)]
    bucketed = second.series(["cpu"], since=300, points=3)["cpu"]  # three buckets of 100 s: averages
    assert [round(v, 1) for _, v in bucketed] == [4.5, 14.5, 24.5]
    assert second.series(["nope"]) == {} and second.series([]) == {}
    assert set(second.series(since=300, points=10)) == {"cpu", "disk"}
    second.close()


def test_retention_deletes_old_rows_at_start_and_then_at_most_hourly(db):
    clock = Clock()
    old, recent = NOW - 8 * 86400, NOW - 3600
    writer = HistoryStore(db, retention=7 * 86400, every=0, clock=Clock(old))
    writer.record([gauge("cpu", old, 1.0, State.WARN), alert("firing", old)])
    writer.record([gauge("cpu", recent, 2.0, State.CRITICAL)])
    writer.close()  # written with a clock back then: nothing was old yet
    assert rows(db, "SELECT count(*) FROM samples") == [(2,)]
    store = HistoryStore(db, retention=7 * 86400, every=0, clock=clock)
    store.start()
    assert store.flush()
    assert rows(db, "SELECT ts FROM samples") == [(recent,)]
    assert rows(db, "SELECT ts FROM transitions") == [(recent,)]
    assert rows(db, "SELECT count(*) FROM alerts") == [(0,)]
    store.record([gauge("cpu", old, 3.0)])  # an old sample arriving now is kept until the next hourly pass
    clock.now += 1800
    assert store.flush()
    assert rows(db, "SELECT count(*) FROM samples") == [(2,)]
    clock.now += 1801
    store.record([gauge("mem", clock.now, 1.0)])
    assert store.flush()
    assert sorted(rows(db, "SELECT key FROM samples")) == [("cpu",), ("mem",)]
    store.close()


def test_state_changes_are_recorded_once_per_change(db):
    store = HistoryStore(db, every=10.0, clock=Clock())
    states = [State.OK, State.OK, State.WARN, State.WARN, State.CRITICAL, State.OK, State.OK]
    for i, state in enumerate(states):
        store.record([CheckReading(key="api", source="api", state=state, reason=f"{state.name}\nline 2", ts=NOW + i)])
    store.record([gauge("disk", NOW, 99.0, State.CRITICAL)])  # first seen, and not OK
    assert store.flush()
    found = [(t.key, t.old, t.new) for t in store.transitions()]
    assert found == [("disk", None, "CRITICAL"), ("api", "OK", "WARN"), ("api", "WARN", "CRITICAL"),
                     ("api", "CRITICAL", "OK")]
    assert all("\n" not in t.reason for t in store.transitions())
    store.close()
    again = HistoryStore(db, every=10.0, clock=Clock())  # a restart: the last stored states are known
    again.start()
    assert again.flush()
    again.record([gauge("disk", NOW + 100, 99.0, State.CRITICAL), CheckReading(
        key="api", source="api", state=State.WARN, reason="slow", ts=NOW + 100)])
    assert again.flush()
    assert [(t.key, t.old, t.new) for t in again.transitions()][4:] == [("api", "OK", "WARN")]
    again.close()


def test_alert_events_follow_status_changes_and_alerts_that_go_away(db):
    clock = Clock()
    store = HistoryStore(db, every=10.0, clock=clock)
    store.start()
    store.flush()
    store.record([alert("pending", NOW)], source="am")
    store.record([alert("firing", NOW + 60, since=NOW)], source="am")
    store.record([alert("firing", NOW + 120, since=NOW)], source="am")  # no change: no event
    store.record([alert("firing", NOW + 150, since=NOW), alert("firing", NOW + 150, fingerprint="fp2",
                                                               name="LagHigh")], source="am")
    store.record([AlertReading(key="am", source="am", state=State.UNKNOWN, reason="connection refused",
                               ts=NOW + 160, status="error", fingerprint="error:am", name="am",
                               why="connection refused")], source="am")  # a failed poll ends nothing
    store.record([alert("resolved", NOW + 180, since=NOW, until=NOW + 175),
                  alert("firing", NOW + 180, fingerprint="fp2", name="LagHigh")], source="am")
    clock.now = NOW + 200
    store.record([], source="am")  # fp2 is no longer reported
    assert store.flush()
    found = [(e.fingerprint, e.status) for e in store.alert_events()]
    assert found == [("fp1", "pending"), ("fp1", "firing"), ("fp2", "firing"), ("error:am", "error"),
                     ("error:am", "gone"), ("fp1", "resolved"), ("fp2", "gone")]
    resolved = store.alert_events()[5]
    assert (resolved.since, resolved.until, resolved.severity, resolved.target) == (NOW, NOW + 175, "critical", "db-1")
    store.close()
    again = HistoryStore(db, clock=Clock())
    again.start()
    assert again.flush()
    again.record([alert("resolved", NOW + 300, until=NOW + 175)], source="am")  # as stored: nothing new
    assert again.flush()
    assert len(again.alert_events()) == 7
    again.close()


def test_an_alert_still_firing_after_a_restart_is_not_recorded_again_and_its_end_is(db):
    store = HistoryStore(db, clock=Clock())
    store.record([alert("firing", NOW)], source="am")
    store.close()
    again = HistoryStore(db, clock=Clock())
    again.start()
    assert again.flush()
    again.record([alert("firing", NOW + 60)], source="am")
    again.record([], source="am")
    assert again.flush()
    assert [e.status for e in again.alert_events()] == ["firing", "gone"]
    again.close()


WRITER = textwrap.dedent("""
    import sys
    import time
    from pathlib import Path
    from backends.model import GaugeReading, State
    from backends.store import HistoryStore

    path, source, batches, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = HistoryStore(path, every=0, flush_every=3600)
    store.start()
    for b in range(batches):
        ts = time.time()  # recent (retention keeps it), and one per batch
        store.record([GaugeReading(key=f"{source}-{i}", source=source, state=State.OK, reason="", ts=ts,
                                   label="x", amount=float(i)) for i in range(size)])
        print("writing", flush=True)
        if not store.flush(timeout=60):
            print("FAILED", store.problem, flush=True)
            sys.exit(1)
        print(b, flush=True)
    store.close()
""")


def writer(path: Path, source: str, batches: int, size: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), source, str(batches), str(size)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def test_a_writer_killed_mid_write_loses_at_most_the_batch_it_was_writing(db):
    size = 20_000
    db.parent.mkdir(parents=True)
    acknowledged = 0
    for round_, delay in enumerate((0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.2)):  # lock, open, insert, commit, close
        proc = writer(db, "kill", 10_000, size)
        try:
            for _ in range(1 + round_ % 2):  # a batch or two in, then kill it while it writes the next
                assert proc.stdout.readline() == "writing\n"
                line = proc.stdout.readline()
                assert line.strip().isdigit(), line + proc.stderr.read()
                acknowledged += 1
            assert proc.stdout.readline() == "writing\n"
            time.sleep(delay)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        per_batch = rows(db, "SELECT ts, count(*) FROM samples GROUP BY ts")  # it opens: not corrupt
        assert all(count == size for _, count in per_batch), per_batch  # every batch all or nothing
        total = rows(db, "SELECT count(*) FROM samples")[0][0]
        assert total // size >= acknowledged  # nothing acknowledged was lost
        acknowledged = total // size
    after = HistoryStore(db, every=0)  # and it takes new batches
    after.record([gauge("after", NOW, 1.0)])
    assert after.flush() and after.problem == ""
    after.close()


def test_two_consoles_write_to_one_file_in_turn(db):
    db.parent.mkdir(parents=True)
    procs = [writer(db, name, 25, 400) for name in ("one", "two")]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
        assert out.split()[-1] == "24"
    assert rows(db, "SELECT source, count(*) FROM samples GROUP BY source ORDER BY source") == \
        [("one", 25 * 400), ("two", 25 * 400)]


def test_a_busy_lock_keeps_the_batch_queued_and_bounded(db, monkeypatch):
    monkeypatch.setattr(store_module, "LOCK_WAIT", 0.1)
    monkeypatch.setattr(store_module, "QUEUE_LIMIT", 5)
    store = HistoryStore(db, every=0, clock=Clock())
    db.parent.mkdir(parents=True)
    fd = os.open(store.lock_path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another console holds the file
    try:
        store.record([gauge(f"k{i}", NOW, i) for i in range(4)])
        assert not store.flush()
        store.record([gauge(f"k{i}", NOW + 1, i) for i in range(4)])
        assert not store.flush()
        assert store.problem == "" and store.dropped == 3  # the oldest went first
    finally:
        os.close(fd)
    assert store.flush()
    assert rows(db, "SELECT count(*), min(ts) FROM samples") == [(5, NOW)]
    assert rows(db, "SELECT count(*) FROM samples WHERE ts = ?".replace("?", str(NOW + 1))) == [(4,)]
    store.close()


def test_a_file_that_is_not_duckdb_is_a_problem_not_a_crash(db):
    db.parent.mkdir(parents=True)
    db.write_text("not a database\n" * 200)
    store = HistoryStore(db, every=0, clock=Clock())
    store.start()
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush() is False
    assert store.problem == f"history store {db}: not a DuckDB file (move it away or set store.path)"
    store.record([gauge("cpu", NOW + 1, 2.0)])  # dropped at once from now on
    assert store.flush() is False
    store.close()
    assert db.read_text().startswith("not a database")  # untouched
    reader = HistoryStore(db)  # as the console reads it at start, before the writer has tried
    with pytest.raises(store_module.StoreError, match="not a DuckDB file"):
        reader.series()
    assert "not a DuckDB file" in reader.problem


def test_a_directory_that_cannot_be_made_is_a_problem(tmp_path):
    (tmp_path / "file").write_text("")
    store = HistoryStore(tmp_path / "file" / "history.duckdb", clock=Clock())
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush() is False
    assert "cannot create" in store.problem and "store.path" in store.problem and "\n" not in store.problem
    store.close()


def test_a_file_from_a_newer_lakedeck_is_left_alone(db):
    db.parent.mkdir(parents=True)
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema', '99')")
    con.close()
    store = HistoryStore(db, every=0, clock=Clock())
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush() is False and "newer lakedeck (schema 99" in store.problem
    assert rows(db, "SELECT table_name FROM information_schema.tables") == [("meta",)]  # left as it was
    store.close()


def test_a_reading_the_store_cannot_take_does_not_raise(db):
    class Odd(GaugeReading):
        def metrics(self):
            return {"value": "not a number"}

    store = HistoryStore(db, clock=Clock())
    store.record([Odd(key="x", source="x", state=State.OK, reason="", ts=NOW)])
    assert "was not recorded" in store.problem
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush() and store.problem == ""  # a later batch that is written clears it
    store.close()


def test_store_for_follows_the_config(tmp_path):
    assert default_path({"XDG_STATE_HOME": "/s"}) == Path("/s/lakedeck/history.duckdb")
    assert default_path({"HOME": "/home/u"}) == Path("/home/u/.local/state/lakedeck/history.duckdb")
    config = parse("store: {retention: 2d, every: 30s}\n", "t.yaml")
    made = store_for(config, {"XDG_STATE_HOME": str(tmp_path)})
    assert made.path == tmp_path / "lakedeck" / "history.duckdb"
    assert (made.retention, made.every) == (2 * 86400, 30.0)
    assert store_for(parse(f"store: {{path: {tmp_path}/h.duckdb}}\n", "t.yaml")).path == tmp_path / "h.duckdb"
    assert store_for(parse("store: {enabled: false}\n", "t.yaml")) is None
