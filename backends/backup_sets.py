"""Backup sets on disk: ``DEST/JOB/<UTC time>/`` holding the files and a ``manifest.json``.

A run writes into ``DEST/JOB/.partial-<name>-<pid>/`` and renames it only once its manifest is on disk, so a
directory with a readable manifest is a complete set, and anything else is unfinished or broken. The last
verification of a set is kept beside its manifest in ``verify.json``; a run that failed says so in
``DEST/JOB/last-run.json`` until a run succeeds. Nothing here deletes anything: the retention plan only names
what may go (backup_prune).

What is under DEST/JOB is evidence, not truth: only a directory (never a symlink) named for a real UTC time no
later than this clock allows is a set. Everything else there that lakedeck did not put there is foreign:
listed, never counted, kept, deleted, verified or restored. Every name is matched whole (``fullmatch``, ASCII
digits only): ``20251231T000000Z\n`` or ``.partial-notes`` is nobody's set and no run's leftover. What a set's
JSON files say is checked field by field before it is believed (backup_records).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backup_members import UnsafeMember, read_member, read_small
from .backup_records import FORMAT, MANIFEST_LIMIT, SMALL_LIMIT, RecordError, manifest_problem, parse, result_at
from .model import BackupSet
from .text import one_line

MANIFEST = "manifest.json"
VERIFY = "verify.json"
LAST_RUN = "last-run.json"  # DEST/JOB/last-run.json: the last run's failure, until a run succeeds
PARTIAL_PREFIX = ".partial-"
SCRATCH_PREFIX = ".verify-"  # a verify's temporary copy (sqlite), beside the sets: .verify-<pid>-<random>
# The names lakedeck gives what it writes under DEST/JOB, each matched whole (never .match with $: it lets a
# trailing newline through) and with ASCII digits only (\d takes every script's digits).
_SET = r"([0-9]{8}T[0-9]{6}Z)(?:-([1-9][0-9]{0,5}))?"
SET_NAME = re.compile(_SET)
PARTIAL_NAME = re.compile(rf"\.partial-(?:pruned-)?{_SET}-([0-9]{{1,10}})")  # a run's, or a prune's on its way out
SCRATCH_NAME = re.compile(r"\.verify-[0-9]{1,10}-[a-z0-9_]{1,64}")  # tempfile.mkdtemp's random part
LAST_RUN_TMP = re.compile(r"\.last-run\.json\.tmp-[0-9]{1,10}")  # write_json_atomic's, for LAST_RUN
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
FUTURE_SKEW = 300.0  # a set named this far ahead of the clock is clock skew; further ahead, it is foreign
STALE_PARTIAL = 3600.0  # an unfinished directory untouched this long is a dead run's: prune removes it
CHUNK = 1024 * 1024
OWN_FILES = (MANIFEST, VERIFY)
VERDICT_SHOWN = 2000  # characters of a verdict kept in verify.json or last-run.json: far below SMALL_LIMIT


class ManifestError(ValueError):
    """A set's manifest is missing or unreadable; ``str()`` says why in a few words."""


@dataclass(frozen=True)
class Unfinished:
    """A directory under DEST/JOB that is not a good set: a run's leftovers, or a set without its manifest."""

    name: str
    path: str
    mtime: float  # the newest modification inside it: how long since anything wrote there
    why: str  # "unfinished" (a .partial-* directory) or "no readable manifest: <why>"

    @property
    def partial(self) -> bool:
        return partial_pid(self.name) is not None


def partial_pid(name: str) -> int | None:
    """The pid of the run (or prune) whose ``.partial-*`` directory this is; None when no lakedeck run would
    have named a directory so."""
    match = PARTIAL_NAME.fullmatch(name)
    return int(match.group(3)) if match else None


@dataclass(frozen=True)
class Foreign:
    """Something under DEST/JOB that is no set and not lakedeck's: never counted, kept, deleted or read."""

    name: str
    path: str
    why: str  # "not a set name", "in the future", "a symlink (never followed)", "not a directory"


@dataclass(frozen=True)
class LastRun:
    """The last run's failure, as recorded in DEST/JOB/last-run.json."""

    failed: str  # why, in one line
    at: float


