"""One action at a time per target, across every lakedeck process of the host, whichever user runs it.

A target's lock is a file in a host-wide directory, taken with ``flock(LOCK_EX | LOCK_NB)``: the kernel releases
it when its holder ends, however it ends (a SIGKILL too), so a lock is never left behind. The holder writes who
it is into the file (user, pid, since when, what), for the refusal the next one gets:
``nginx is busy: restart by alice (pid 4242) since 12:03:10``.

The directory: ``locks:`` in the config, else ``/run/lakedeck`` when it exists or can be created, else
``locks/`` in the state directory. A directory lakedeck creates is mode 1777 (sticky, like /tmp), so every user
can create lock files there and nobody can delete another's; shared lock files are mode 0666 (the umask is
overridden), so every user can lock them. The state directory is the user's own: there the locks hold only
among that user's processes, and ``describe`` says so.

Lock files are never deleted: deleting one while another process waits on it would let two holders in.
Files in a world-writable directory are evidence, not truth: a lock file is opened without following symlinks
and must be a regular file, and its holder record (any user can write it) is read bounded, each field checked for
the type and range lakedeck writes; what fails is shown as "unknown", and the refusal stands.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .text import one_line, visible

DEFAULT_DIR = "/run/lakedeck"
SHARED_MODE = 0o1777
HOLDER_BYTES = 4096  # a holder record is read and written no longer than this
MAX_TEXT = 60  # a holder's user or action longer than this is not one lakedeck wrote: "unknown"
PID_MAX = 1 << 22  # the largest pid_max Linux allows
EARLIEST = 946684800.0  # 2000-01-01: a holder's "since" before it, or a day after now, is "unknown"
SKEW = 86400.0
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class LockBusy(Exception):
    """Another action holds the target; ``str()`` says who, since when, doing what."""


@dataclass(frozen=True)
class LockDir:
    path: Path
    shared: bool  # every user of the host locks here (else only this user's processes)
    note: str = ""  # why it is not the configured or default directory

    def describe(self) -> str:
        who = "shared by every user of this host" if self.shared else "this user's lakedeck processes only"
        return f"action locks in {self.path} ({who})" + (f": {self.note}" if self.note else "")


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    state = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(state) / "lakedeck"


def resolve(configured: str | None, default: str | None = None, environ: Mapping[str, str] | None = None) -> LockDir:
    """The lock directory: ``configured``, else ``default`` (``/run/lakedeck``), each when it can be made and
    written; else the state directory's ``locks/``."""
    wanted = Path(configured).expanduser() if configured else Path(default or DEFAULT_DIR)
    problem = _usable(wanted)
    if not problem:
        return LockDir(wanted, shared=_is_shared(wanted))
    fallback = state_dir(environ) / "locks"
    fallback_problem = _usable(fallback, mode=0o700)
    note = f"{wanted} cannot be used ({problem})"
    if fallback_problem:  # nowhere to lock: every action will be refused with this reason
        return LockDir(fallback, shared=False, note=f"{note}; nor {fallback} ({fallback_problem})")
    return LockDir(fallback, shared=False, note=note)


def _usable(path: Path, mode: int = SHARED_MODE) -> str:
    """"" when ``path`` is (or now is) a directory this process can create files in, else why not."""
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True)
        os.mkdir(path, mode)
        os.chmod(path, mode)  # mkdir's mode went through the umask; ours is meant
    except FileExistsError:
        pass
    except OSError as exc:
        return exc.strerror or str(exc)
    if not path.is_dir():
        return "not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return "not writable"
    return ""


def _is_shared(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IWOTH and mode & stat.S_ISVTX)


def file_name(target: str) -> str:
    """A lock file's name for ``target``: readable, but only safe characters, and a hash that keeps two targets
    that read alike apart. No slash, no leading dot: always a file directly in the lock directory."""
    readable = _UNSAFE_NAME.sub("_", target).strip("._-")[:60] or "target"
    digest = hashlib.sha256(target.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]
    return f"{readable}-{digest}.lock"


