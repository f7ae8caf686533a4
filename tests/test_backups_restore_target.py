"""A restore writes what its preview says, where it says (issue 13, items 3, 4 and 6): a files set unpacks as
its top-level entries, sizes are the unpacked ones and free space is checked first, whatever fails part-way
is removed, a dead restore's temporary files are cleaned up, and a restore over the job's own live data says
so and keeps what it replaces."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from integration import required
from test_backups import Clock, act, config_file, engine_for, lakedeck, list_sets, reading

from backends.backup_sets import FORMAT, MANIFEST

MiB = 1024 * 1024


def top_of(preview_line: str) -> list[str]:
    """The top-level entries a preview's "into DIR: a, b" line names."""
    return preview_line.split(": ", 1)[1].split(", ")


# -- item 3: where a files set lands -------------------------------------------------------------

async def test_the_issue_case_a_files_set_lands_as_its_directory_not_under_its_absolute_path(tmp_path):
    warehouse = tmp_path / "srv" / "ocel" / "warehouse"
    (warehouse / "tables").mkdir(parents=True)
    (warehouse / "tables" / "orders.parquet").write_bytes(b"PAR1" * 100)
    (warehouse / "catalog.json").write_text("{}")
    engine = engine_for(tmp_path, "files", paths=[str(warehouse)])
    assert (await act(engine, "run"))[0].ok
    target = tmp_path / "srv" / "restore" / "wh"
    result, preview, _ = await act(engine, "restore", value=str(target))
    assert result.ok, result.error
    assert preview[1] == f"into {target}: warehouse"
    assert sorted(os.listdir(target)) == top_of(preview[1]) == ["warehouse"]
    assert (target / "warehouse" / "tables" / "orders.parquet").read_bytes() == b"PAR1" * 100
    assert (target / "warehouse" / "catalog.json").read_text() == "{}"


async def test_several_paths_land_relative_to_their_common_directory(tmp_path):
    (tmp_path / "a" / "data").mkdir(parents=True)
    (tmp_path / "a" / "data" / "f.csv").write_text("1,2")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "conf.yaml").write_text("x: 1")
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "a" / "data"), str(tmp_path / "b" / "conf.yaml")])
    assert (await act(engine, "run"))[0].ok
    manifest = json.loads((Path(list_sets(tmp_path / "dest" / "job").sets[0].path) / MANIFEST).read_text())
    assert manifest["root"] == str(tmp_path) and manifest["top"] == ["a", "b"]
    target = tmp_path / "back"
    result, preview, lines = await act(engine, "restore", value=str(target))
    assert result.ok, result.error
    assert sorted(os.listdir(target)) == top_of(preview[1]) == ["a", "b"]
    assert (target / "a" / "data" / "f.csv").read_text() == "1,2" and (target / "b" / "conf.yaml").read_text() == "x: 1"
    assert f"unpacked a, b into {target}" in lines