@dataclass(frozen=True)
class JobSets:
    sets: tuple[BackupSet, ...]  # good sets, newest first
    unfinished: tuple[Unfinished, ...]
    foreign: tuple[Foreign, ...] = ()
    last_run: LastRun | None = None

    @property
    def size(self) -> int:
        return sum(s.size for s in self.sets)


def set_name(when: float) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(when))


def name_time(name: str) -> float | None:
    """The UTC time a set's name says it started; None when the name is not one lakedeck writes (a real
    time in its one spelling, with an optional ``-N``)."""
    match = SET_NAME.fullmatch(name)
    if match is None:
        return None
    try:
        when = float(calendar.timegm(time.strptime(match.group(1), TIME_FORMAT)))
    except (ValueError, OverflowError):
        return None
    return when if set_name(when) == match.group(1) else None  # 23:59:60 and the like are no set's name


def set_order(backup: BackupSet) -> tuple[float, int]:
    """Oldest to newest: by the name's time, then its ``-N``."""
    match = SET_NAME.fullmatch(backup.name)
    return backup.started, int(match.group(2) or 1) if match else 0


# -- files -----------------------------------------------------------------------------------------

def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_json(data: Any) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode("utf-8")


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, encode_json(data))


def write_atomic(path: Path, raw: bytes) -> None:
    """Write, fsync, rename over, fsync the directory: a reader sees the old file or the whole new one. The
    temporary file is created afresh (never through a symlink someone left at its name)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def sha256_file(path: Path, on_chunk: Callable[[int], None] | None = None) -> tuple[str, int]:
    """The file's sha256 and size, read in chunks (``on_chunk(bytes)`` after each, for progress)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
    return digest.hexdigest(), size


def files_of(directory: Path) -> list[Path]:
    """Every regular file under a set's directory except lakedeck's own, in a stable order."""
    found = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            if path.parent == directory and name in OWN_FILES:
                continue
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return found


def hash_tree(directory: Path, on_chunk: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """The manifest's ``files``: path (relative, /-separated), size and sha256 of each file written."""
    entries = []
    for path in files_of(directory):
        digest, size = sha256_file(path, on_chunk)
        entries.append({"path": path.relative_to(directory).as_posix(), "size": size, "sha256": digest})
    return entries


def fsync_tree(directory: Path) -> None:
    """Flush every file and directory of a set to disk before it is renamed into place."""
    for root, dirs, names in os.walk(directory):
        for name in names:
            fd = os.open(Path(root) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))


# -- manifests, verification and the last run ------------------------------------------------------

def read_manifest(set_dir: Path) -> dict[str, Any]:
    """The set's manifest, read without following a symlink and no more than MANIFEST_LIMIT bytes, every field
    checked (its paths are checked when a file is opened: see backup_members). ManifestError says why not."""
    try:
        raw = read_member(set_dir, MANIFEST, MANIFEST_LIMIT)
    except UnsafeMember as exc:
        raise ManifestError("no manifest.json" if str(exc).endswith("is missing") else str(exc)) from None
    try:
        data = parse(raw, MANIFEST)
    except RecordError as exc:
        raise ManifestError(str(exc)) from None
    problem = manifest_problem(data)
    if problem:
        raise ManifestError(f"{MANIFEST}: {problem}")
    return data


def write_manifest(set_dir: Path, manifest: dict[str, Any]) -> None:
    """Write a run's manifest; ManifestError when it is one lakedeck would not read back."""
    raw = encode_json(manifest)
    problem = manifest_problem(manifest)
    if problem:
        raise ManifestError(f"the set's {MANIFEST} would be unreadable: {problem}")
    if len(raw) > MANIFEST_LIMIT:
        raise ManifestError(f"the set's {MANIFEST} would be {len(raw)} bytes, over the {MANIFEST_LIMIT} lakedeck "
                            f"reads: write fewer, larger files (an archive)")
    write_atomic(set_dir / MANIFEST, raw)


def unpacked_size(manifest: dict[str, Any], kind: str) -> int | None:
    """What the set takes once restored: recorded by the run; for sets made before that, the size of its
    files when they are not compressed (every kind but files)."""
    if "unpacked" in manifest:  # checked by read_manifest
        return int(manifest["unpacked"])
    return None if kind == "files" else sum(int(f["size"]) for f in manifest["files"])


