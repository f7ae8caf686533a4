"""A manifest's paths are evidence (issue 13, item 2): each must be relative, inside its set and a regular
file reached without a symlink. A planted manifest or a symlinked file is refused by verify and restore in
one line, and the live database is never written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tarfile
from pathlib import Path

import pytest
from test_backups import Clock, act, config_file, engine_for, lakedeck, list_sets

from backends.backup_members import UnsafeMember, member_problem, open_member
from backends.backup_sets import FORMAT, MANIFEST, set_name

WRITE = "import sys; open(sys.argv[1] + '/out.txt', 'w').write('data')"


def make_db(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (n INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", ((i,) for i in range(rows)))
    con.commit()
    con.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plant(set_dir: Path, entries: list[dict]) -> None:
    set_dir.mkdir(parents=True, exist_ok=True)
    (set_dir / MANIFEST).write_text(json.dumps({"format": FORMAT, "kind": "sqlite", "files": entries}))


def entry(path: str, real: Path) -> dict:
    return {"path": path, "size": real.stat().st_size, "sha256": sha(real)}


def absolute(set_dir: Path, other: Path) -> tuple[list[dict], str]:
    return [entry(str(other), other)], f"{other} is an absolute path"


def dot_dot(set_dir: Path, other: Path) -> tuple[list[dict], str]:
    shutil.copy(other, set_dir.parent / "x")
    return [entry("../x", other)], "../x is not a plain path inside the set"


def dot_dot_inside(set_dir: Path, other: Path) -> tuple[list[dict], str]:
    (set_dir / "a").mkdir()
    shutil.copy(other, set_dir.parent / "x")
    return [entry("a/../../x", other)], "a/../../x is not a plain path inside the set"


def symlinked_file(set_dir: Path, other: Path) -> tuple[list[dict], str]:
    (set_dir / "live.db").symlink_to(other)
    return [entry("live.db", other)], "live.db is or passes through a symlink (never followed)"


def symlinked_directory(set_dir: Path, other: Path) -> tuple[list[dict], str]:
    (set_dir / "sub").symlink_to(other.parent)
    return [entry(f"sub/{other.name}", other)], f"sub/{other.name} is or passes through a symlink (never followed)"


def fifo(set_dir: Path, other: Path) -> tuple[list[dict], str]:
    os.mkfifo(set_dir / "live.db")
    return [{"path": "live.db", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()}], "live.db is not a regular file"


@pytest.mark.parametrize("make", [absolute, dot_dot, dot_dot_inside, symlinked_file, symlinked_directory, fifo])
async def test_a_planted_manifest_never_reads_outside_its_set_and_the_live_database_is_untouched(tmp_path, make):
    live, other = tmp_path / "live.db", tmp_path / "srv" / "other" / "other.db"
    make_db(live, 10)
    make_db(other, 999)
    clock = Clock()
    engine = engine_for(tmp_path, "sqlite", clock, database=str(live))
    config = config_file(tmp_path, "sqlite", database=str(live))
    assert (await act(engine, "run"))[0].ok
    planted = tmp_path / "dest" / "job" / set_name(clock.now + 60)  # the newest set
    planted.mkdir()
    entries, why = make(planted, other)
    plant(planted, entries)
    before = live.read_bytes()

    # the restore the job offers is of its newest set: the planted one, refused in one line
    done = lakedeck(config, "action", "job", "restore", "--value", str(live), "--yes")
    assert done.returncode == 1
    assert f"set {planted.name} is damaged, nothing was restored: pick another set (" in done.stderr
    failed = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()][-1]
    assert failed["event"] == "failed" and f"pick another set ({why})" in failed["error"]
    assert live.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".live.db", "live.db."))) == []

    clock.now += 120
    await engine.sources["job"].poll()
    assert engine.find_action("job", "verify").ref == (planted.name,)
    result, _, _ = await act(engine, "verify")
    assert not result.ok and result.error == f"verify of {planted.name} FAILED: {why}"
    (newest, real) = list_sets(tmp_path / "dest" / "job").sets
    assert newest.verified == f"failed: {why}" and real.verified == ""
    assert engine.find_action("job", "restore").ref[0] == real.name  # the damaged set is no restore point
    assert live.read_bytes() == before


async def test_a_files_set_whose_archive_is_a_symlink_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")])
    assert (await act(engine, "run"))[0].ok
    (backup,) = list_sets(tmp_path / "dest" / "job").sets
    archive = Path(backup.path) / "files.tar.gz"
    outside = tmp_path / "elsewhere.tar.gz"
    shutil.move(archive, outside)  # the same bytes, so the sha256 still matches: only the link is wrong
    archive.symlink_to(outside)
    result, _, _ = await act(engine, "verify")
    assert not result.ok and "files.tar.gz is or passes through a symlink" in result.error
    listing = await engine.sources["job"].open(())
    result, _, _ = await act(engine, "restore", value=str(tmp_path / "back"), item=listing.items[0])
    assert not result.ok and "damaged, nothing was restored: pick another set (files.tar.gz is or passes " \
                             "through a symlink" in result.error
    assert not (tmp_path / "back").exists()
    with tarfile.open(outside) as tar:
        assert tar.getnames() == ["src", "src/a.txt"]  # what would have been restored, had it been followed


async def test_a_manifest_that_is_a_symlink_makes_no_set(tmp_path):
    job = tmp_path / "job" / "20230101T000000Z"
    job.mkdir(parents=True)
    (tmp_path / "real.json").write_text(json.dumps({"format": FORMAT, "files": []}))
    (job / MANIFEST).symlink_to(tmp_path / "real.json")
    listing = list_sets(tmp_path / "job")
    assert listing.sets == () and [u.why for u in listing.unfinished] == [
        "no readable manifest: manifest.json is or passes through a symlink (never followed)"]


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "./a", "", "a/..", ".."])
def test_member_paths_that_are_not_plain_paths_inside_the_set_are_refused(tmp_path, path):
    assert member_problem(path)
    with pytest.raises(UnsafeMember):
        open_member(tmp_path, path)


def test_a_plain_member_path_opens_and_a_missing_one_says_so(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    with open_member(tmp_path, "d/f") as handle:
        assert handle.read() == b"x"
    with pytest.raises(UnsafeMember, match="d/g is missing"):
        open_member(tmp_path, "d/g")


async def test_a_command_set_with_a_path_outside_it_is_refused_before_its_restore_command_runs(tmp_path):
    ran = tmp_path / "restore-ran"
    engine = engine_for(tmp_path, "command", command=[sys.executable, "-c", WRITE, "{dir}"],
                        restore=[sys.executable, "-c", f"open({str(ran)!r}, 'w').write('ran')"])
    assert (await act(engine, "run"))[0].ok
    (real,) = list_sets(tmp_path / "dest" / "job").sets
    manifest = json.loads((Path(real.path) / MANIFEST).read_text())
    shutil.copy(Path(real.path) / "out.txt", tmp_path / "dest" / "job" / "x")
    manifest["files"][0]["path"] = "../x"  # the same bytes, one level up: outside the set
    (Path(real.path) / MANIFEST).write_text(json.dumps(manifest))
    result, _, _ = await act(engine, "restore")
    assert not result.ok and "../x is not a plain path inside the set" in result.error and not ran.exists()
    result, _, _ = await act(engine, "verify")
    assert not result.ok and "../x is not a plain path inside the set" in result.error
