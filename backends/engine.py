"""The engine: one poll loop per source, latest readings, bounded history, subscribers.

Runs in whatever asyncio loop it is started in (Textual's in the console, ``asyncio.run`` headless).
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Callable, Iterable

from .adapters import build_source
from .adapters.base import BrokenSource, Source, StillRunning
from .config import Config, SourceSpec
from .durations import format_duration
from .model import Reading, SourceHealth, State, Update
from .text import one_line

BACKOFF_CAP = 60.0
Subscriber = Callable[[Update], None]
SourceFactory = Callable[[SourceSpec, Config], Source]


def backoff_delay(interval: float, failures: int, cap: float = BACKOFF_CAP) -> float:
    """The wait before the next poll of a source that failed ``failures`` times in a row."""
    if failures <= 0:
        return interval
    return min(interval * (2 ** failures), max(interval, cap))


class Engine:
    def __init__(self, config: Config, clock: Callable[[], float] = time.time,
                 source_factory: SourceFactory = build_source) -> None:
        self.config = config
        self.clock = clock
        self._factory = source_factory
        self.sources: dict[str, Source] = {}
        self.readings: dict[str, Reading] = {}
        self.history: dict[str, collections.deque[tuple[float, float]]] = {}
        self.health: dict[str, SourceHealth] = {
            spec.name: SourceHealth(spec.name, spec.kind, spec.interval) for spec in config.sources
        }
        self._keys_by_source: dict[str, set[str]] = {spec.name: set() for spec in config.sources}
        self._subscribers: list[Subscriber] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[str, asyncio.Event] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    def build(self) -> None:
        """Create the adapters. Imports each kind's library, so call it off the first paint."""
        for spec in self.config.sources:
            if spec.name in self.sources:
                continue
            try:
                self.sources[spec.name] = self._factory(spec, self.config)
            except Exception as exc:  # a broken adapter is one red row, not a dead console
                reason = one_line(f"cannot start the {spec.kind} adapter: {type(exc).__name__}: {exc}")
                self.sources[spec.name] = BrokenSource(spec, self.config.thresholds, reason)
            self._locks[spec.name] = asyncio.Lock()

    async def start(self) -> None:
        """Build the sources (in a thread: adapter imports are slow) and start one loop per source."""
        await asyncio.to_thread(self.build)
        for name in self.sources:
            self._wake[name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._loop(name), name=f"poll:{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(s.close() for s in self.sources.values()), return_exceptions=True)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def refresh_now(self) -> None:
        """Poll every source as soon as its current poll (if any) has finished."""
        for event in self._wake.values():
            event.set()

    async def sweep(self) -> list[Update]:
        """One poll of every source, all at once: what `lakedeck check` runs."""
        if not self.sources:
            await asyncio.to_thread(self.build)
        return list(await asyncio.gather(*(self.poll_once(name) for name in self.sources)))

    # -- polling -----------------------------------------------------------------------------------

    async def _loop(self, name: str) -> None:
        wake = self._wake[name]
        while True:
            wake.clear()
            await self.poll_once(name)
            delay = self.health[name].next_delay
            try:
                await asyncio.wait_for(wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def poll_once(self, name: str) -> Update:
        """Poll one source with its timeout; a source's polls never overlap."""
        source = self.sources[name]
        health = self.health[name]
        async with self._locks[name]:
            started = self.clock()
            failure = ""
            try:
                readings = await asyncio.wait_for(source.poll(), source.timeout)
            except asyncio.TimeoutError:
                failure = f"no answer within {format_duration(source.timeout)} (poll timed out)"
            except StillRunning as exc:
                failure = f"{exc} (hung for over {format_duration(self.clock() - (health.last_poll or started))})"
            except Exception as exc:  # an adapter bug must not stop the loop or the console
                failure = one_line(f"poll failed: {type(exc).__name__}: {exc}")
            if failure:
                readings = source.failed(failure)
            health.polls += 1
            health.last_poll = started
            if failure or (readings and all(r.state is State.UNKNOWN for r in readings)):
                health.failures += 1
                health.last_error = failure or readings[0].reason
            else:
                health.failures = 0
                health.last_ok = started
                health.last_error = ""
            health.next_delay = backoff_delay(source.interval, health.failures)
            update = Update(name, tuple(readings), health)
            self._record(name, readings, replace=not failure)
        for subscriber in list(self._subscribers):
            subscriber(update)
        return update

    def _record(self, name: str, readings: Iterable[Reading], replace: bool) -> None:
        """Keep the latest reading per key and a bounded history of values.

        After a failed poll the source's earlier readings stay (they will look stale);
        after a good one, keys the source no longer reports are dropped.
        """
        keys = self._keys_by_source[name]
        fresh = set()
        for reading in readings:
            fresh.add(reading.key)
            self.readings[reading.key] = reading
            value = reading.value
            if value is not None:
                ring = self.history.get(reading.key)
                if ring is None:
                    ring = self.history[reading.key] = collections.deque(maxlen=self.config.history)
                ring.append((reading.ts, value))
        if replace:
            for gone in keys - fresh:
                self.readings.pop(gone, None)
                self.history.pop(gone, None)
            keys.clear()
        keys |= fresh

    def worst(self) -> State:
        return max((r.state for r in self.readings.values()), default=State.OK)
