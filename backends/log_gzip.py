"""Read a rotated ``.gz`` log from any decompressed offset without decompressing it all again.

A gzip stream cannot be read backwards or entered in the middle, so the first pass over a file leaves
checkpoints behind: copies of the zlib state every few MiB of output, as zlib's ``zran.c`` does. Later reads
start at the nearest checkpoint. Checkpoints are bounded per file (their spacing doubles when there are too
many), and the decompressed size is remembered once a pass reaches the end.
"""

from __future__ import annotations

import os
import threading
import zlib
from dataclasses import dataclass
from typing import Any, Iterator

IN_BLOCK = 256 * 1024  # compressed bytes per read
OUT_CHUNK = 1024 * 1024  # decompressed bytes per chunk, at most
SPACING = 16 * 1024 * 1024  # decompressed bytes between checkpoints, at first
MAX_CHECKPOINTS = 64  # each holds a zlib state (~45 KB with its window)
GZIP = 31  # zlib wbits for a gzip header and trailer


class GzipError(Exception):
    """The file is not gzip data that zlib can read."""


@dataclass(frozen=True)
class Checkpoint:
    out_offset: int  # decompressed offset where the stream resumes
    in_offset: int  # file offset of the first compressed byte not yet fed to ``decompressor``
    decompressor: Any  # a zlib decompress object; always copied before use, never fed itself


def identity(info: os.stat_result) -> tuple[int, int, int, int]:
    """What must stay the same for an index to still describe the file."""
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size


class GzipIndex:
    """Checkpoints and decompressed size of one ``.gz`` file, as it was when ``key`` was taken."""

    def __init__(self, key: tuple[int, int, int, int]) -> None:
        self.key = key
        self.checkpoints = [Checkpoint(0, 0, zlib.decompressobj(GZIP))]
        self.spacing = SPACING
        self.size: int | None = None  # decompressed bytes, once a pass has reached the end
        self._lock = threading.Lock()  # two workers may stream the same file

    def chunks(self, path: str, start: int = 0, chunk: int | None = None) -> Iterator[tuple[int, bytes, int]]:
        """``(offset, data, compressed bytes consumed)`` from decompressed ``start`` to the end of the file,
        in chunks of at most ``chunk`` (OUT_CHUNK) bytes."""
        chunk = chunk or OUT_CHUNK
        checkpoint = max((c for c in self.checkpoints if c.out_offset <= start), key=lambda c: c.out_offset)
        for offset, data, consumed in self._stream(path, checkpoint, chunk):
            if offset + len(data) <= start:
                continue
            if offset < start:
                data, offset = data[start - offset:], start
            yield offset, data, consumed

    def _stream(self, path: str, checkpoint: Checkpoint, chunk: int) -> Iterator[tuple[int, bytes, int]]:
        with open(path, "rb") as handle:
            handle.seek(checkpoint.in_offset)
            decompressor = checkpoint.decompressor.copy()
            out_offset = checkpoint.out_offset
            pending, exhausted = b"", False
            while True:
                if not pending and not exhausted:
                    pending = handle.read(IN_BLOCK)
                    exhausted = not pending  # then one more call drains what zlib still holds
                try:
                    data = decompressor.decompress(pending, chunk)
                except zlib.error as exc:
                    if out_offset == 0:
                        raise GzipError(str(exc)) from exc
                    break  # padding or garbage after the last member, as gzip(1) tolerates
                if decompressor.eof:  # a member ended; another may follow (concatenated gzip)
                    pending, decompressor = decompressor.unused_data, zlib.decompressobj(GZIP)
                else:
                    pending = decompressor.unconsumed_tail
                if not data:
                    if exhausted and not pending:
                        break
                    continue
                yield out_offset, data, handle.tell() - len(pending)
                out_offset += len(data)
                self._remember(out_offset, handle.tell() - len(pending), decompressor)
            self.size = out_offset

    def _remember(self, out_offset: int, in_offset: int, decompressor: Any) -> None:
        """A checkpoint here when the last one is far enough behind; the list stays sorted."""
        if out_offset < self.checkpoints[-1].out_offset + self.spacing:
            return
        with self._lock:
            if out_offset < self.checkpoints[-1].out_offset + self.spacing:
                return
            checkpoints = self.checkpoints + [Checkpoint(out_offset, in_offset, decompressor.copy())]
            if len(checkpoints) > MAX_CHECKPOINTS:
                checkpoints, self.spacing = checkpoints[::2], self.spacing * 2
            self.checkpoints = checkpoints  # replaced, never changed in place: readers hold a consistent list