def plant_files_set(job: Path, members: list[tuple[tarfile.TarInfo, bytes]], top: list[str] | None,
                    unpacked: int | None) -> str:
    """A set whose manifest matches its (crafted) archive: only what is inside the archive is wrong. Without
    ``top`` and ``unpacked``, a set as lakedeck made them before it recorded its layout."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    name = "20230101T000000Z"
    (job / name).mkdir(parents=True)
    (job / name / "files.tar.gz").write_bytes(buffer.getvalue())
    layout = {"top": top, "unpacked": unpacked} if top is not None else {}
    (job / name / MANIFEST).write_text(json.dumps({
        "format": FORMAT, "kind": "files", **layout, "files": [
            {"path": "files.tar.gz", "size": len(buffer.getvalue()),
             "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}]}))
    return name


async def test_a_set_made_before_layouts_were_recorded_restores_where_its_preview_says(tmp_path):
    """Older sets named each file by its absolute path without the leading /: the preview reads the archive's
    headers for the top-level entries and the unpacked size, and the restore puts exactly those there."""
    (tmp_path / "src").mkdir()
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")])
    plant_files_set(tmp_path / "dest" / "job", [member("srv/ocel/warehouse/a.txt", b"a" * 3000)], None, None)
    target = tmp_path / "back"
    result, preview, _ = await act(engine, "restore", value=str(target))
    assert result.ok, result.error
    assert preview[0].split(" · ")[1].startswith("2.9 KB unpacked (") and preview[1] == f"into {target}: srv"
    assert sorted(os.listdir(target)) == top_of(preview[1])
    assert (target / "srv" / "ocel" / "warehouse" / "a.txt").read_bytes() == b"a" * 3000


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode = kind, len(data) if kind == tarfile.REGTYPE else 0, link, 0o644
    return info, data


OK = member("data/ok.txt", b"ok")
UNSAFE = {  # case: (members, what the refusal says)
    "escaping": ([OK, member("../escape.txt", b"x")], "../escape.txt, which the set does not list"),
    "absolute": ([OK, member("/tmp/abs.txt", b"x")], "/tmp/abs.txt, which the set does not list"),
    "unlisted": ([OK, member("other/x.txt", b"x")], "other/x.txt, which the set does not list"),
    "link-out": ([OK, member("data/passwd", kind=tarfile.SYMTYPE, link="/etc/passwd")], "cannot unpack files.tar.gz"),
    "link-up": ([OK, member("data/up", kind=tarfile.SYMTYPE, link="../../..")], "cannot unpack files.tar.gz"),
    "larger": ([member("data/a.bin", b"a" * 4000), member("data/b.bin", b"b" * 4000)],
               "unpacks to more than the 5.9 KB its set records"),
    "missing": ([OK], "the archive lacks more"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
@pytest.mark.parametrize("into", ["new", "empty", "live"])
async def test_an_archive_that_would_write_elsewhere_or_more_is_refused_and_leaves_nothing(tmp_path, case, into):
    members, why = UNSAFE[case]
    live = tmp_path / "live"
    (live / "data").mkdir(parents=True)
    (live / "data" / "ok.txt").write_text("the live file")
    (live / "unrelated.txt").write_text("not the job's")
    top = ["data", "more"] if case == "missing" else ["data"]
    engine = engine_for(tmp_path, "files", paths=[str(live / "data")], restore_to=str(tmp_path / "empty"))
    plant_files_set(tmp_path / "dest" / "job", members, top, 6000 if case == "larger" else 10_000)
    target = {"new": tmp_path / "new" / "deeper", "empty": tmp_path / "empty", "live": live}[into]
    if into == "empty":
        target.mkdir()
    def files() -> list[Path]:
        return sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")
                      if p.name != "audit.jsonl" and "dest" not in p.parts)

    before = files()

    result, _, _ = await act(engine, "restore", value=str(target))
    assert not result.ok and why in result.error and "nothing was restored" in result.error
    assert files() == before  # no directory made, nothing unpacked, nothing moved aside
    assert (live / "data" / "ok.txt").read_text() == "the live file"


# -- item 4: sizes, free space, cleaning up --------------------------------------------------------

async def test_the_manifest_records_unpacked_sizes_and_the_preview_shows_them(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "zeros.bin").write_bytes(bytes(16 * MiB))  # gzips to a few KB
    (tmp_path / "src" / "notes.txt").write_text("n" * 1000)
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")])
    assert (await act(engine, "run"))[0].ok
    (backup,) = list_sets(tmp_path / "dest" / "job").sets
    manifest = json.loads((Path(backup.path) / MANIFEST).read_text())
    assert manifest["unpacked"] == 16 * MiB + 1000 == backup.unpacked and backup.size < 100_000
    result, preview, _ = await act(engine, "restore", value=str(tmp_path / "back"))
    assert result.ok, result.error
    assert preview[0].startswith(f"restore set {backup.name} · 16 MB unpacked (")
    assert " KB in the set), 1 file · " in preview[0]

    database = tmp_path / "app.db"
    con = sqlite3.connect(database)
    con.execute("CREATE TABLE t (b BLOB)")
    con.execute("INSERT INTO t VALUES (zeroblob(200000))")
    con.commit()
    con.close()
    sqlite_job = engine_for(tmp_path / "s", "sqlite", database=str(database))
    assert (await act(sqlite_job, "run"))[0].ok
    (backup,) = list_sets(tmp_path / "s" / "dest" / "job").sets
    manifest = json.loads((Path(backup.path) / MANIFEST).read_text())
    assert manifest["unpacked"] == database.stat().st_size == backup.size == backup.unpacked


def mounted_tmpfs(mount: Path, options: str):
    """A tmpfs with these options at ``mount``, unmounted after the test: a real filesystem that fills up."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
        if required() and os.geteuid() == 0:
            pytest.fail(f"LAKEDECK_REQUIRE_INTEGRATION=1 but {reason}")
        pytest.skip(reason)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_fs(tmp_path):
    """An 8 MiB tmpfs."""
    yield from mounted_tmpfs(tmp_path / "small", "size=8m")


