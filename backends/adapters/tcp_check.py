"""A TCP port: does it accept a connection, and how fast."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..model import CheckReading, Reading, State
from .base import Source
from .text import connect_error_reason, one_line, seconds

CLOSE_GRACE = 0.5


class TcpCheck(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.host: str = self.spec.options["host"]
        self.port: int = self.spec.options["port"]
        self.warn_latency: float | None = self.spec.options["warn_latency"]

    def describe(self) -> str:
        return f"{self.host}:{self.port}"

    async def poll(self) -> list[Reading]:
        limit = self.timeout * 0.9
        started = time.perf_counter()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), limit)
        except asyncio.TimeoutError:
            return [self._reading(State.CRITICAL, f"no answer within {seconds(limit)} from {self.describe()} "
                                                  "— host down or port filtered?")]
        except OSError as exc:
            return [self._reading(State.CRITICAL, connect_error_reason(exc, self.host, self.port))]
        latency_ms = (time.perf_counter() - started) * 1000
        await self._hang_up(writer, min(CLOSE_GRACE, max(0.01, limit - latency_ms / 1000)))
        took = seconds(latency_ms / 1000)
        details = (("connect", took),)
        if self.warn_latency is not None and latency_ms / 1000 > self.warn_latency:
            reason = f"slow: connected to {self.describe()} in {took} (warn above {seconds(self.warn_latency)})"
            return [self._reading(State.WARN, reason, latency_ms, details)]
        return [self._reading(State.OK, f"port {self.port} open", latency_ms, details)]

    @staticmethod
    async def _hang_up(writer: asyncio.StreamWriter, grace: float) -> None:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), grace)
        except (OSError, asyncio.TimeoutError):
            pass  # the port answered; how the peer takes our goodbye is not the check's business

    def _reading(self, state: State, reason: str, latency_ms: float | None = None,
                 details: tuple[tuple[str, str], ...] = ()) -> CheckReading:
        return CheckReading(key=self.name, source=self.name, state=state, reason=one_line(reason), ts=self.clock(),
                            kind="tcp", target=self.describe(), latency_ms=latency_ms, details=details)
