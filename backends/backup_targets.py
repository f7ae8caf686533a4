"""Writing a set back into its target: what a restore writes, where, and what it keeps.

- A files set unpacks into a staging directory inside the target (``.lakedeck-restore-<pid>``); only when
  all of it is there are its top-level entries renamed into the target. An entry of the same name already
  there is first renamed aside as ``<name>.before-restore-<time>``: kept, never deleted or merged into.
- A SQLite file is written to ``.<name>.restore-<pid>`` beside the target, then renamed over it; the old
  file is kept as ``<name>.before-restore-<time>``.
- Free space is checked first against the set's unpacked size; whatever fails part-way (a full disk, no
  inodes left) removes what it wrote and puts back what it had moved aside, so a refused restore leaves the
  target as it was, and says "nothing was restored".
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .backup_kinds import BackupError, Work
from .backup_leftovers import STAGING_PREFIX, remove_dead, sqlite_prefix, sqlite_temp, staging_dir
from .backup_sets import CHUNK, fsync_dir, set_name
from .text import human_bytes, one_line

TOP_SHOWN = 20  # top-level entries a preview names before "and N more"


# -- space -----------------------------------------------------------------------------------------

def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mount_of(path: Path) -> str:
    probe = _existing(path).resolve()
    while not os.path.ismount(probe) and probe != probe.parent:
        probe = probe.parent
    return str(probe)


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem ``path`` is (or would be) on."""
    info = os.statvfs(_existing(path))
    return info.f_bavail * info.f_frsize


def ensure_space(path: Path, need: int) -> None:
    free = free_bytes(path)
    if need > free:
        raise BackupError(f"needs {human_bytes(need)}, {human_bytes(free)} free on {mount_of(path)}: nothing was restored")


def aside(path: Path, stamp: str) -> Path:
    """Where what is at ``path`` is kept when a restore replaces it: ``<name>.before-restore-<time>``."""
    kept = path.with_name(f"{path.name}.before-restore-{stamp}")
    n = 2
    while os.path.lexists(kept):
        kept = path.with_name(f"{path.name}.before-restore-{stamp}-{n}")
        n += 1
    return kept


def stamp_now() -> str:
    return set_name(time.time())


@contextmanager
def undone_on_error(target: Path) -> Iterator[None]:
    """Around a restore that undoes what it wrote when it fails: an OSError then (ENOSPC when the disk or its
    inodes ran out) says so in one line, ending like every refusal that wrote nothing."""
    try:
        yield
    except OSError as exc:
        out_of = f" (out of space or inodes on {mount_of(target)})" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise BackupError(one_line(f"{exc.strerror or exc} writing {target}{out_of}: nothing was restored", 500)) from None


# -- files -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """What a files set puts into its target: these top-level entries, holding ``unpacked`` bytes."""

    top: tuple[str, ...]
    unpacked: int

    def shown(self) -> str:
        more = [f"and {len(self.top) - TOP_SHOWN} more"] if len(self.top) > TOP_SHOWN else []
        return ", ".join([*self.top[:TOP_SHOWN], *more]) or "nothing"


def files_layout(manifest: dict[str, Any], archive: BinaryIO) -> Layout:
    """The set's layout from its manifest (whose fields read_manifest checked), or read from the archive's
    headers when the manifest is older."""
    if "top" in manifest and "unpacked" in manifest:
        return Layout(tuple(sorted(set(manifest["top"]))), manifest["unpacked"])
    names, total = set(), 0
    try:
        with tarfile.open(fileobj=archive, mode="r:gz") as tar:
            for member in tar:
                names.add(member.name.split("/")[0])
                total += member.size if member.isreg() else 0
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupError(one_line(f"files.tar.gz cannot be read: {exc}")) from None
    finally:
        archive.seek(0)
    return Layout(tuple(sorted(names)), total)


def restore_files(archive: BinaryIO, layout: Layout, target: Path, work: Work) -> None:
    """Unpack into ``target`` exactly the set's top-level entries (the caller has checked the target)."""
    remove_dead(target, STAGING_PREFIX, directories=True)
    ensure_space(target, layout.unpacked)
    made: list[Path] = []
    staging = staging_dir(target)
    with undone_on_error(target):
        try:
            _make_dirs(target, made)
            staging.mkdir()
            _unpack(archive, staging, layout, work)
            _swap_in(staging, target, layout.top, work)
            staging.rmdir()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            for directory in reversed(made):  # only the directories this restore created, and only if empty
                try:
                    directory.rmdir()
                except OSError:
                    break
            raise
    fsync_dir(target)  # after the swap: were this to fail, what it says is not "nothing was restored"
    work.emit(f"unpacked {layout.shown()} into {target}")