@pytest.fixture
def few_inodes(tmp_path):
    """A tmpfs with room for 64 MiB but only 16 inodes (its root directory takes one)."""
    yield from mounted_tmpfs(tmp_path / "few", "size=64m,nr_inodes=16")


async def test_a_set_larger_unpacked_than_the_free_space_is_refused_before_writing(tmp_path, small_fs):
    """The issue's 1 GiB that gzips small into a 50 MB filesystem, scaled down: 64 MiB into 8 MiB."""
    (tmp_path / "src").mkdir()
    with open(tmp_path / "src" / "sparse.bin", "wb") as handle:
        handle.truncate(64 * MiB)
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")])
    assert (await act(engine, "run"))[0].ok
    target = small_fs / "restore" / "wh"
    result, preview, _ = await act(engine, "restore", value=str(target))
    assert "64 MB unpacked" in preview[0]
    assert not result.ok and f"needs 64 MB, 8.0 MB free on {small_fs}: nothing was restored" in result.error
    assert os.listdir(small_fs) == []

    database = tmp_path / "big.db"
    con = sqlite3.connect(database)
    con.execute("CREATE TABLE t (b BLOB)")
    con.execute("INSERT INTO t VALUES (zeroblob(10485760))")
    con.commit()
    con.close()
    sqlite_job = engine_for(tmp_path / "s", "sqlite", database=str(database))
    assert (await act(sqlite_job, "run"))[0].ok
    result, _, _ = await act(sqlite_job, "restore", value=str(small_fs / "big.db"))
    assert not result.ok and "needs 10 MB, 8.0 MB free on" in result.error
    assert os.listdir(small_fs) == []


async def test_a_restore_that_runs_out_of_inodes_is_undone_and_says_nothing_was_restored(tmp_path, few_inodes):
    (tmp_path / "src" / "many").mkdir(parents=True)
    for n in range(40):
        (tmp_path / "src" / "many" / f"{n}.txt").write_text(str(n))
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")])
    assert (await act(engine, "run"))[0].ok
    target = few_inodes / "restore" / "wh"
    result, _, _ = await act(engine, "restore", value=str(target))
    assert not result.ok and result.error.startswith("No space left on device writing ")
    assert result.error.endswith(f"(out of space or inodes on {few_inodes}): nothing was restored")
    assert os.listdir(few_inodes) == []  # its staging directory and the directories it made: gone

    # a SQLite restore over a file, the inodes all taken: the file stays as it was, nothing beside it
    database = tmp_path / "live.db"
    sqlite3.connect(database).execute("CREATE TABLE t (n)").connection.close()
    sqlite_job = engine_for(tmp_path / "s", "sqlite", database=str(database))
    assert (await act(sqlite_job, "run"))[0].ok
    (few_inodes / "copy.db").write_bytes(b"the old copy")
    fillers = 0
    with pytest.raises(OSError):
        while True:
            (few_inodes / f"filler-{fillers}").touch()
            fillers += 1
    before = sorted(os.listdir(few_inodes))
    result, _, _ = await act(sqlite_job, "restore", value=str(few_inodes / "copy.db"))
    assert not result.ok and result.error.endswith("nothing was restored") and "out of space or inodes" in result.error
    assert sorted(os.listdir(few_inodes)) == before and (few_inodes / "copy.db").read_bytes() == b"the old copy"


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


