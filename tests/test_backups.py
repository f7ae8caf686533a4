"""Backup jobs (files, sqlite, command) through the adapter and the engine, on real files and databases."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from backends.actions import ActionRefused
from backends.adapters.backups import BackupJob, service_of
from backends.backup_sets import MANIFEST, PARTIAL_PREFIX, STALE_PARTIAL, list_sets
from backends.config import parse
from backends.engine import Engine
from backends.model import BackupReading, State

DAY = 86400.0


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:  # in the past: a set named later is foreign
        self.now = now

    def __call__(self) -> float:
        return self.now


def engine_for(tmp_path: Path, kind: str, clock: Clock | None = None, **options) -> Engine:
    (tmp_path / "dest").mkdir(parents=True, exist_ok=True)
    item = {"name": "job", "kind": kind, "dest": str(tmp_path / "dest"), **options}
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "backups": [item]})
    engine = Engine(parse(text, str(tmp_path / "lakedeck.yaml"), {}))
    engine.build()
    if clock is not None:
        engine.sources["job"].clock = clock
    return engine


def config_file(tmp_path: Path, kind: str, **options) -> Path:
    """The same job as ``engine_for`` makes, as a config file for the ``lakedeck`` command."""
    (tmp_path / "dest").mkdir(parents=True, exist_ok=True)
    config = tmp_path / "lakedeck.yaml"
    config.write_text(yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "backups": [
        {"name": "job", "kind": kind, "dest": str(tmp_path / "dest"), **options}]}))
    return config


def lakedeck(config: Path, *args: str) -> subprocess.CompletedProcess:
    """The real ``lakedeck`` command (headless verbs), as cron or a runbook runs it."""
    command = Path(sys.executable).with_name("lakedeck")
    return subprocess.run([str(command), *args, "-c", str(config)], capture_output=True, text=True, timeout=120,
                          check=False)


async def act(engine: Engine, action_id: str, value: str | None = None, item=None):
    """Find, preview and run one action as the console does; returns (result, preview, lines)."""
    source = engine.sources["job"]
    if item is None:
        action = engine.find_action("job", action_id)
    else:
        action = next(a for a in engine.item_actions("job", item) if a.id == action_id)
    if value is not None:
        action = source.with_value(action, value)
    preview = await source.preview(action)
    lines: list[str] = []
    result = await engine.run_action(action, lines.append)
    return result, preview, lines


async def reading(engine: Engine) -> BackupReading:
    (found,) = await engine.sources["job"].poll()
    assert isinstance(found, BackupReading) and "\n" not in found.reason and len(found.reason) <= 200
    return found


def tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "keep.txt").write_text("keep me")
    (root / "skip.tmp").write_text("scratch")
    (root / "sub" / "data.csv").write_text("a,b\n1,2\n" * 1000)
    (root / "sub" / "cache").mkdir()
    (root / "sub" / "cache" / "big.bin").write_bytes(os.urandom(1000))


# -- files -----------------------------------------------------------------------------------------

async def test_files_job_archives_without_excludes_and_restores_into_a_new_directory(tmp_path):
    tree(tmp_path / "src")
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")], exclude=["*.tmp", "sub/cache"])
    assert (await reading(engine)).state is State.CRITICAL
    assert "no backup yet in" in (await reading(engine)).reason

    result, _, lines = await act(engine, "run")
    assert result.ok, result.error
    assert any(line.startswith("archived ") for line in lines)
    (backup,) = list_sets(tmp_path / "dest" / "job").sets
    manifest = json.loads((Path(backup.path) / MANIFEST).read_text())
    assert manifest["kind"] == "files" and manifest["files"][0]["path"] == "files.tar.gz"
    assert manifest["duration"] >= 0 and "sha256" in manifest["files"][0] and manifest["tools"]
    with tarfile.open(Path(backup.path) / "files.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("src/keep.txt") for n in names) and any(n.endswith("sub/data.csv") for n in names)
    assert not any("skip.tmp" in n or "cache" in n for n in names)

    now = await reading(engine)
    assert now.state is State.OK and now.sets[0].name == backup.name and "newest NOT verified" in now.reason

    source = engine.sources["job"]
    restore = engine.find_action("job", "restore")
    assert restore.confirm == "job" and restore.ask and restore.ref == (backup.name,)
    with pytest.raises(ValueError, match="is a source of this job: to restore it in place give"):
        source.with_value(restore, str(tmp_path / "src"))  # the set unpacks as src/: not into src itself
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        source.with_value(restore, str(tmp_path / "other"))  # never unpacks among what is there
    with pytest.raises(ValueError, match="absolute"):
        source.with_value(restore, "relative/dir")
    result, preview, _ = await act(engine, "restore", value=str(tmp_path / "back"))
    assert result.ok, result.error
    assert preview[0].startswith(f"restore set {backup.name}") and preview[1] == f"into {tmp_path / 'back'}: src"
    restored = tmp_path / "back" / "src"
    assert sorted(os.listdir(tmp_path / "back")) == ["src"]
    assert (restored / "keep.txt").read_text() == "keep me" and not (restored / "skip.tmp").exists()

    entries = engine.audit.read()
    assert [(e["action"], e["event"]) for e in entries] == [
        ("run", "confirmed"), ("run", "succeeded"), ("restore", "confirmed"), ("restore", "succeeded")]
    assert "tar.gz of" in entries[0]["command"] and str(tmp_path / "back") in entries[2]["command"]


async def test_a_corrupted_set_is_caught_by_verify_and_refused_by_restore(tmp_path):
    tree(tmp_path / "src")
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")])
    assert (await act(engine, "run"))[0].ok
    result, _, _ = await act(engine, "verify")
    assert result.ok
    assert "newest verified" in (await reading(engine)).reason

    archive = Path(list_sets(tmp_path / "dest" / "job").sets[0].path) / "files.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))

    result, _, _ = await act(engine, "verify")
    assert not result.ok and "sha256 mismatch in files.tar.gz" in result.error
    now = await reading(engine)
    assert now.state is State.CRITICAL  # its only set is no restore point any more
    assert "verify FAILED: sha256 mismatch in files.tar.gz" in now.reason
    listing = await engine.sources["job"].open(())
    assert listing.items[0].status == "verify failed" and listing.items[0].state is State.CRITICAL

    # the job offers no restore of a damaged set; asked for on the set itself, it is refused
    assert "restore" not in {a.id for a in engine.actions_for("job")}
    result, _, _ = await act(engine, "restore", value=str(tmp_path / "back"), item=listing.items[0])
    assert not result.ok and "damaged" in result.error and not (tmp_path / "back").exists()


# -- sqlite ----------------------------------------------------------------------------------------

async def test_sqlite_backup_while_a_writer_keeps_writing_is_a_consistent_prefix(tmp_path):
    database = tmp_path / "catalog.db"
    with sqlite3.connect(database) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT)")
        setup.executemany("INSERT INTO t VALUES (?, ?)", ((i, "x" * 200) for i in range(1, 20001)))
    setup.close()
    stop = threading.Event()
    written = [20000]

    def writer() -> None:
        connection = sqlite3.connect(database, timeout=30)
        while not stop.is_set():
            with connection:  # one row per transaction: any consistent copy holds 1..N without gaps
                connection.execute("INSERT INTO t VALUES (?, ?)", (written[0] + 1, "y" * 200))
            written[0] += 1
        connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        await asyncio.sleep(0.2)
        engine = engine_for(tmp_path, "sqlite", database=str(database))
        result, _, _ = await act(engine, "run")
        during = written[0]
        verify, _, _ = await act(engine, "verify")
    finally:
        stop.set()
        thread.join(10)
    assert result.ok, result.error
    assert verify.ok, verify.error
    copy = Path(list_sets(tmp_path / "dest" / "job").sets[0].path) / "catalog.db"
    with sqlite3.connect(copy) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count, top = check.execute("SELECT count(*), max(n) FROM t").fetchone()
    check.close()
    assert count == top and 20000 <= count <= during  # a prefix of what was written, no gaps
    assert not any(p.name.startswith(".verify-") for p in (tmp_path / "dest" / "job").iterdir())

    target = tmp_path / "restored.db"
    target.write_text("the old file")
    result, _, _ = await act(engine, "restore", value=str(target))
    assert result.ok, result.error
    assert sqlite3.connect(target).execute("SELECT count(*) FROM t").fetchone() == (count,)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("restored.db.before-restore-")]
    assert len(kept) == 1 and kept[0].read_text() == "the old file"  # replaced, never deleted


# -- prune -----------------------------------------------------------------------------------------

async def make_sets(engine: Engine, clock: Clock, count: int) -> list[str]:
    for _ in range(count):
        result, _, _ = await act(engine, "run")
        assert result.ok, result.error
        clock.now += DAY
    return [s.name for s in list_sets(Path(engine.sources["job"].job_dir)).sets]


async def test_prune_deletes_exactly_its_preview_and_keeps_the_newest_verified_set(tmp_path):
    tree(tmp_path / "src")
    clock = Clock()
    engine = engine_for(tmp_path, "files", clock, paths=[str(tmp_path / "src")], keep="2d", keep_last=2)
    names = await make_sets(engine, clock, 3)  # newest first
    # verify the oldest one: being the newest verified set, it must survive both rules
    (item,) = [i for i in (await engine.sources["job"].open(())).items if i.name == names[-1]]
    assert (await act(engine, "verify", item=item))[0].ok
    names += await make_sets(engine, clock, 3)
    names = [s.name for s in list_sets(tmp_path / "dest" / "job").sets]
    assert len(names) == 6

    await engine.sources["job"].poll()
    action = engine.find_action("job", "prune")
    preview = await engine.sources["job"].preview(action)
    planned = list(action.ref[1:])
    # keep_last 2 keeps names[0:2]; keep 2d keeps those younger than two days (also names[0:2]); the oldest
    # set is the newest verified one
    assert planned == [names[4], names[3], names[2]]
    assert [line.split(" · ")[0] for line in preview] == [f"delete set {n}" for n in planned]
    result = await engine.run_action(action, lambda line: None)
    assert result.ok, result.error
    left = [s.name for s in list_sets(tmp_path / "dest" / "job").sets]
    assert left == [names[0], names[1], names[5]]
    assert sorted(set(names) - set(left)) == sorted(planned)
    assert [e["action"] for e in engine.audit.read()][-2:] == ["prune", "prune"]


async def test_prune_refuses_when_the_plan_changed_since_the_preview(tmp_path):
    tree(tmp_path / "src")
    clock = Clock()
    engine = engine_for(tmp_path, "files", clock, paths=[str(tmp_path / "src")], keep_last=1)
    names = await make_sets(engine, clock, 3)
    action = engine.find_action("job", "prune")
    assert list(action.ref[1:]) == [names[2], names[1]]  # never the newest set, even unverified
    assert (await act(engine, "run"))[0].ok  # a new set: now three would go
    result = await engine.run_action(action, lambda line: None)
    assert not result.ok and "changed since the preview" in result.error
    assert len(list_sets(tmp_path / "dest" / "job").sets) == 4  # nothing was deleted


def test_lakedeck_action_prune_dry_run_prints_the_plan(tmp_path):
    tree(tmp_path / "src")
    job = tmp_path / "dest" / "job"
    for name in ("20200101T000000Z", "20200102T000000Z", "20200103T000000Z"):
        (job / name).mkdir(parents=True)
        (job / name / MANIFEST).write_text(json.dumps({"format": "lakedeck-backup/1", "files": []}))
    config = tmp_path / "lakedeck.yaml"
    config.write_text(yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "backups": [
        {"name": "job", "kind": "files", "dest": str(tmp_path / "dest"), "paths": [str(tmp_path / "src")],
         "keep_last": 1}]}))
    lakedeck = Path(sys.executable).with_name("lakedeck")
    done = subprocess.run([str(lakedeck), "action", "job", "prune", "--dry-run", "-c", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "delete set 20200101T000000Z" in done.stdout and "delete set 20200102T000000Z" in done.stdout
    assert "20200103T000000Z" not in done.stdout.split("it would affect:")[1]
    assert "dry run: nothing was run" in done.stdout
    assert len(list_sets(job).sets) == 3


# -- a run killed midway ---------------------------------------------------------------------------

RUNNER = """import asyncio, sys, yaml
from backends.config import parse
from backends.engine import Engine
engine = Engine(parse(open(sys.argv[1]).read(), sys.argv[1], {}))
engine.build()
asyncio.run(engine.run_action(engine.find_action("job", "run"), print))
"""

SLOW_COMMAND = "import os, sys, time; open(sys.argv[1] + '/part', 'w').write(str(os.getpid())); time.sleep(60)"


async def test_a_backup_killed_midway_leaves_no_good_set_and_prune_removes_it(tmp_path):
    config = tmp_path / "lakedeck.yaml"
    (tmp_path / "dest").mkdir()
    item = {"name": "job", "kind": "command", "dest": str(tmp_path / "dest"), "keep_last": 1,
            "command": [sys.executable, "-c", SLOW_COMMAND, "{dir}"]}
    config.write_text(yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "backups": [item]}))
    (tmp_path / "runner.py").write_text(RUNNER)
    runner = subprocess.Popen(  # noqa: ASYNC220  (started once, killed below)
        [sys.executable, str(tmp_path / "runner.py"), str(config)], cwd=os.getcwd(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job = tmp_path / "dest" / "job"
    deadline = time.monotonic() + 30
    while not any(job.glob(f"{PARTIAL_PREFIX}*/part")):
        assert time.monotonic() < deadline and runner.poll() is None
        await asyncio.sleep(0.05)
    (partial,) = job.glob(f"{PARTIAL_PREFIX}*")
    child = int((partial / "part").read_text() or 0)
    runner.send_signal(signal.SIGKILL)
    runner.wait(10)
    os.kill(child, signal.SIGKILL)  # its own session: the kill of lakedeck does not reach it

    engine = engine_for(tmp_path, "command", command=item["command"], keep_last=1)
    now = await reading(engine)
    assert now.sets == () and now.state is State.CRITICAL
    assert "no backup yet" in now.reason and "1 unfinished set (a run was killed?)" in now.reason
    listing = await engine.sources["job"].open(())
    assert listing.items[0].status == "unfinished" and listing.items[0].state is State.WARN

    assert engine.find_action("job", "prune").ref == ("plan",)  # fresh: it might still be running
    old = time.time() - STALE_PARTIAL - 60
    os.utime(partial / "part", (old, old))
    os.utime(partial, (old, old))
    await engine.sources["job"].poll()
    result, preview, _ = await act(engine, "prune")
    assert preview[0].startswith(f"remove unfinished {partial.name}")
    assert result.ok, result.error and not partial.exists()
    assert not partial.exists()


async def test_a_failing_command_leaves_only_a_partial_directory(tmp_path):
    engine = engine_for(tmp_path, "command", command=[sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    result, _, _ = await act(engine, "run")
    assert not result.ok and "exited 3: boom" in result.error
    assert list_sets(tmp_path / "dest" / "job").sets == ()
    empty = engine_for(tmp_path, "command", command=[sys.executable, "-c", "pass"])
    result, _, _ = await act(empty, "run")
    assert not result.ok and "wrote nothing" in result.error


# -- RPO, read-only and the service hook ------------------------------------------------------------

async def test_rpo_states_follow_the_age_of_the_last_good_set(tmp_path):
    tree(tmp_path / "src")
    clock = Clock()
    engine = engine_for(tmp_path, "files", clock, paths=[str(tmp_path / "src")], rpo="24h")
    assert (await act(engine, "run"))[0].ok
    clock.now += 3 * 3600 + 12 * 60
    now = await reading(engine)
    assert now.state is State.OK and now.reason.startswith("last good 3h12m ago (rpo 1d00h) · 1 set, ")
    assert now.last_good == pytest.approx(1_700_000_000.0, abs=1) and now.rpo == DAY and now.value == now.sets[0].size
    clock.now += DAY
    assert (await reading(engine)).state is State.WARN
    clock.now += DAY
    assert (await reading(engine)).state is State.CRITICAL


async def test_unreadable_dest_is_unknown_and_missing_dest_is_critical(tmp_path):
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path)])
    (tmp_path / "dest").rmdir()
    now = await reading(engine)
    assert now.state is State.CRITICAL and "does not exist" in now.reason
    result, _, _ = await act(engine, "run")
    assert not result.ok and "does not exist" in result.error and not (tmp_path / "dest").exists()
    (tmp_path / "dest").write_text("not a directory")
    engine.sources["job"].job_dir = tmp_path / "dest" / "job"
    if os.geteuid() != 0:
        (tmp_path / "dest").unlink()
        (tmp_path / "dest").mkdir(mode=0o000)
        assert (await reading(engine)).state is State.UNKNOWN


async def test_read_only_refuses_run_prune_restore_and_the_restore_names_its_service(tmp_path):
    tree(tmp_path / "src")
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")], restore_to=str(tmp_path / "back"),
                        service="web")
    assert (await act(engine, "run"))[0].ok
    restore = engine.find_action("job", "restore")
    assert restore.ask == "" and restore.value == str(tmp_path / "back") and service_of(restore) == "web"
    assert "stop service web" in restore.call and "start service web" in restore.call
    assert any("service web" in line for line in await engine.sources["job"].preview(restore))
    engine.read_only = True
    with pytest.raises(ActionRefused):
        await engine.run_action(engine.find_action("job", "prune"), lambda line: None)
    assert {a.id for a in engine.actions_for("job")} == {"verify"}


def test_the_job_offers_exactly_the_declared_action_ids(tmp_path):
    from backends.adapters import ACTION_IDS

    tree(tmp_path / "src")
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")])
    assert isinstance(engine.sources["job"], BackupJob)
    assert {a.id for a in engine.actions_for("job")} == {"run", "prune"}  # no set yet: nothing to verify
    (tmp_path / "dest" / "job" / "20200101T000000Z").mkdir(parents=True)
    (tmp_path / "dest" / "job" / "20200101T000000Z" / MANIFEST).write_text(
        json.dumps({"format": "lakedeck-backup/1", "files": []}))
    engine.sources["job"]._listing = None
    assert {a.id for a in engine.actions_for("job")} == set(ACTION_IDS[("backups", "files")])
    assert io  # keep the import list honest


async def test_a_restore_stops_and_starts_its_service_around_it(tmp_path, supervisord):
    """The job's `service:` is a real supervisord program: stopped before the restore, started after."""
    import sqlite3

    from backends.config import parse
    from backends.engine import Engine

    db, dest, target = tmp_path / "app.db", tmp_path / "backups", tmp_path / "restored.db"
    dest.mkdir()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    config = parse(json.dumps({
        "audit_log": str(tmp_path / "audit.jsonl"),
        "services": [{"name": "web", "kind": "supervisor", "url": supervisord.socket_url, "program": "web"}],
        "backups": [{"name": "app-db", "kind": "sqlite", "database": str(db), "dest": str(dest),
                     "restore_to": str(target), "service": "web"}],
    }), "t.yaml", {})
    engine = Engine(config)
    engine.build()
    await engine.poll_once("app-db")
    assert (await engine.run_action(engine.find_action("app-db", "run"), lambda line: None)).ok
    await engine.poll_once("app-db")
    seen: list[str] = []
    states: list[str] = []

    def emit(line: str) -> None:
        seen.append(line)
        if line.startswith("-- restore"):
            states.append(supervisord.rpc().supervisor.getProcessInfo("web")["statename"])

    result = await engine.run_action(engine.find_action("app-db", "restore"), emit)
    assert result.ok, result.summary
    assert states == ["STOPPED"]  # down while the set was written back
    assert supervisord.rpc().supervisor.getProcessInfo("web")["statename"] == "RUNNING"
    assert target.exists()
    events = [(e["event"], e["action"], e["target"]) for e in
              map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines())]
    assert events[-6:] == [("confirmed", "restore", "app-db"), ("confirmed", "stop", "web"),
                           ("succeeded", "stop", "web"), ("confirmed", "start", "web"),
                           ("succeeded", "start", "web"), ("succeeded", "restore", "app-db")]
    await engine.stop()
