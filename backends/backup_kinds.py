"""How each kind of backup job makes, checks and restores a set. Blocking: the adapter runs these in a thread.

A maker writes into a directory it is given (the run's ``.partial-*`` directory) and returns the manifest's
``files``, the versions of the tools it used and what the set takes once restored (``unpacked``); progress
goes to ``work.emit`` a few lines a second at most. Writing a files or SQLite set back is in backup_targets;
a set's files are read only through backup_members.
Subprocesses get argument lists (never a shell), their own process group, and are killed with it when the
run is cancelled or past its deadline.
"""

from __future__ import annotations

import collections
import fnmatch
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .actions import Emit
from .backup_sets import CHUNK, SCRATCH_PREFIX, hash_tree
from .text import human_bytes, one_line

PROGRESS_EVERY = 0.5  # seconds between progress lines
ARCHIVE = "files.tar.gz"
SQLITE_STEP_PAGES = 4096
SQLITE_RESTARTS = 3  # a writer restarted the page-by-page copy this often: copy in one step instead


class BackupError(Exception):
    """A run, verify or restore failed; ``str()`` is one line for the operator."""


@dataclass
class Work:
    """What a maker needs besides its options: where progress goes, and when to give up."""

    emit: Emit
    deadline: float = float("inf")  # time.monotonic()
    cancel: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        if self.cancel.is_set():
            raise BackupError("cancelled")
        if time.monotonic() > self.deadline:
            raise BackupError("timed out (action_timeout)")


@dataclass
class Made:
    files: list[dict[str, Any]]
    tools: dict[str, str]
    facts: dict[str, Any] = field(default_factory=dict)  # more for the manifest: "unpacked" bytes, a files set's layout


class Progress:
    """Counts bytes and says "12 MB of ~40 MB" at most every PROGRESS_EVERY seconds."""

    def __init__(self, work: Work, total: int | None = None, verb: str = "") -> None:
        self.work, self.total, self.verb, self.done = work, total, verb, 0
        self._last = time.monotonic()

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY:
            self._last = now
            self.work.check()
            self.say()

    def say(self) -> None:
        of = f" of ~{human_bytes(self.total)}" if self.total else ""
        self.work.emit(f"{self.verb}{human_bytes(self.done)}{of}")


# -- subprocesses ----------------------------------------------------------------------------------

def run_process(argv: list[str], work: Work, env: Mapping[str, str] | None = None, cwd: str | None = None,
                on_line: Callable[[str], None] | None = None, tick: Callable[[], None] | None = None,
                stdin: BinaryIO | None = None) -> list[str]:
    """Run ``argv`` to the end and return its last output lines; BackupError (one line) when it cannot
    start, exits non-zero, or is stopped (cancel, deadline): then its whole process group is killed.
    ``stdin``: an open file it reads (a set's file, opened safely), else nothing."""
    tail: collections.deque[str] = collections.deque(maxlen=50)
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin is None else stdin,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   cwd=cwd, env={**os.environ, **(env or {})}, start_new_session=True)
    except FileNotFoundError:
        raise BackupError(f"command not found: {argv[0]}") from None
    except OSError as exc:
        raise BackupError(one_line(f"cannot run {argv[0]}: {exc.strerror or exc}")) from None

    def pump() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")[:2000]
            tail.append(line)
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        while process.poll() is None:
            work.check()
            if tick is not None:
                tick()
            try:
                process.wait(0.2)
            except subprocess.TimeoutExpired:
                pass
    except BaseException:
        _kill_group(process)
        raise
    reader.join(5)
    if process.returncode != 0:
        last = next((line for line in reversed(tail) if line.strip()), "")
        raise BackupError(one_line(f"{Path(argv[0]).name} exited {process.returncode}" + (f": {last}" if last else "")))
    return list(tail)


