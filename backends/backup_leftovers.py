"""What an interrupted verify or restore leaves behind, and its removal once its process is gone.

Every temporary name carries the pid of the process writing it:
  ``.<file>.restore-<pid>``    a SQLite restore's copy, beside the file it replaces
  ``.lakedeck-restore-<pid>``  a files restore's staging directory, inside the target directory
  ``.verify-<pid>-<random>``   a verify's scratch copy, in DEST/JOB
A leftover whose process is dead is removed by the next restore into that place, the next verify of the
job, and the job's poll for the places it knows (DEST/JOB, ``restore_to``, the live database or source).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

STAGING_PREFIX = ".lakedeck-restore-"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def sqlite_prefix(target: Path) -> str:
    return f".{target.name}.restore-"


def sqlite_temp(target: Path) -> Path:
    return target.with_name(f"{sqlite_prefix(target)}{os.getpid()}")


def staging_dir(target: Path) -> Path:
    return target / f"{STAGING_PREFIX}{os.getpid()}"


def _pid_of(name: str, prefix: str) -> int | None:
    """The pid in ``<prefix><pid>`` or ``<prefix><pid>-<random>``, matched whole and in ASCII digits (a name
    with a trailing newline, ``²`` or ``٣`` is no leftover of lakedeck's); None for any other name."""
    match = re.fullmatch(rf"{re.escape(prefix)}([0-9]{{1,10}})(?:-[a-z0-9_]{{1,64}})?", name)
    return int(match.group(1)) if match else None


def remove_dead(directory: Path, prefix: str, directories: bool) -> list[str]:
    """Remove what is in ``directory`` named ``<prefix><pid>`` or ``<prefix><pid>-…`` (directories when
    ``directories``, else regular files; never a symlink or anything else) whose process is gone. Returns
    the names removed; what cannot be read or removed is left as it is."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    removed = []
    for entry in entries:
        pid = _pid_of(entry.name, prefix)
        if pid is None or pid == os.getpid() or alive(pid):
            continue
        try:
            if directories and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            elif not directories and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
            else:
                continue
        except OSError:
            continue
        removed.append(entry.name)
    return removed
