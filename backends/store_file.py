"""The history store's files on disk: private (0600, like the audit log: both hold what operators did), never
seen half made, and what a full disk left behind told apart from a file that is not lakedeck's.

DuckDB creates its files with the process umask (0644 as a rule) and a database file cannot be made empty
beforehand (DuckDB refuses an empty file), so a new store is made in a private directory beside its place and
linked there once whole. The WAL that DuckDB makes at each commit is tightened as soon as it appears.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable

UNFINISHED_LIMIT = 1024 * 1024  # a file larger than this is never taken for one a full disk left


def tighten(path: Path) -> None:
    """Take the group's and others' access from a regular file of ours (a file of another user is theirs)."""
    try:
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and info.st_mode & 0o077:
            os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)
    except OSError:
        pass


def make_directory(directory: Path) -> None:
    """``directory`` and its parents; the directory itself made 0700 when it is new."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def create_whole(path: Path, make: Callable[[str], None]) -> None:
    """A new file at ``path``, made by ``make(where)`` in a private directory beside it and linked into place
    whole and 0600; nothing when a file appeared there meanwhile. Whatever fails leaves nothing behind (and
    what a process killed while making one left is removed first: the caller holds the store's lock)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.new-*"):
        shutil.rmtree(stale, ignore_errors=True)
    workdir = tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent)  # 0700
    try:
        fresh = os.path.join(workdir, path.name)
        make(fresh)
        os.chmod(fresh, 0o600)
        try:
            os.link(fresh, path)  # never over a file that appeared meanwhile
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not os.path.lexists(path):
                os.rename(fresh, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def unfinished(path: Path) -> bool:
    """Whether ``path`` is a regular file with nothing in it but NUL bytes (or nothing at all): what a full
    disk leaves of a DuckDB file being made, which no one else would have put there."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > UNFINISHED_LIMIT:
            return False
        with open(path, "rb") as handle:
            return not handle.read(UNFINISHED_LIMIT + 1).strip(b"\0")
    except OSError:
        return False


def set_aside(path: Path, clock: Callable[[], float] = time.time) -> str:
    """Clear the place of an unfinished file: an empty one is removed, one of NUL bytes renamed
    ``<name>.broken-<UTC time>``. Returns what was done, in a few words."""
    if os.lstat(path).st_size == 0:
        os.unlink(path)
        return "an empty file (a full disk?) was removed"
    aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(clock()))}")
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, aside)
    return f"an unfinished file (a full disk?) was moved to {aside.name}"
