"""The history store's files: private like the audit log (0600), never left half made by a full disk, and what a
full disk left there before (an empty or NUL-filled file) replaced, not taken for a foreign file."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

duckdb = pytest.importorskip("duckdb")

from backends.store import HistoryStore  # noqa: E402
from test_store import NOW, Clock, gauge, rows  # noqa: E402


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def private(directory: Path) -> dict[str, int]:
    """The mode of every file the store keeps in ``directory``."""
    return {entry.name: mode(entry) for entry in directory.iterdir() if entry.name.startswith("history.duckdb")}


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "state" / "lakedeck" / "history.duckdb"


@pytest.fixture
def wide_umask():
    old = os.umask(0o022)  # what most machines have: DuckDB would make its files 0644
    yield
    os.umask(old)


def test_a_new_store_is_private_like_the_audit_log(db, wide_umask):
    store = HistoryStore(db, every=0, clock=Clock())
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush(), store.problem
    assert private(db.parent) == {"history.duckdb": 0o600, "history.duckdb.lock": 0o600}
    assert mode(db.parent) == 0o700  # the directory the store made
    assert not [name for name in os.listdir(db.parent) if ".new-" in name]  # made aside, then linked in place
    store.close()


def test_the_wal_of_a_write_is_private_too(db, wide_umask):
    store = HistoryStore(db, every=0, clock=Clock())
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush()
    seen = {}
    with store._connection(create=True, wait=1.0) as con:  # a batch while it is written: the WAL exists
        store._insert(con, [(NOW + 1, "host", "cpu", "value", 2.0)], [], [])
        seen = private(db.parent)
    assert seen.get("history.duckdb.wal") == 0o600, seen
    store.close()


def test_files_an_older_lakedeck_left_wide_open_are_tightened(db, wide_umask):
    db.parent.mkdir(parents=True)
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE kept (a INT)")
    con.close()
    (db.parent / "history.duckdb.lock").touch()
    os.chmod(db, 0o644)
    os.chmod(db.parent / "history.duckdb.lock", 0o666)
    store = HistoryStore(db, every=0, clock=Clock())
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush(), store.problem
    assert private(db.parent) == {"history.duckdb": 0o600, "history.duckdb.lock": 0o600}
    assert rows(db, "SELECT count(*) FROM kept") == [(0,)]  # the same file, kept
    store.close()


def test_an_empty_file_left_by_a_full_disk_is_started_afresh(db):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")
    store = HistoryStore(db, every=0, clock=Clock())
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush(), store.problem
    assert rows(db, "SELECT key, value FROM samples") == [("cpu", 1.0)] and mode(db) == 0o600
    assert sorted(os.listdir(db.parent)) == ["history.duckdb", "history.duckdb.lock"]  # nothing to keep of it
    store.close()


def test_a_file_of_nul_bytes_is_set_aside_and_started_afresh(db):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"\0" * 12288)  # blocks allocated, nothing written in them
    store = HistoryStore(db, every=0, clock=Clock(NOW))
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush(), store.problem
    assert rows(db, "SELECT key, value FROM samples") == [("cpu", 1.0)]
    aside = db.parent / "history.duckdb.broken-20270115T080000Z"  # NOW, in UTC
    assert aside.read_bytes() == b"\0" * 12288
    store.close()


@pytest.mark.parametrize("content", [b"not a database\n" * 200, b"\0" * 100 + b"x"])
def test_a_non_empty_foreign_file_is_left_alone_with_one_line(db, content):
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    store = HistoryStore(db, every=0, clock=Clock())
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush() is False
    assert store.problem == f"history store {db}: not a DuckDB file (move it away or set store.path)"
    assert db.read_bytes() == content and sorted(os.listdir(db.parent)) == ["history.duckdb", "history.duckdb.lock"]
    store.close()


def test_a_reader_is_told_an_empty_file_is_no_history_and_leaves_it(db):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")
    reader = HistoryStore(db)
    with pytest.raises(Exception, match="is empty \\(left by a full disk\\?\\)"):
        reader.series(["cpu"])
    assert db.read_bytes() == b"" and not reader._dead


@pytest.fixture
def full_disk(tmp_path):
    """A 4 MiB tmpfs (mount needs root and a kernel that lets us); ``fill()`` leaves it no free byte."""
    where = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip() or mounted.returncode}")
    filler = where / "filler"

    def fill() -> None:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)

    fill.free = lambda: filler.unlink()
    try:
        yield where, fill
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_full_disk_leaves_nothing_that_blocks_the_next_start(full_disk):
    where, fill = full_disk
    db = where / "state" / "history.duckdb"
    fill()
    store = HistoryStore(db, every=0, clock=Clock())
    store.record([gauge("cpu", NOW, 1.0)])
    assert store.flush() is False and "No space left on device" in store.problem and "\n" not in store.problem
    assert not db.exists() and sorted(os.listdir(db.parent)) == ["history.duckdb.lock"]  # no half-made file
    fill.free()
    store.record([gauge("cpu", NOW + 10, 2.0)])
    assert store.flush(), store.problem  # the same console goes on once there is room
    store.close()
    again = HistoryStore(db, every=0, clock=Clock())  # and the next start too
    again.record([gauge("cpu", NOW + 20, 3.0)])
    assert again.flush(), again.problem
    assert again.series(["cpu"], since=None)["cpu"] == [(NOW + 10, 2.0), (NOW + 20, 3.0)]
    fill()
    again.record([gauge("cpu", NOW + 30, 4.0)])  # full while writing to the file: a problem, not the end
    assert again.flush() is False and "No space left on device" in again.problem
    assert {name: perms for name, perms in private(db.parent).items()} == {
        "history.duckdb": 0o600, "history.duckdb.lock": 0o600, **(
            {"history.duckdb.wal": 0o600} if (db.parent / "history.duckdb.wal").exists() else {})}
    fill.free()
    again.record([gauge("cpu", NOW + 40, 5.0)])
    assert again.flush(), again.problem
    assert [value for _, value in again.series(["cpu"], since=None)["cpu"]] == [2.0, 3.0, 5.0]
    again.close()