def _kill_group(process: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def tool_version(argv0: str) -> str:
    try:
        done = subprocess.run([argv0, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return one_line(done.stdout.strip() or done.stderr.strip() or "unknown", 120)


# -- files: a tar.gz of paths with excludes --------------------------------------------------------

class _HashingWriter:
    """A file object that hashes what passes through it, so the archive is hashed as it is written."""

    def __init__(self, handle) -> None:
        import hashlib

        self.handle, self.digest, self.size = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def excluded(relative: str, name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def source_root(paths: list[str]) -> Path:
    """The directory a files set's names are relative to: the deepest one holding every configured path
    (``/srv/ocel/warehouse`` alone: ``/srv/ocel``, so the set unpacks as ``warehouse/``). Restored into this
    directory, every path lands where it was: it is the job's live target."""
    roots = [Path(os.path.abspath(os.path.expanduser(p))) for p in paths]
    return Path(os.path.commonpath([r.parent for r in roots]))


def walk_paths(paths: list[str], patterns: list[str], skip: Path | None = None) -> list[tuple[Path, str]]:
    """Every file and directory to archive, as (path, name in the archive): the path relative to
    ``source_root``. Excludes match a path relative to the configured path, or a bare name."""
    base = source_root(paths)
    found: list[tuple[Path, str]] = []
    for given in paths:
        root = Path(os.path.abspath(os.path.expanduser(given)))
        if not root.exists():
            raise BackupError(f"{root} does not exist")
        if root == base:
            raise BackupError(f"{root} cannot be archived whole: name the directories under it")
        found.append((root, root.relative_to(base).as_posix()))
        if not root.is_dir():
            continue
        for current, dirs, names in os.walk(root):
            here = Path(current)
            for name in sorted(dirs + names):
                path = here / name
                relative = path.relative_to(root).as_posix()
                if excluded(relative, name, patterns) or path == skip:
                    if name in dirs:
                        dirs.remove(name)
                    continue
                found.append((path, path.relative_to(base).as_posix()))
            dirs.sort()
    return found


def backup_files(options: Mapping[str, Any], out_dir: Path, work: Work) -> Made:
    # the job's own directory is never archived, should DEST lie under one of the paths
    paths = list(options["paths"])
    entries = walk_paths(paths, list(options.get("exclude") or ()), out_dir.parent)
    total = sum(p.lstat().st_size for p, _ in entries if p.is_file() and not p.is_symlink())
    progress = Progress(work, total, "archived ")
    archive, unpacked, top = out_dir / ARCHIVE, 0, set()
    with open(archive, "wb") as raw:
        writer = _HashingWriter(raw)
        with tarfile.open(fileobj=writer, mode="w:gz", compresslevel=6) as tar:  # type: ignore[call-overload]
            for path, arcname in entries:
                try:
                    info = tar.gettarinfo(str(path), arcname)
                    if info.isreg():
                        with open(path, "rb") as handle:
                            tar.addfile(info, _CountingReader(handle, progress))
                        unpacked += info.size
                    else:
                        tar.addfile(info)
                    top.add(arcname.split("/")[0])
                except FileNotFoundError:
                    work.emit(f"skipped {path}: it went away during the backup")
        raw.flush()
        os.fsync(raw.fileno())
    progress.say()
    # what the set unpacks to, recorded for the restore's preview, its free-space check and its layout check
    facts = {"unpacked": unpacked, "root": str(source_root(paths)), "top": sorted(top)}
    return Made([{"path": ARCHIVE, "size": writer.size, "sha256": writer.digest.hexdigest()}],
                {"python tarfile": "gzip level 6"}, facts)


class _CountingReader:
    def __init__(self, handle, progress: Progress) -> None:
        self.handle, self.progress = handle, progress

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.progress.add(len(data))
        return data


# -- sqlite: the online backup API ----------------------------------------------------------------

def backup_sqlite(options: Mapping[str, Any], out_dir: Path, work: Work) -> Made:
    database = Path(os.path.expanduser(options["database"])).absolute()
    if not database.is_file():
        raise BackupError(f"{database} does not exist")
    copy = out_dir / database.name
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(copy)
    restarts, last_remaining = 0, None

    def step(status: int, remaining: int, pages: int) -> None:
        nonlocal restarts, last_remaining
        if last_remaining is not None and remaining > last_remaining:
            restarts += 1  # another connection wrote to the database: the copy started over
            if restarts >= SQLITE_RESTARTS:
                raise BackupError("restart")
        last_remaining = remaining
        work.check()
        work.emit(f"copied {pages - remaining} of {pages} pages")

    try:
        try:
            source.backup(target, pages=SQLITE_STEP_PAGES, progress=step, sleep=0)
        except BackupError as exc:
            if str(exc) != "restart":
                raise
            # Busy writers keep restarting a stepwise copy: copy in one step, holding a read transaction
            # (a WAL database goes on taking writes; a rollback-journal one makes its writers wait).
            work.emit("the database is busy: copying it in one step")
            source.backup(target, pages=-1)
    except sqlite3.Error as exc:
        raise BackupError(one_line(f"sqlite backup of {database} failed: {exc}")) from None
    finally:
        target.close()
        source.close()
    with open(copy, "rb+") as handle:
        os.fsync(handle.fileno())
    return Made(hash_tree(out_dir), {"sqlite": sqlite3.sqlite_version}, {"unpacked": copy.stat().st_size})


def integrity_problem(database: BinaryIO, name: str, scratch_parent: Path, work: Work) -> str:
    """``PRAGMA integrity_check`` of a copy of the open file (the set itself is never opened by SQLite): ""
    when it is ok. The copy is made in ``.verify-<pid>-*`` beside the sets and removed after."""
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=scratch_parent) as scratch:
        copy = Path(scratch) / "copy.db"
        database.seek(0)
        with open(copy, "wb") as out:
            shutil.copyfileobj(database, out, CHUNK)
        database.seek(0)
        work.check()
        try:
            connection = sqlite3.connect(copy)
            try:
                rows = [r[0] for r in connection.execute("PRAGMA integrity_check(5)")]
            finally:
                connection.close()
        except sqlite3.Error as exc:
            return one_line(f"integrity_check of {name}: {exc}")
    return "" if rows == ["ok"] else one_line(f"integrity_check of {name}: {'; '.join(map(str, rows))}")


# -- postgres: pg_dump -Fc, pg_restore ------------------------------------------------------------

def pg_connection(options: Mapping[str, Any]) -> list[str]:
    argv = ["-h", str(options.get("host") or "127.0.0.1"), "-p", str(options.get("port") or 5432)]
    return argv + (["-U", options["user"]] if options.get("user") else [])


def pg_env(options: Mapping[str, Any]) -> dict[str, str]:
    return {"PGPASSWORD": options["password"]} if options.get("password") else {}


def dump_name(options: Mapping[str, Any]) -> str:
    return f"{options['dbname']}.dump"


def pg_dump_argv(options: Mapping[str, Any], out_file: str) -> list[str]:
    return [options.get("pg_dump") or "pg_dump", "-Fc", *pg_connection(options), "-f", out_file,
            f"--dbname={options['dbname']}"]


def backup_postgres(options: Mapping[str, Any], out_dir: Path, work: Work) -> Made:
    out_file = out_dir / dump_name(options)
    progress = Progress(work, None, "dumped ")

    def tick() -> None:
        size = out_file.stat().st_size if out_file.exists() else 0
        progress.add(size - progress.done)

    argv = pg_dump_argv(options, str(out_file))
    run_process(argv, work, env=pg_env(options), on_line=work.emit, tick=tick)
    progress.done = out_file.stat().st_size
    progress.say()
    return Made(hash_tree(out_dir), {"pg_dump": tool_version(argv[0])},
                {"unpacked": out_file.stat().st_size, "unpacked_note": DUMP_NOTE})


DUMP_NOTE = "a compressed pg_dump archive: the database restored from it takes more"


def pg_restore_list(options: Mapping[str, Any], dump: BinaryIO, name: str, work: Work) -> str:
    """"" when ``pg_restore --list`` reads the whole dump (given on its stdin), else why not."""
    try:
        lines = run_process([options.get("pg_restore") or "pg_restore", "--list"], work, stdin=dump)
    except BackupError as exc:
        return str(exc)
    finally:
        dump.seek(0)
    entries = sum(1 for line in lines if line and not line.startswith(";"))
    work.emit(f"pg_restore --list read {name}: {entries}+ entries")
    return ""


def createdb_argv(options: Mapping[str, Any], dbname: str) -> list[str]:
    pg_restore = options.get("pg_restore") or "pg_restore"
    beside = Path(pg_restore).with_name("createdb") if "/" in pg_restore else Path("createdb")
    return [str(beside), *pg_connection(options), dbname]


def pg_restore_argv(options: Mapping[str, Any], dbname: str) -> list[str]:
    """pg_restore reading the dump on its stdin: the set's file opened safely, never a path it would follow."""
    return [options.get("pg_restore") or "pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error",
            *pg_connection(options), f"--dbname={dbname}"]


def restore_postgres(options: Mapping[str, Any], dump: BinaryIO, dbname: str, work: Work) -> None:
    try:
        run_process(createdb_argv(options, dbname), work, env=pg_env(options))
        work.emit(f"created database {dbname}")
    except BackupError as exc:
        if "already exists" not in str(exc):
            raise
    dump.seek(0)
    run_process(pg_restore_argv(options, dbname), work, env=pg_env(options), on_line=work.emit, stdin=dump)
    work.emit(f"restored into database {dbname}")


# -- command: any argument list --------------------------------------------------------------------

def with_dir(argv: list[str], directory: Path) -> list[str]:
    return [arg.replace("{dir}", str(directory)) for arg in argv]


def backup_command(options: Mapping[str, Any], out_dir: Path, work: Work) -> Made:
    argv = with_dir(list(options["command"]), out_dir)
    run_process(argv, work, env=options.get("env") or {}, cwd=options.get("cwd"), on_line=work.emit)
    files = hash_tree(out_dir)
    if not files:
        raise BackupError(f"{Path(argv[0]).name} wrote nothing into the set's directory ({{dir}})")
    # no "--version" call: an arbitrary command may not know it, and must not be run twice
    return Made(files, {"command": shlex.join(argv)}, {"unpacked": sum(f["size"] for f in files)})


def restore_command(options: Mapping[str, Any], set_dir: Path, work: Work) -> None:
    argv = with_dir(list(options["restore"]), set_dir)
    run_process(argv, work, env=options.get("env") or {}, cwd=options.get("cwd"), on_line=work.emit)


MAKERS: dict[str, Callable[[Mapping[str, Any], Path, Work], Made]] = {
    "files": backup_files, "sqlite": backup_sqlite, "postgres": backup_postgres, "command": backup_command}