async def test_a_dead_restores_temporary_files_are_removed_by_the_poll_and_the_next_restore(tmp_path):
    live, restore_to, elsewhere = tmp_path / "live.db", tmp_path / "r" / "copy.db", tmp_path / "e" / "other.db"
    restore_to.parent.mkdir()
    elsewhere.parent.mkdir()
    sqlite3.connect(live).execute("CREATE TABLE t (n)").connection.close()
    engine = engine_for(tmp_path, "sqlite", database=str(live), restore_to=str(restore_to))
    assert (await act(engine, "run"))[0].ok
    dead = dead_pid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        leftovers = [tmp_path / f".live.db.restore-{dead}", restore_to.parent / f".copy.db.restore-{dead}"]
        running = tmp_path / f".live.db.restore-{sleeper.pid}"  # a restore still under way: left alone
        scratch = tmp_path / "dest" / "job" / f".verify-{dead}-abc"
        for path in (*leftovers, running):
            path.write_bytes(b"half a database")
        scratch.mkdir()
        now = await reading(engine)
        assert not any(p.exists() for p in (*leftovers, scratch)) and running.exists()
        assert "foreign" not in now.reason

        # a target the job does not know: its leftover goes when a restore writes there
        other = elsewhere.parent / f".other.db.restore-{dead}"
        other.write_bytes(b"half")
        listing = await engine.sources["job"].open(())
        result, _, _ = await act(engine, "restore", value=str(elsewhere), item=listing.items[0])
        assert result.ok, result.error
        assert not other.exists() and elsewhere.exists()
        assert sorted(p.name for p in elsewhere.parent.iterdir()) == ["other.db"]
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_a_dead_files_restores_staging_directory_is_removed_and_does_not_count_as_content(tmp_path):
    (tmp_path / "live" / "src").mkdir(parents=True)
    (tmp_path / "live" / "src" / "a.txt").write_text("a")
    restore_to = tmp_path / "restore"
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "live" / "src")])
    assert (await act(engine, "run"))[0].ok
    dead = dead_pid()
    staging = restore_to / f".lakedeck-restore-{dead}"
    (staging / "src").mkdir(parents=True)
    (staging / "src" / "half.txt").write_text("half")
    result, _, _ = await act(engine, "restore", value=str(restore_to))  # only a dead staging directory in it
    assert result.ok, result.error
    assert sorted(os.listdir(restore_to)) == ["src"] and (restore_to / "src" / "a.txt").read_text() == "a"
    in_live = tmp_path / "live" / f".lakedeck-restore-{dead}"
    in_live.mkdir()
    await reading(engine)
    assert not in_live.exists()  # the job's own source directory is one of the places its poll tidies


# -- item 6: restoring over the job's own live data ------------------------------------------------

def rows(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        con.close()


def add_rows(path: Path, count: int) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", ((i,) for i in range(count)))
    con.commit()
    con.close()


@pytest.mark.parametrize("how", ["asked", "restore_to"])
async def test_a_restore_over_the_live_database_says_what_is_lost_and_keeps_the_live_file(tmp_path, how):
    catalog = tmp_path / "catalog.db"
    add_rows(catalog, 10)
    clock = Clock()
    extra = {"restore_to": str(catalog)} if how == "restore_to" else {}
    engine = engine_for(tmp_path, "sqlite", clock, database=str(catalog), **extra)
    assert (await act(engine, "run"))[0].ok
    add_rows(catalog, 5)  # the changes made since the set was taken
    clock.now += 6 * 60 + 20
    result, preview, _ = await act(engine, "restore", value=None if extra else str(catalog))
    assert result.ok, result.error
    assert ("this overwrites the live catalog.db; changes of the last 6 minutes are lost (the live file is kept "
            "as catalog.db.before-restore-*)") in preview
    assert rows(catalog) == 10
    (kept,) = [p for p in tmp_path.iterdir() if p.name.startswith("catalog.db.before-restore-")]
    assert rows(kept) == 15

    other = tmp_path / "elsewhere.db"
    _, preview, _ = await act(engine, "restore", value=str(other))
    assert not any("overwrites the live" in line for line in preview)


async def test_a_restore_into_the_live_source_directory_keeps_what_it_replaces(tmp_path):
    live = tmp_path / "live"
    (live / "src").mkdir(parents=True)
    (live / "src" / "a.txt").write_text("as backed up")
    (live / "unrelated.txt").write_text("not the job's")
    clock = Clock()
    options = {"paths": [str(live / "src")]}
    engine = engine_for(tmp_path, "files", clock, **options)
    assert (await act(engine, "run"))[0].ok
    (live / "src" / "a.txt").write_text("changed later")
    (live / "src" / "new.txt").write_text("made later")
    clock.now += 2 * 3600 + 5 * 60

    assert engine.find_action("job", "restore").ask.endswith(f"or {live} to restore in place (absolute path)")
    result, preview, lines = await act(engine, "restore", value=str(live))
    assert result.ok, result.error
    assert preview[1] == f"into {live}: src"
    assert ("this overwrites the live src; changes of the last 2 hours 5 minutes are lost (what is there now is "
            "kept as <name>.before-restore-*)") in preview
    assert sorted(os.listdir(live / "src")) == ["a.txt"] and (live / "src" / "a.txt").read_text() == "as backed up"
    (kept,) = [p for p in live.iterdir() if p.name.startswith("src.before-restore-")]
    assert (kept / "a.txt").read_text() == "changed later" and (kept / "new.txt").read_text() == "made later"
    assert (live / "unrelated.txt").read_text() == "not the job's"
    assert any(line.startswith(f"the old src is kept as {kept}") for line in lines)

    # headless shows the same confirmation text
    config = config_file(tmp_path, "files", **options)
    done = lakedeck(config, "action", "job", "restore", "--value", str(live), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "this overwrites the live src; changes of the last " in done.stdout

