"""Verifying a set and restoring one, for every kind. Blocking: the adapter runs these in a thread.

A restore never deletes what the operator did not name: a files set unpacks only into an empty or new
directory (or the configured ``restore_to``), a SQLite file that is replaced is kept beside it, and every
restore first re-hashes the set, so a corrupted set is refused instead of restored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .backup_kinds import (
    BackupError,
    Progress,
    Work,
    dump_name,
    integrity_problem,
    pg_restore_list,
    restore_command,
    restore_files,
    restore_postgres,
    restore_sqlite,
)
from .backup_sets import ManifestError, check_files, read_manifest, write_verify


def check_target(kind: str, value: str, restore_to: str | None) -> None:
    """ValueError (one line) when ``value`` is no place to restore a set of this kind into."""
    value = value.strip()
    if kind == "command":
        return
    if not value:
        raise ValueError("a restore needs a target")
    if kind == "postgres":
        if value.startswith("-") or len(value) > 63 or any(c.isspace() or c in "='\"" for c in value):
            raise ValueError(f"{value!r} is not a database name")
        return
    path = Path(value)
    if not path.is_absolute():
        raise ValueError(f"{value} is not an absolute path")
    if kind == "files":
        if path.exists() and not path.is_dir():
            raise ValueError(f"{value} exists and is not a directory")
        named = restore_to is not None and Path(restore_to).absolute() == path
        if path.is_dir() and any(path.iterdir()) and not named:
            raise ValueError(f"{value} is not empty: restore into an empty or new directory (nothing in it is "
                             f"overwritten), or name it in restore_to")
    elif kind == "sqlite":
        if path.is_dir():
            raise ValueError(f"{value} is a directory: name the database file to write")
        if not path.parent.is_dir():
            raise ValueError(f"{path.parent} does not exist")


def _manifest(set_dir: Path) -> dict[str, Any]:
    try:
        return read_manifest(set_dir)
    except ManifestError as exc:
        raise BackupError(f"set {set_dir.name}: {exc}") from None


def _rehash(set_dir: Path, manifest: dict[str, Any], work: Work) -> str:
    progress = Progress(work, sum(int(f.get("size") or 0) for f in manifest["files"]), "checked ")
    return check_files(set_dir, manifest, progress.add)


def verify_set(kind: str, options: Mapping[str, Any], set_dir: Path, work: Work, clock: Callable[[], float]) -> str:
    """Re-hash the set against its manifest, then what the kind can check; record the verdict in verify.json.
    Returns "" when it is good, else the problem."""
    manifest = _manifest(set_dir)
    problem = _rehash(set_dir, manifest, work)
    if not problem and kind == "postgres":
        problem = pg_restore_list(options, set_dir / dump_name(options), work)
    elif not problem and kind == "sqlite":
        for entry in manifest["files"]:
            problem = integrity_problem(set_dir / entry["path"], set_dir.parent, work)
            if problem:
                break
    write_verify(set_dir, f"failed: {problem}" if problem else "ok", clock())
    return problem


def restore_set(kind: str, options: Mapping[str, Any], set_dir: Path, target: str, work: Work) -> None:
    manifest = _manifest(set_dir)
    problem = _rehash(set_dir, manifest, work)
    if problem:
        raise BackupError(f"set {set_dir.name} is damaged ({problem}): nothing was restored; pick another set")
    work.emit(f"set {set_dir.name}: every file matches its sha256")
    if kind == "files":
        restore_files(set_dir, Path(target), work)
    elif kind == "sqlite":
        restore_sqlite(set_dir, manifest["files"][0]["path"], Path(target), work)
    elif kind == "postgres":
        restore_postgres(options, set_dir, target, work)
    else:
        restore_command(options, set_dir, work)