def _make_dirs(target: Path, made: list[Path]) -> None:
    """Make ``target`` and its missing parents, each appended to ``made`` (outermost first) once made."""
    missing = []
    probe = target.absolute()
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir()
        made.append(directory)


def _unpack(archive: BinaryIO, staging: Path, layout: Layout, work: Work) -> None:
    """Every member under one of the layout's top-level names, no more bytes than it records, and nothing
    tarfile's data filter refuses (absolute paths, .., links leaving the directory, devices)."""
    allowed, total = set(layout.top), 0
    try:
        with tarfile.open(fileobj=archive, mode="r:gz") as tar:
            for member in tar:
                work.check()
                if member.name.split("/")[0] not in allowed:
                    raise BackupError(one_line(f"the archive holds {member.name}, which the set does not list "
                                               f"({layout.shown()}): nothing was restored"))
                total += member.size if member.isreg() else 0
                if total > layout.unpacked:
                    raise BackupError(f"the archive unpacks to more than the {human_bytes(layout.unpacked)} its set "
                                      f"records: nothing was restored")
                tar.extract(member, staging, filter="data")
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise BackupError(one_line(f"cannot unpack files.tar.gz: {exc}: nothing was restored")) from None
    missing = [name for name in layout.top if not os.path.lexists(staging / name)]
    if missing:
        raise BackupError(one_line(f"the archive lacks {', '.join(missing)}: nothing was restored"))


def _swap_in(staging: Path, target: Path, top: tuple[str, ...], work: Work) -> None:
    """Rename each unpacked entry into the target, what was there under its name first renamed aside; on any
    failure, every rename is undone."""
    stamp, done = stamp_now(), []
    try:
        for name in top:
            dest, kept = target / name, None
            if os.path.lexists(dest):
                kept = aside(dest, stamp)
                os.rename(dest, kept)
            step = [dest, kept, False]
            done.append(step)
            os.rename(staging / name, dest)
            step[2] = True
    except BaseException:
        for dest, kept, placed in reversed(done):
            if placed:
                os.rename(dest, staging / dest.name)
            if kept is not None:
                os.rename(kept, dest)
        raise
    for dest, kept, _ in done:
        if kept is not None:
            work.emit(f"the old {dest.name} is kept as {kept}")


# -- sqlite ----------------------------------------------------------------------------------------

def restore_sqlite(source: BinaryIO, size: int, target: Path, work: Work) -> None:
    """Write ``target`` through a temporary file and a rename; an existing target is kept beside it as
    ``<target>.before-restore-<time>``, never deleted."""
    for suffix in ("-wal", "-journal"):
        side = Path(f"{target}{suffix}")
        if side.exists() and side.stat().st_size > 0:
            raise BackupError(f"{side} exists: a process has {target.name} open; stop it before restoring")
    remove_dead(target.parent, sqlite_prefix(target), directories=False)
    ensure_space(target.parent, size)  # the old file is kept: the new one needs all of its size
    tmp, kept = sqlite_temp(target), None
    tmp.unlink(missing_ok=True)
    with undone_on_error(target):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with os.fdopen(fd, "wb") as out:
                source.seek(0)
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    work.check()
                out.flush()
                os.fsync(out.fileno())
            if os.path.lexists(target):
                _same_owner_and_mode(target, tmp)
                kept = aside(target, stamp_now())
                os.replace(target, kept)
            try:
                os.replace(tmp, target)
            except BaseException:
                if kept is not None:
                    os.replace(kept, target)  # the live file back where it was
                raise
        finally:
            tmp.unlink(missing_ok=True)
    if kept is not None:
        work.emit(f"the old {target.name} is kept as {kept}")
    fsync_dir(target.parent)
    work.emit(f"restored {target}")


def _same_owner_and_mode(old: Path, new: Path) -> None:
    """The restored file keeps the old one's mode (and owner, when this process may set it)."""
    info = os.lstat(old)
    if not stat.S_ISREG(info.st_mode):
        return
    os.chmod(new, stat.S_IMODE(info.st_mode))
    try:
        os.chown(new, info.st_uid, info.st_gid)
    except PermissionError:
        pass
