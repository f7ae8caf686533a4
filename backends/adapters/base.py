"""The one small interface every adapter implements."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any, Callable, TypeVar

from ..actions import Action, ActionResult, Emit
from ..config import SourceSpec, Thresholds, log_source_spec
from ..model import CheckReading, Reading, State

T = TypeVar("T")

# Blocking libraries (psutil, file reads) run here, off the event loop.
_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="lakedeck-poll")


def shutdown_threads() -> None:
    """Let idle poll threads end; a thread stuck in a call keeps running (it cannot be killed)."""
    _EXECUTOR.shutdown(wait=False, cancel_futures=True)


class StillRunning(Exception):
    """The previous blocking poll of this source has not returned yet."""


class Source:
    """One configured thing to watch.

    ``poll()`` never raises for a problem with the watched thing: it returns readings whose state and
    reason say what went wrong. The engine still guards against bugs and hangs with a timeout.
    """

    def __init__(self, spec: SourceSpec, thresholds: Thresholds, clock: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self.name = spec.name
        self.kind = spec.kind
        self.interval = spec.interval
        self.timeout = spec.timeout
        self.thresholds = thresholds
        self.clock = clock
        self._blocking: concurrent.futures.Future[Any] | None = None
        # Set by the engine: any thread may call it to have this source polled soon (a stream with new lines).
        self.wake: Callable[[], None] = lambda: None

    async def poll(self) -> list[Reading]:
        raise NotImplementedError

    def hurry(self) -> bool:
        """True when more is probably waiting (a log that was busy at the last poll): poll again soon."""
        return False

    def failed(self, reason: str, state: State = State.UNKNOWN) -> list[Reading]:
        """What to show when a poll itself failed (timed out, or a bug raised)."""
        return [CheckReading(key=self.name, source=self.name, state=state, reason=reason, ts=self.clock(),
                             kind=self.kind, target=self.describe())]

    def describe(self) -> str:
        """The target in a few words, for the Services pane and `lakedeck check`."""
        return self.kind

    def log_spec(self) -> SourceSpec | None:
        """A ``logs`` source that follows this target's own logs (what `l` opens), or None when it has none.
        A service whose config names a source in ``logs:`` uses that one instead."""
        return None

    def log_spec_of(self, kind: str, **options: Any) -> SourceSpec:
        """The spec of this target's logs: named after it, polled as often as it is."""
        return log_source_spec(kind, f"{self.name} logs", self.interval, self.timeout, **options)

    async def close(self) -> None:
        """Release connections; called once when the engine stops."""

    def actions(self) -> list[Action]:
        """What this adapter can do to its target, each with its tier and exact command.

        The engine adds the config's own ``actions:`` and applies tier overrides (upward only).
        """
        return []

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        """Run one action, streaming output lines to ``emit``. Commands and HTTP requests run the same way
        for every adapter; an adapter with its own API (supervisord's XML-RPC) overrides this."""
        from ..runner import run_argv, run_request

        if action.argv:
            return await run_argv(action, emit)
        if action.request is not None:
            return await run_request(action, emit)
        return ActionResult(action, False, None, error=f"the {self.kind} adapter cannot run {action.id!r}")

    async def preview(self, action: Action) -> list[str] | None:
        """For a destructive action, what it would affect (a dry run), one line per item; None when the
        action has no dry run (a command from the config)."""
        return None

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call in a worker thread, never two at once for this source.

        A thread cannot be cancelled, so when a previous call is still running (it outlived its timeout),
        this raises StillRunning instead of starting a second one beside it.
        """
        if self._blocking is not None and not self._blocking.done():
            raise StillRunning(f"the previous poll of {self.name} is still running")
        self._blocking = _EXECUTOR.submit(fn, *args)
        return await asyncio.wrap_future(self._blocking)


class BrokenSource(Source):
    """Stands in for a source whose adapter could not be created, so it shows as a row with the reason."""

    def __init__(self, spec: SourceSpec, thresholds: Thresholds, reason: str) -> None:
        super().__init__(spec, thresholds)
        self.reason = reason

    async def poll(self) -> list[Reading]:
        return self.failed(self.reason)