def write_verify(set_dir: Path, result: str, at: float) -> None:
    write_json_atomic(set_dir / VERIFY, {"result": one_line(result, VERDICT_SHOWN), "at": at})


def _read_verify(set_dir: Path) -> tuple[str, float | None]:
    """The set's last verdict ("ok" or "failed: why") and when; ("", None), not verified, when verify.json is
    missing or unreadable in any way."""
    try:
        found = result_at(parse(read_member(set_dir, VERIFY, SMALL_LIMIT), VERIFY))
    except (UnsafeMember, RecordError):
        return "", None
    return found if found is not None else ("", None)


def record_run(job_dir: Path, failed: str, at: float) -> None:
    """Remember a failed run (``failed`` says why) in DEST/JOB/last-run.json, or forget it (``failed`` "")."""
    if failed:
        write_json_atomic(job_dir / LAST_RUN, {"result": one_line(f"failed: {failed}", VERDICT_SHOWN), "at": at})
    else:
        (job_dir / LAST_RUN).unlink(missing_ok=True)


def _read_last_run(job_dir: Path) -> LastRun | None:
    try:
        found = result_at(parse(read_small(job_dir / LAST_RUN, SMALL_LIMIT), LAST_RUN))
    except (UnsafeMember, RecordError):
        return None
    if found is None or not found[0].startswith("failed"):
        return None
    return LastRun(found[0].removeprefix("failed: "), found[1])


# -- listing ---------------------------------------------------------------------------------------

def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for root, _, names in os.walk(path):
        for name in names:
            try:
                newest = max(newest, (Path(root) / name).stat().st_mtime)
            except OSError:
                continue
    return newest


def _own(name: str, is_dir: bool) -> bool:
    """An entry lakedeck itself keeps under DEST/JOB (besides the sets)."""
    if is_dir:
        return partial_pid(name) is not None or SCRATCH_NAME.fullmatch(name) is not None
    return name == LAST_RUN or LAST_RUN_TMP.fullmatch(name) is not None


def list_sets(job_dir: Path, now: float | None = None) -> JobSets:
    """The job's sets, newest first, what is there but not a good set, and what is not lakedeck's at all.
    ``now`` is the clock a set's name is judged against (a name more than FUTURE_SKEW ahead is foreign). A
    missing job directory is no sets; an unreadable one raises OSError."""
    now = time.time() if now is None else now
    try:
        entries = sorted(os.scandir(job_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return JobSets((), ())
    sets, unfinished, foreign = [], [], []
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink():
            foreign.append(Foreign(entry.name, entry.path, "a symlink (never followed)"))
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        if _own(entry.name, is_dir):
            if partial_pid(entry.name) is not None:
                unfinished.append(Unfinished(entry.name, entry.path, _newest_mtime(path), "unfinished"))
            continue
        started = name_time(entry.name)
        if not is_dir:
            foreign.append(Foreign(entry.name, entry.path, "not a directory"))
            continue
        if started is None:
            foreign.append(Foreign(entry.name, entry.path, "not a set name"))
            continue
        if started > now + FUTURE_SKEW:
            foreign.append(Foreign(entry.name, entry.path, "in the future"))
            continue
        try:
            manifest = read_manifest(path)
        except ManifestError as exc:
            unfinished.append(Unfinished(entry.name, entry.path, _newest_mtime(path), f"no readable manifest: {exc}"))
            continue
        sets.append(_set_of(entry.name, entry.path, started, manifest, now))
    sets.sort(key=set_order, reverse=True)
    return JobSets(tuple(sets), tuple(unfinished), tuple(foreign), _read_last_run(job_dir))


def _set_of(name: str, path: str, started: float, manifest: dict[str, Any], now: float) -> BackupSet:
    # the name's time is what was checked; the manifest's "finished" only when it is a time after it
    finished = float(manifest["finished"]) if "finished" in manifest else None  # a time: read_manifest checked
    if finished is not None and not started <= finished <= now + FUTURE_SKEW:
        finished = None
    verified, verified_at = _read_verify(Path(path))
    files = manifest["files"]
    return BackupSet(name=name, path=path, started=started, finished=finished, size=sum(f["size"] for f in files),
                     files=len(files), verified=verified, verified_at=verified_at,
                     unpacked=unpacked_size(manifest, str(manifest.get("kind") or "")))
