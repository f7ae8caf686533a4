"""Backup sets on disk: ``DEST/JOB/<UTC time>/`` holding the files and a ``manifest.json``.

A run writes into ``DEST/JOB/.partial-<name>-<pid>/`` and renames it only once its manifest is on disk, so a
directory with a readable manifest is a complete set, and anything else is unfinished or broken. The last
verification of a set is kept beside its manifest in ``verify.json``. Nothing here deletes anything: the
retention plan only names what may go.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import BackupSet

MANIFEST = "manifest.json"
VERIFY = "verify.json"
FORMAT = "lakedeck-backup/1"
PARTIAL_PREFIX = ".partial-"
SCRATCH_PREFIX = ".verify-"  # a verify's temporary copy (sqlite), beside the sets
SET_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
STALE_PARTIAL = 3600.0  # an unfinished directory untouched this long is a dead run's: prune removes it
CHUNK = 1024 * 1024
OWN_FILES = (MANIFEST, VERIFY)


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
        return self.name.startswith(PARTIAL_PREFIX)


@dataclass(frozen=True)
class JobSets:
    sets: tuple[BackupSet, ...]  # good sets, newest first
    unfinished: tuple[Unfinished, ...]

    @property
    def size(self) -> int:
        return sum(s.size for s in self.sets)


def set_name(when: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))


def name_time(name: str) -> float:
    """The UTC time a set's name says it started."""
    import calendar

    return float(calendar.timegm(time.strptime(name[:16], "%Y%m%dT%H%M%SZ")))


# -- files -----------------------------------------------------------------------------------------

def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write, fsync, rename over, fsync the directory: a reader sees the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
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


# -- manifests and verification --------------------------------------------------------------------

def read_manifest(set_dir: Path) -> dict[str, Any]:
    try:
        raw = (set_dir / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise ManifestError("no manifest.json") from None
    except OSError as exc:
        raise ManifestError(f"manifest.json unreadable: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise ManifestError("manifest.json is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), list):
        raise ManifestError("manifest.json is not a lakedeck manifest")
    return data


def check_files(set_dir: Path, manifest: dict[str, Any], on_chunk: Callable[[int], None] | None = None) -> str:
    """"" when every file the manifest lists is there with its size and sha256, else the first problem."""
    for entry in manifest["files"]:
        relative = str(entry.get("path", ""))
        path = set_dir / relative
        if not relative or ".." in Path(relative).parts or not path.is_file():
            return f"{relative or '?'} is missing"
        if path.stat().st_size != entry.get("size"):
            return f"size mismatch in {relative} ({path.stat().st_size} bytes, manifest {entry.get('size')})"
        digest, _ = sha256_file(path, on_chunk)
        if digest != entry.get("sha256"):
            return f"sha256 mismatch in {relative}"
    return ""


def write_verify(set_dir: Path, result: str, at: float) -> None:
    write_json_atomic(set_dir / VERIFY, {"result": result, "at": at})


def _read_verify(set_dir: Path) -> tuple[str, float | None]:
    try:
        data = json.loads((set_dir / VERIFY).read_bytes())
        return str(data["result"]), float(data["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return "", None


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


def list_sets(job_dir: Path) -> JobSets:
    """The job's sets, newest first, and what is there but not a good set. A missing job directory is no
    sets; an unreadable one raises OSError."""
    try:
        entries = sorted(os.scandir(job_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return JobSets((), ())
    sets, unfinished = [], []
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if entry.name.startswith(PARTIAL_PREFIX):
            unfinished.append(Unfinished(entry.name, entry.path, _newest_mtime(path), "unfinished"))
            continue
        if not SET_NAME.match(entry.name):
            continue  # not ours: a verify's scratch copy, or something the operator put there
        try:
            manifest = read_manifest(path)
        except ManifestError as exc:
            unfinished.append(Unfinished(entry.name, entry.path, _newest_mtime(path), f"no readable manifest: {exc}"))
            continue
        verified, verified_at = _read_verify(path)
        files = manifest["files"]
        sets.append(BackupSet(
            name=entry.name, path=entry.path, started=float(manifest.get("started") or name_time(entry.name)),
            finished=manifest.get("finished"), size=sum(int(f.get("size") or 0) for f in files), files=len(files),
            verified=verified, verified_at=verified_at))
    sets.sort(key=lambda s: (s.started, s.name), reverse=True)
    return JobSets(tuple(sets), tuple(unfinished))


# -- retention -------------------------------------------------------------------------------------

def protected(sets: Iterable[BackupSet]) -> set[str]:
    """Sets no prune may take: the newest one, and the newest that passed its last verify."""
    ordered = sorted(sets, key=lambda s: (s.started, s.name), reverse=True)
    keep = {ordered[0].name} if ordered else set()
    verified = next((s for s in ordered if s.verified == "ok"), None)
    if verified is not None:
        keep.add(verified.name)
    return keep


def prune_plan(sets: Iterable[BackupSet], keep: float | None, keep_last: int | None, now: float) -> list[BackupSet]:
    """The sets a prune would delete, oldest first: a set goes only when every given rule lets it go
    (older than ``keep`` and beyond the newest ``keep_last``). No rule: nothing goes."""
    if keep is None and keep_last is None:
        return []
    ordered = sorted(sets, key=lambda s: (s.started, s.name), reverse=True)
    safe = protected(ordered)
    plan = []
    for index, backup in enumerate(ordered):
        if backup.name in safe:
            continue
        if keep_last is not None and index < keep_last:
            continue
        if keep is not None and now - backup.started <= keep:
            continue
        plan.append(backup)
    return plan[::-1]


def stale_unfinished(unfinished: Iterable[Unfinished], now: float, busy: Iterable[str] = ()) -> list[Unfinished]:
    """Leftovers of dead runs: ``.partial-*`` directories untouched for an hour whose process is gone
    (and that are not being written by this process, ``busy``)."""
    busy = set(busy)
    stale = []
    for item in unfinished:
        if not item.partial or item.path in busy or now - item.mtime < STALE_PARTIAL:
            continue
        pid = item.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        stale.append(item)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
