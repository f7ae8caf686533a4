"""A set's files, opened as evidence rather than truth.

A manifest lists each file by a path inside its set. Whoever can write DEST can plant a manifest, so every
path is checked before anything reads it: relative, normalised (no ``.``, ``..`` or empty parts), inside the
set, and a regular file reached without following a symlink at any component (each directory is opened
with ``O_NOFOLLOW | O_DIRECTORY`` from the set's own descriptor, the file with ``O_NOFOLLOW``, and ``fstat``
must say it is regular). Verify and restore read a file only through ``open_member``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from .text import one_line

CHUNK = 1024 * 1024
NAME_SHOWN = 160  # characters of a manifest path a message quotes: a planted path may be megabytes long


class UnsafeMember(ValueError):
    """A manifest path that must not be read; ``str()`` says why in one line."""


def shown(relative: str) -> str:
    """A manifest path as a message quotes it: on one line, controls visible, cut."""
    return one_line(relative, NAME_SHOWN)


def member_problem(relative: object) -> str:
    """"" when ``relative`` is a plain path inside a set, else why not."""
    if not isinstance(relative, str) or not relative:
        return "a file without a path"
    if "\0" in relative:
        return f"{shown(relative)} is not a path"
    if relative.startswith("/"):
        return f"{shown(relative)} is an absolute path"
    if any(part in ("", ".", "..") for part in relative.split("/")):
        return f"{shown(relative)} is not a plain path inside the set"
    return ""


def _open_dir(path: str | Path, dir_fd: int | None = None) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def open_member(set_dir: Path, relative: object) -> BinaryIO:
    """The set's file ``relative``, open for reading; UnsafeMember (one line) when it is not a regular file
    inside the set reached without a symlink."""
    problem = member_problem(relative)
    if problem:
        raise UnsafeMember(problem)
    assert isinstance(relative, str)
    *directories, leaf = relative.split("/")
    try:
        fd = _open_dir(set_dir)
    except OSError as exc:
        raise UnsafeMember(_why(set_dir.name, exc, "the set's directory")) from None
    try:
        for part in directories:
            try:
                inner = _open_dir(part, fd)
            except NotADirectoryError:  # what O_DIRECTORY | O_NOFOLLOW says of a symlink: say which it is
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise OSError(errno.ELOOP, "a symlink") from None
                raise
            os.close(fd)
            fd = inner
        # O_NONBLOCK: a FIFO planted in a set opens at once (and is refused below) instead of blocking
        handle = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    except OSError as exc:
        raise UnsafeMember(_why(relative, exc)) from None
    finally:
        os.close(fd)
    mode = os.fstat(handle).st_mode
    if not stat.S_ISREG(mode):
        os.close(handle)
        raise UnsafeMember(f"{shown(relative)} is not a regular file")
    return os.fdopen(handle, "rb")


def _why(relative: str, exc: OSError, what: str = "") -> str:
    relative = shown(relative)
    if exc.errno == errno.ENOENT:
        return f"{relative} is missing"
    if exc.errno == errno.ELOOP:
        return f"{relative} is or passes through a symlink (never followed)"
    if exc.errno == errno.ENOTDIR:
        return f"{relative} passes through something that is not a directory"
    return f"{relative}: {exc.strerror or exc}" + (f" ({what})" if what else "")


def read_member(set_dir: Path, relative: str, limit: int) -> bytes:
    """A small file of the set (its manifest, its verify record), read whole; UnsafeMember when it is
    unsafe or larger than ``limit`` bytes."""
    with open_member(set_dir, relative) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafeMember(f"{relative} is larger than {limit} bytes")
    return data


def read_small(path: Path, limit: int) -> bytes:
    """A small file lakedeck keeps (``last-run.json``), read whole without following a symlink; UnsafeMember
    when it is missing, not a regular file or larger than ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UnsafeMember(_why(path.name, exc)) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeMember(f"{path.name} is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafeMember(f"{path.name} is larger than {limit} bytes")
    return data


def check_member(handle: BinaryIO, entry: dict[str, Any], on_chunk: Callable[[int], None] | None = None,
                 full: bool = True) -> str:
    """"" when the open file has the entry's size (and, when ``full``, its sha256), else the problem."""
    relative = shown(entry["path"])
    size = os.fstat(handle.fileno()).st_size
    if size != entry["size"]:
        return f"size mismatch in {relative} ({size} bytes, manifest {entry['size']})"
    if not full:
        return ""
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    handle.seek(0)
    return "" if digest.hexdigest() == entry["sha256"] else f"sha256 mismatch in {relative}"


def check_files(set_dir: Path, entries: Iterable[dict[str, Any]], on_chunk: Callable[[int], None] | None = None,
                full: bool = True) -> str:
    """"" when every listed file is a safe member with its size (and sha256 when ``full``), else the first
    problem, in one line."""
    for entry in entries:
        try:
            with open_member(set_dir, entry["path"]) as handle:
                problem = check_member(handle, entry, on_chunk, full)
        except UnsafeMember as exc:
            return str(exc)
        if problem:
            return problem
    return ""


def fingerprint(set_dir: Path, relatives: Iterable[str]) -> tuple[Any, ...] | None:
    """What changes when any of the files is written, replaced or touched (None when one cannot be read):
    a re-hash of an unchanged fingerprint need not be done again."""
    marks = []
    try:
        for relative in relatives:
            if member_problem(relative):
                return None
            info = os.lstat(set_dir / relative)
            marks.append((relative, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    except (OSError, ValueError):
        return None
    return tuple(marks)