class TargetLock:
    """The lock of one target while one action runs on it."""

    def __init__(self, directory: LockDir, target: str) -> None:
        self.directory = directory
        self.target = target
        self.path = directory.path / file_name(target)
        self._fd: int | None = None

    def acquire(self, holder: Mapping[str, object]) -> None:
        """Take the lock and write ``holder`` into it; LockBusy (who holds it) or OSError when it cannot."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read_holder(fd)
            os.close(fd)
            raise LockBusy(busy_line(self.target, info)) from None
        except OSError:
            os.close(fd)
            raise
        fields = {key: value[:MAX_TEXT] if isinstance(value, str) else value for key, value in holder.items()}
        record = json.dumps({**fields, "target": self.target}, ensure_ascii=False).encode("utf-8")[:HOLDER_BYTES]
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        except OSError:
            pass  # who holds it is a courtesy: the lock itself is taken
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # a holder that is gone is never named
        except OSError:
            pass
        os.close(fd)  # closing the last descriptor releases the flock

    def holder(self) -> str:
        """"" when the target is free now, else the refusal line naming who holds it."""
        try:
            fd = self._open(create=False)
        except FileNotFoundError:
            return ""
        except OSError as exc:
            return self.unusable(exc)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return busy_line(self.target, _read_holder(fd))
        except OSError as exc:
            return self.unusable(exc)
        finally:
            os.close(fd)  # a probe that got it lets go at once
        return ""

    def unusable(self, exc: OSError) -> str:
        reason = exc.strerror or str(exc)
        return one_line(f"cannot take the lock of {self.target} at {self.path}: {reason}; nothing was run")

    def _open(self, create: bool = True) -> int:
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = -1
        created = False
        if create:
            try:
                fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
                created = True
            except FileExistsError:
                pass
        if fd < 0:
            try:
                fd = os.open(self.path, flags)
            except PermissionError:  # another user's file we may not write: flock needs only a read descriptor
                fd = os.open(self.path, (flags & ~os.O_RDWR) | os.O_RDONLY)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise OSError(errno.ELOOP, "it is a symbolic link, not a lock file lakedeck made") from None
                raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file")
        if created and self.directory.shared:
            os.fchmod(fd, 0o666)  # any user's lakedeck can lock it (the umask would have taken that away)
        return fd


def _read_holder(fd: int) -> dict[str, object]:
    """The holder record as written, or {} when it is not a JSON object: its first HOLDER_BYTES only (any user
    can write a lock file, so it is never trusted: ``Holder`` checks each field)."""
    try:
        raw = os.pread(fd, HOLDER_BYTES, 0)
        info = json.loads(raw.decode("utf-8", errors="replace")) if raw else {}
    except (OSError, ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than json can go
        return {}
    return info if isinstance(info, dict) else {}


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, from its file: each field only when it has the type and range a lakedeck writes, else
    None (shown as "unknown"). Strings are made visible and short."""

    action: str | None
    user: str | None
    pid: int | None
    since: float | None

    @classmethod
    def of(cls, info: Mapping[str, object], now: float | None = None) -> Holder:
        now = time.time() if now is None else now
        pid, since = info.get("pid"), info.get("since")
        return cls(
            action=_short_text(info.get("action")),
            user=_short_text(info.get("user")),
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid <= PID_MAX else None,
            since=float(since) if _is_number(since) and EARLIEST <= since <= now + SKEW else None,
        )


def _short_text(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        return None
    return visible(value)


def _is_number(value: object) -> bool:
    """An int (but a bool) or a finite float; an int too large for a float is still compared exactly."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def busy_line(target: str, info: Mapping[str, object], now: float | None = None) -> str:
    """``nginx is busy: restart by alice (pid 4242) since 12:03:10``. Whatever the file says is only shown, and
    what it cannot be trusted for is "unknown"."""
    if not info:
        return one_line(f"{target} is busy: another lakedeck process is acting on it")
    holder = Holder.of(info, now)
    since = "unknown" if holder.since is None else _clock_time(holder.since, now)
    return one_line(f"{target} is busy: {holder.action or 'an action'} by {holder.user or 'unknown'} "
                    f"(pid {holder.pid or 'unknown'}) since {since}")


def _clock_time(at: float, now: float | None = None) -> str:
    now = time.time() if now is None else now
    local = time.localtime(at)
    same_day = time.strftime("%Y-%m-%d", local) == time.strftime("%Y-%m-%d", time.localtime(now))
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", local)
