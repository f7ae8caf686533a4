"""Any command that streams log lines, e.g. ``kubectl logs -f deploy/x``: its stdout, line by line."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..log_reading import Piece
from ..model import LogLine
from .log_stream import StreamSource


class LogCommand(StreamSource):
    missing_hint = "check the command's first word, or give its full path"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.command: list[str] = list(options["command"])
        self._cwd: str | None = options.get("cwd")
        self._env: Mapping[str, str] = options.get("env") or {}
        self.resume_flag: str | None = options.get("resume_since")
        self._newest: float | None = None  # the time of the newest line shown (written by the reader thread)
        self._resumed_from: float | None = None  # in a resumed run: lines up to this time were shown already

    def describe(self) -> str:
        return shlex.join(self.command)

    async def argv(self) -> list[str]:
        if self.resume_flag and self._newest is not None:
            self._resumed_from = self._newest
            since = datetime.fromtimestamp(self._newest, timezone.utc).isoformat(timespec="microseconds")
            resumed = [arg for arg in self.command if not arg.startswith("--tail")]
            return [*resumed, f"{self.resume_flag}={since.replace('+00:00', 'Z')}"]
        return self.command

    def to_lines(self, piece: Piece, read_at: float) -> list[LogLine]:
        lines = super().to_lines(piece, read_at)
        if not self.resume_flag:
            return lines
        kept = [line for line in lines if self._resumed_from is None or line.ts > self._resumed_from]
        for line in kept:
            self._newest = line.ts if self._newest is None else max(self._newest, line.ts)
        return kept

    def cwd(self) -> str | None:
        return self._cwd

    def env(self) -> Mapping[str, str] | None:
        return self._env
