"""Any command that streams log lines, e.g. ``kubectl logs -f deploy/x``: its stdout, line by line."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from .log_stream import StreamSource


class LogCommand(StreamSource):
    missing_hint = "check the command's first word, or give its full path"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.command: list[str] = list(options["command"])
        self._cwd: str | None = options.get("cwd")
        self._env: Mapping[str, str] = options.get("env") or {}

    def describe(self) -> str:
        return shlex.join(self.command)

    async def argv(self) -> list[str]:
        return self.command

    def cwd(self) -> str | None:
        return self._cwd

    def env(self) -> Mapping[str, str] | None:
        return self._env
