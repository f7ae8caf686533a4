"""Page through one log file far bigger than memory, and its rotated predecessors, reading only what is shown.

The console keeps a bounded ring of recent lines; when an operator opens one file on its own, a FilePager
reads pages of it on demand (from worker threads): the end in blocks read backwards, the lines before or
after a line by its byte offset, the rotated history (``app.log.1``, ``app.log.2.gz``, dateext names) as
if it were the start of the same file, one cut line whole, and every line matching a filter (``scan``).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import stat
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable, Iterator

from .adapters.text import os_error_text
from .log_filter import LineFilter
from .log_gzip import GzipError, GzipIndex, identity
from .linear_regex import PatternError
from .log_reading import BLOCK, MAX_LINE, ChangedError, Piece, Splitter, blocks_forward, lines_backward, lines_forward
from .log_scan import scan_file
from .logtext import Stamper
from .model import LogLine

WHOLE_LIMIT = 16 * 1024 * 1024
PROGRESS_BYTES = 32 * 1024 * 1024  # scan progress is reported at least this often,
PROGRESS_SECONDS = 0.1  # and this often on a slow scan, but not for every chunk
FLUSH_SECONDS = 0.1  # scan yields fewer than ``batch`` lines when it found them this long ago
CACHED_GZIP = 4  # .gz files whose checkpoints are kept


class PagerError(Exception):
    """Why a page could not be read, worded for the operator (``app.log changed since this line was read``)."""


@dataclass(frozen=True)
class LogFile:
    """One file of the history chain as it was when listed."""

    path: str
    info: os.stat_result

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def gz(self) -> bool:
        return self.path.endswith(".gz")


class FilePager:
    """Lazy reads of ``path`` and its rotated history; every method is safe to call from any worker thread."""

    def __init__(self, path: str, source: str, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.source = source
        self.clock = clock
        directory, base = os.path.split(path)
        self._directory = directory
        self._rotated = re.compile(re.escape(base) + r"(?:\.(\d+)|-(\d{4}-?\d\d-?\d\d(?:[-_T]?\d+)*))(?:\.gz)?")
        self._indexes: OrderedDict[str, GzipIndex] = OrderedDict()
        self._lock = threading.Lock()

    # -- the API -----------------------------------------------------------------------------------

    def history(self) -> list[str]:
        """Rotated predecessors that exist as regular files, newest first: numbered (``.1``, ``.2.gz``)
        by number, then dateext names (``-20261121``) by date, newest first."""
        numbered, dated = [], []
        current = _stat(self.path)
        try:
            entries = list(os.scandir(self._directory or "."))
        except OSError:
            return []
        for entry in entries:
            match = self._rotated.fullmatch(entry.name)
            if not match or not _regular(entry.path, current):
                continue
            path = os.path.join(self._directory, entry.name)
            if match.group(1) is not None:
                numbered.append((int(match.group(1)), entry.name, path))
            else:
                dated.append((re.sub(r"\D", "", match.group(2)), entry.name, path))
        numbered.sort()
        dated.sort(reverse=True)
        return [path for *_, path in numbered] + [path for *_, path in dated]

    def tail(self, count: int) -> list[LogLine]:
        """The last ``count`` complete lines and the unfinished line after them; when the file holds fewer
        (it was just rotated), the end of its history comes first."""
        files = self._chain()
        if not files:
            raise PagerError(self._missing())
        return self._backwards(files, len(files) - 1, None, count, keep_unfinished=True)

    def before(self, line: LogLine, count: int) -> list[LogLine]:
        """Up to ``count`` lines just before ``line``, oldest first, continuing into the history."""
        files = self._chain()
        index = self._find(files, line)
        return self._backwards(files, index, line.offset, count, keep_unfinished=False)

    def after(self, line: LogLine, count: int) -> list[LogLine]:
        """Up to ``count`` lines after ``line``, continuing from the history into newer files."""
        files = self._chain()
        index = self._find(files, line)
        return self._forwards(files, index, line.offset, count, skip_first=True)

    def head(self, count: int) -> list[LogLine]:
        """The first ``count`` lines of the oldest history (or of the file, when it has none)."""
        files = self._chain()
        if not files:
            raise PagerError(self._missing())
        return self._forwards(files, 0, 0, count, skip_first=False)

    def whole(self, line: LogLine, limit: int = WHOLE_LIMIT) -> tuple[str, int]:
        """The complete text of a line that was cut, up to ``limit`` bytes, and how many bytes of it are
        left beyond ``limit``. Raises PagerError when the bytes at its offset are no longer that line."""
        files = self._chain()
        file = files[self._find(files, line)]
        with self._reading(file):
            data, beyond = self._read_whole(file, line.offset, max(limit, MAX_LINE))
        if not _same_line(data, line):
            raise PagerError(f"{file.name} changed since this line was read")
        if len(data) > limit:
            data, beyond = data[:limit], beyond + len(data) - limit
        if beyond:
            return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data), beyond
        return Piece(data, line.offset).text(), 0

    def scan(self, matcher: LineFilter, cancel: threading.Event,
             progress: Callable[[int, int], None] | None = None, batch: int = 1000,
             include_history: bool = False) -> Iterator[list[LogLine]]:
        """Every line that ``matcher`` keeps, oldest first, in batches as they are found; the file as it
        was when the scan started, and its history first when ``include_history``. Checks ``cancel``
        between chunks and batches; reports ``progress(bytes_done, bytes_total)`` in on-disk bytes. Raises
        PatternError (its reason) when the pattern cannot run."""
        if matcher.error:
            raise PatternError(matcher.error)
        files = self._chain()
        if not include_history:
            files = [file for file in files[-1:] if file.path == self.path]
        if not files:
            raise PagerError(self._missing())
        reporter = _Progress(progress, sum(file.info.st_size for file in files))
        stamper = Stamper(self.source, self.clock)
        pending: list[LogLine] = []
        flushed = time.monotonic()
        for file, pieces in self._found(files, matcher, cancel, reporter):
            for start in range(0, len(pieces), batch):  # a slice at a time: stamping is the slow part
                if cancel.is_set():
                    return
                now = self.clock()
                pending += [stamper.line(p.text(), now, path=file.path, offset=p.offset, cut=p.cut)
                            for p in pieces[start:start + batch]]
                if len(pending) >= batch:
                    yield pending[:batch]
                    pending, flushed = pending[batch:], time.monotonic()
            if pending and time.monotonic() - flushed >= FLUSH_SECONDS:  # a few matches show without waiting
                yield pending
                pending, flushed = [], time.monotonic()
        if cancel.is_set():
            return
        if pending:
            yield pending
        reporter(reporter.total, final=True)

    # -- the history chain -------------------------------------------------------------------------

    def _chain(self) -> list[LogFile]:
        """The history, oldest first, then the file itself (when it exists)."""
        files = []
        for path in reversed(self.history()):
            info = _stat(path)
            if info is not None:
                files.append(LogFile(path, info))
        info = _stat(self.path)
        if info is not None:
            if not stat.S_ISREG(info.st_mode):
                raise PagerError(f"cannot page {self.path}: not a regular file")
            files.append(LogFile(self.path, info))
        return files

    def _find(self, files: list[LogFile], line: LogLine) -> int:
        if line.offset < 0 or not line.path:
            raise PagerError("this line has no position in a file")
        for index, file in enumerate(files):
            if file.path == line.path or os.path.abspath(file.path) == os.path.abspath(line.path):
                return index
        raise PagerError(f"{os.path.basename(line.path)} is gone (rotated away or deleted)")

    def _found(self, files: list[LogFile], matcher: LineFilter, cancel: threading.Event,
               progress: _Progress) -> Iterator[tuple[LogFile, list[Piece]]]:
        """The pieces of the lines ``matcher`` keeps, chunk by chunk, file after file."""
        source_matches = matcher.search(self.source)  # as LineFilter.matches does
        done = 0
        for file in files:
            chunks = self._index(file).chunks if file.gz else None
            with self._reading(file):
                for pieces, position in scan_file(file.path, file.info.st_size, chunks, matcher, source_matches,
                                                  cancel):
                    progress(done + position)
                    if pieces:
                        yield file, pieces
            if cancel.is_set():
                return
            done += file.info.st_size

    def _missing(self) -> str:
        try:
            os.stat(self.path)
        except OSError as exc:
            return f"cannot read {self.path}: {os_error_text(exc)}"
        return f"cannot read {self.path}"

    # -- reading -----------------------------------------------------------------------------------

    def _backwards(self, files: list[LogFile], index: int, end: int | None, count: int,
                   keep_unfinished: bool) -> list[LogLine]:
        groups: list[tuple[LogFile, list[Piece]]] = []
        found = 0
        while count > found and index >= 0:
            file = files[index]
            with self._reading(file):
                pieces = self._lines_before(file, end, count - found)
            if not keep_unfinished and len(pieces) > count - found:
                pieces = pieces[len(pieces) - (count - found):]
            keep_unfinished = False
            groups.insert(0, (file, pieces))
            found += len(pieces)
            index, end = index - 1, None
        return self._stamp(groups)

    def _forwards(self, files: list[LogFile], index: int, start: int, count: int, skip_first: bool) -> list[LogLine]:
        groups: list[tuple[LogFile, list[Piece]]] = []
        found = 0
        while count > found and index < len(files):
            file = files[index]
            with self._reading(file):
                pieces = self._lines_after(file, start, count - found + skip_first)
            if skip_first:
                pieces = pieces[1:]  # the line itself
            groups.append((file, pieces))
            found += len(pieces)
            index, start, skip_first = index + 1, 0, False
        return self._stamp(groups)

    def _lines_before(self, file: LogFile, end: int | None, count: int) -> list[Piece]:
        """Up to ``count`` complete lines before ``end`` (None: the end of the file) and the unfinished
        piece between the last newline and ``end``."""
        if file.gz:
            return _gzip_backward(self._index(file), file.path, end, count)
        size = file.info.st_size if end is None else min(end, file.info.st_size)
        with _opened(file.path) as fd:
            return lines_backward(fd, size, count)

    def _lines_after(self, file: LogFile, start: int, count: int) -> list[Piece]:
        if file.gz:
            blocks = (data for _, data, _ in self._index(file).chunks(file.path, start, BLOCK))
            return lines_forward(blocks, start, count)
        with _opened(file.path) as fd:
            return lines_forward(blocks_forward(fd, start, file.info.st_size), start, count)

    def _read_whole(self, file: LogFile, offset: int, limit: int) -> tuple[bytes, int]:
        """The line at ``offset``: its first ``limit`` bytes, and how many more there are before its newline."""
        if file.gz:
            return _whole((data for _, data, _ in self._index(file).chunks(file.path, offset)), limit)
        with _opened(file.path) as fd:
            return _whole(blocks_forward(fd, offset, file.info.st_size), limit)

    def _index(self, file: LogFile) -> GzipIndex:
        """The checkpoints of a .gz file, kept while it is unchanged (same inode, mtime and size)."""
        key = identity(file.info)
        with self._lock:
            index = self._indexes.pop(file.path, None)
            if index is None or index.key != key:
                index = GzipIndex(key)
            self._indexes[file.path] = index
            while len(self._indexes) > CACHED_GZIP:
                self._indexes.popitem(last=False)
            return index

    @contextlib.contextmanager
    def _reading(self, file: LogFile) -> Iterator[None]:
        """Turns the file's I/O and format errors into PagerError."""
        try:
            yield
        except ChangedError:
            raise PagerError(f"{file.name} changed while it was read") from None
        except GzipError as exc:
            raise PagerError(f"cannot read {file.name}: not gzip data ({exc})") from None
        except OSError as exc:
            raise PagerError(f"cannot read {file.name}: {os_error_text(exc)}") from None

    def _stamp(self, groups: list[tuple[LogFile, list[Piece]]]) -> list[LogLine]:
        """LogLines, oldest first, through one Stamper so a stack trace takes the time of its error."""
        stamper = Stamper(self.source, self.clock)
        now = self.clock()
        return [stamper.line(p.text(), now, path=file.path, offset=p.offset, cut=p.cut)
                for file, pieces in groups for p in pieces]


