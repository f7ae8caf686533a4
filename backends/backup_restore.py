"""Verifying a set and restoring one, for every kind. Blocking: the adapter runs these in a thread.

A restore never deletes what the operator did not name: what it replaces is kept beside it (see
backup_targets), and every restore first re-hashes the set, reading each file only as a regular file inside
the set (see backup_members), so a corrupted or planted set is refused before anything is written. The file
a kind restores from stays open from its re-hash to its restore: what was checked is what is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .backup_kinds import (
    ARCHIVE,
    DUMP_NOTE,
    BackupError,
    Progress,
    Work,
    dump_name,
    integrity_problem,
    pg_restore_list,
    restore_command,
    restore_postgres,
    source_root,
)
from .backup_leftovers import STAGING_PREFIX
from .backup_members import UnsafeMember, check_files, check_member, open_member
from .backup_sets import ManifestError, read_manifest, unpacked_size, write_verify
from .backup_targets import Layout, files_layout, restore_files, restore_sqlite


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_target(kind: str, value: str, options: Mapping[str, Any]) -> None:
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
        named = options.get("restore_to") is not None and _same_path(Path(options["restore_to"]), path)
        if path.is_dir() and not named and not is_live(kind, value, options) and _holds_anything(path):
            source = next((p for p in options.get("paths") or () if _same_path(Path(os.path.expanduser(p)), path)), None)
            if source is not None:
                raise ValueError(f"{value} is a source of this job: to restore it in place give "
                                 f"{source_root(list(options['paths']))} (the set unpacks as {path.name}/)")
            raise ValueError(f"{value} is not empty: restore into an empty or new directory, the job's source "
                             f"directory {source_root(list(options['paths']))}, or name it in restore_to")
    elif kind == "sqlite":
        if path.is_dir():
            raise ValueError(f"{value} is a directory: name the database file to write")
        if not path.parent.is_dir():
            raise ValueError(f"{path.parent} does not exist")


def _holds_anything(directory: Path) -> bool:
    """Anything in it besides a dead restore's staging directory (which the restore removes)."""
    return any(not entry.name.startswith(STAGING_PREFIX) for entry in directory.iterdir())


def is_live(kind: str, value: str, options: Mapping[str, Any]) -> bool:
    """Whether ``value`` is the job's own live data: its database (sqlite, postgres) or the directory its
    paths are in (files), where the restore overwrites what the job backs up."""
    value = value.strip()
    if not value:
        return False
    if kind == "sqlite":
        return _same_path(Path(value), Path(os.path.expanduser(options["database"])))
    if kind == "files":
        return _same_path(Path(value), source_root(list(options["paths"])))
    if kind == "postgres":
        return value == options["dbname"]
    return False


# -- the file a kind restores from -----------------------------------------------------------------

def _manifest(set_dir: Path) -> dict[str, Any]:
    try:
        return read_manifest(set_dir)
    except ManifestError as exc:
        raise BackupError(f"set {set_dir.name}: {exc}") from None


def main_entry(kind: str, options: Mapping[str, Any], manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's entry for the file a kind restores from (None for a command); BackupError when the
    manifest has none."""
    files = manifest["files"]
    if kind == "command":
        return None
    if kind == "sqlite":
        if len(files) != 1:
            raise BackupError(f"a sqlite set holds one file; its manifest lists {len(files)}")
        return files[0]
    wanted = ARCHIVE if kind == "files" else dump_name(options)
    found = next((f for f in files if f["path"] == wanted), None)
    if found is None:
        raise BackupError(f"its manifest lists no {wanted}")
    return found


@dataclass(frozen=True)
class Checked:
    manifest: dict[str, Any]
    main: dict[str, Any] | None
    handle: BinaryIO | None  # the main file, open, re-hashed, at its start


def _checked(kind: str, options: Mapping[str, Any], set_dir: Path, work: Work, stack: ExitStack) -> tuple[Checked, str]:
    """Re-hash every file of the set (the main one through the descriptor it stays open on); the problem,
    "" when there is none."""
    manifest = _manifest(set_dir)
    try:
        main, missing = main_entry(kind, options, manifest), ""
    except BackupError as exc:
        main, missing = None, str(exc)
    progress = Progress(work, sum(int(f["size"]) for f in manifest["files"]), "checked ")
    problem = check_files(set_dir, [f for f in manifest["files"] if f is not main], progress.add) or missing
    handle = None
    if not problem and main is not None:
        try:
            handle = stack.enter_context(open_member(set_dir, main["path"]))
        except UnsafeMember as exc:
            problem = str(exc)
        else:
            problem = check_member(handle, main, progress.add)
    return Checked(manifest, main, handle), problem


def verify_set(kind: str, options: Mapping[str, Any], set_dir: Path, work: Work, clock: Callable[[], float]) -> str:
    """Re-hash the set against its manifest, then what the kind can check; record the verdict in verify.json.
    Returns "" when it is good, else the problem."""
    with ExitStack() as stack:
        checked, problem = _checked(kind, options, set_dir, work, stack)
        if not problem and checked.handle is not None and checked.main is not None:
            if kind == "postgres":
                problem = pg_restore_list(options, checked.handle, checked.main["path"], work)
            elif kind == "sqlite":
                problem = integrity_problem(checked.handle, checked.main["path"], set_dir.parent, work)
    write_verify(set_dir, f"failed: {problem}" if problem else "ok", clock())
    return problem


def restore_set(kind: str, options: Mapping[str, Any], set_dir: Path, target: str, work: Work) -> None:
    with ExitStack() as stack:
        checked, problem = _checked(kind, options, set_dir, work, stack)
        if problem:
            raise BackupError(f"set {set_dir.name} is damaged, nothing was restored: pick another set ({problem})")
        work.emit(f"set {set_dir.name}: every file matches its sha256")
        handle, main = checked.handle, checked.main
        if kind == "command":
            restore_command(options, set_dir, work)
            return
        assert handle is not None and main is not None
        if kind == "files":
            restore_files(handle, files_layout(checked.manifest, handle), Path(target), work)
        elif kind == "sqlite":
            restore_sqlite(handle, int(main["size"]), Path(target), work)
        else:
            restore_postgres(options, handle, target, work)


# -- what a restore will write, for its preview ----------------------------------------------------

@dataclass(frozen=True)
class RestoreFacts:
    unpacked: int | None
    note: str = ""  # e.g. a dump takes more once restored
    layout: Layout | None = None  # a files set's top-level entries


def restore_facts(kind: str, options: Mapping[str, Any], set_dir: Path) -> RestoreFacts:
    """What the set writes where it is restored, from its manifest (a files set made before its layout was
    recorded: from its archive's headers). BackupError when that cannot be read."""
    manifest = _manifest(set_dir)
    if kind == "files":
        main = main_entry(kind, options, manifest)
        assert main is not None
        try:
            with open_member(set_dir, main["path"]) as handle:
                layout = files_layout(manifest, handle)
        except UnsafeMember as exc:
            raise BackupError(str(exc)) from None
        return RestoreFacts(layout.unpacked, "", layout)
    note = str(manifest.get("unpacked_note") or (DUMP_NOTE if kind == "postgres" else ""))
    return RestoreFacts(unpacked_size(manifest, kind), note)