class _Progress:
    """Passes ``(done, total)`` on every PROGRESS_BYTES or PROGRESS_SECONDS, whichever comes first."""

    def __init__(self, report: Callable[[int, int], None] | None, total: int) -> None:
        self.report = report
        self.total = total
        self.reported = 0
        self.at = time.monotonic()

    def __call__(self, done: int, final: bool = False) -> None:
        if self.report is None:
            return
        now = time.monotonic()
        if final or done - self.reported >= PROGRESS_BYTES or now - self.at >= PROGRESS_SECONDS:
            self.report(done, self.total)
            self.reported, self.at = done, now


def _gzip_backward(index: GzipIndex, path: str, end: int | None, count: int) -> list[Piece]:
    """What ``lines_backward`` gives, for a .gz file: decompress from the nearest checkpoint before ``end``,
    keeping a ring of the last lines; go back one checkpoint more while that leaves too few lines."""
    candidates = [c for c in index.checkpoints if end is None or c.out_offset < end] or index.checkpoints[:1]
    for checkpoint in reversed(candidates):
        splitter = Splitter(checkpoint.out_offset)
        ring: deque[Piece] = deque(maxlen=count)
        for offset, data, _ in index.chunks(path, checkpoint.out_offset):
            if end is not None and offset + len(data) >= end:
                ring.extend(splitter.feed(data[:end - offset], keep=count))
                break
            ring.extend(splitter.feed(data, keep=count))
        # a checkpoint falls mid-line: its first "line" is only the end of one
        if checkpoint.out_offset == 0 or splitter.lines > count:
            return list(ring) + splitter.finish()
    return []


def _whole(blocks: Iterator[bytes], limit: int) -> tuple[bytes, int]:
    kept: list[bytes] = []
    size = beyond = 0
    for block in blocks:
        newline = block.find(b"\n")
        if newline >= 0:
            block = block[:newline]
        take = block[:max(0, limit - size)]
        kept.append(take)
        size += len(take)
        beyond += len(block) - len(take)
        if newline >= 0:
            break
    return b"".join(kept), beyond


def _same_line(data: bytes, line: LogLine) -> bool:
    """Whether ``data`` (the line now on disk) starts with what ``line`` showed of it."""
    head = data[:MAX_LINE]
    return Piece(head, line.offset, 1 if len(data) > MAX_LINE or line.cut else 0).text() == line.text


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _regular(path: str, current: os.stat_result | None) -> bool:
    """A regular file, and not the current file under another name (a hard link)."""
    info = _stat(path)
    if info is None or not stat.S_ISREG(info.st_mode):
        return False
    return current is None or (info.st_dev, info.st_ino) != (current.st_dev, current.st_ino)


@contextlib.contextmanager
def _opened(path: str) -> Iterator[int]:
    # O_NONBLOCK: a FIFO put where the log was must not hang the worker
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield fd
    finally:
        os.close(fd)


