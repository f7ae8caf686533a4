"""The engine's rhythm: timeouts, no overlapping polls, capped backoff, recovery, bounded history.

These use small Source subclasses written here, because what is under test is the engine's scheduling,
not an adapter (the adapters are tested against real servers in test_adapter_*.py).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from backends.adapters.base import Source
from backends.config import Config, SourceSpec, Thresholds
from backends.engine import BACKOFF_CAP, Engine, backoff_delay
from backends.model import CheckReading, State


def make_config(*specs: SourceSpec, history: int = 5) -> Config:
    return Config(origin="test", refresh=0.2, theme="dark", keys={}, thresholds=Thresholds(),
                  history=history, sources=specs)


def spec(name: str, interval: float = 0.2, timeout: float = 0.1) -> SourceSpec:
    return SourceSpec("services", name, "test", interval, timeout, {})


class Scripted(Source):
    """Answers with whatever its script says next: a state, 'hang', 'raise' or 'block' (a stuck thread)."""

    def __init__(self, spec, thresholds, script):
        super().__init__(spec, thresholds)
        self.script = list(script)
        self.active = 0
        self.max_active = 0
        self.calls = 0
        self.release = threading.Event()

    async def poll(self):
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            step = self.script.pop(0) if self.script else State.OK
            if step == "hang":
                await asyncio.sleep(3600)
            if step == "raise":
                raise RuntimeError("adapter bug\nwith a second line")
            if step == "block":
                await self.in_thread(self.release.wait, 5)
            value = float(self.calls)
            return [CheckReading(key=self.name, source=self.name, state=step if isinstance(step, State) else State.OK,
                                 reason=f"call {self.calls}", ts=time.time(), kind="test", latency_ms=value)]
        finally:
            self.active -= 1


def engine_with(*sources_and_scripts, history: int = 5) -> tuple[Engine, dict[str, Scripted]]:
    built: dict[str, Scripted] = {}

    def factory(s: SourceSpec, config: Config) -> Source:
        built[s.name] = Scripted(s, config.thresholds, dict(sources_and_scripts)[s.name])
        return built[s.name]

    specs = [spec(name) for name, _ in sources_and_scripts]
    engine = Engine(make_config(*specs, history=history), source_factory=factory)
    engine.build()
    return engine, built


def test_backoff_doubles_and_is_capped():
    assert backoff_delay(2, 0) == 2
    assert [backoff_delay(2, n) for n in (1, 2, 3)] == [4, 8, 16]
    assert backoff_delay(2, 20) == BACKOFF_CAP
    assert backoff_delay(120, 5) == 120  # never shorter than the interval itself


async def test_a_hung_poll_times_out_as_unknown_with_its_reason():
    engine, _ = engine_with(("svc", ["hang"]))
    update = await engine.poll_once("svc")
    (reading,) = update.readings
    assert reading.state is State.UNKNOWN
    assert reading.reason == "no answer within 100ms (poll timed out)"
    assert engine.health["svc"].failures == 1
    assert engine.health["svc"].next_delay == pytest.approx(0.4)


async def test_an_adapter_bug_becomes_one_line_and_the_next_poll_recovers():
    engine, _ = engine_with(("svc", ["raise", State.OK]))
    first = await engine.poll_once("svc")
    assert first.readings[0].reason == "poll failed: RuntimeError: adapter bug with a second line"
    second = await engine.poll_once("svc")
    assert second.readings[0].state is State.OK
    assert engine.health["svc"].failures == 0 and engine.health["svc"].next_delay == 0.2


async def test_polls_of_one_source_never_overlap():
    engine, built = engine_with(("svc", []))
    await asyncio.gather(*(engine.poll_once("svc") for _ in range(5)))
    assert built["svc"].calls == 5 and built["svc"].max_active == 1


async def test_a_stuck_thread_is_not_polled_beside():
    engine, built = engine_with(("svc", ["block", "block"]))
    first = await engine.poll_once("svc")
    assert first.readings[0].reason.startswith("no answer within")
    second = await engine.poll_once("svc")
    assert "still running" in second.readings[0].reason
    built["svc"].release.set()
    await asyncio.sleep(0.05)
    third = await engine.poll_once("svc")
    assert third.readings[0].state is State.OK


async def test_a_hung_source_does_not_delay_another():
    engine, built = engine_with(("slow", ["hang"] * 100), ("fast", []))
    await engine.start()
    await asyncio.sleep(1.0)
    await engine.stop()
    # fast polls every 0.2 s; slow times out (0.1 s and the engine's grace) and backs off
    assert built["fast"].calls >= 4
    assert built["slow"].calls <= 3
    assert engine.health["slow"].failures >= built["slow"].calls - 1  # the last may be cut off by stop()


async def test_failing_source_backs_off_then_recovers_by_itself():
    engine, built = engine_with(("svc", [State.UNKNOWN, State.UNKNOWN, State.OK]))
    await engine.start()
    await asyncio.sleep(0.2 + 0.4 + 0.8 + 0.3)
    await engine.stop()
    assert engine.readings["svc"].state is State.OK
    assert engine.health["svc"].failures == 0
    assert built["svc"].calls <= 5


async def test_history_is_bounded():
    engine, _ = engine_with(("svc", []), history=5)
    for _ in range(12):
        await engine.poll_once("svc")
    assert [v for _, v in engine.history["svc"]] == [8.0, 9.0, 10.0, 11.0, 12.0]


async def test_subscribers_get_every_update_and_can_leave():
    engine, _ = engine_with(("svc", []))
    seen = []
    leave = engine.subscribe(seen.append)
    await engine.poll_once("svc")
    leave()
    await engine.poll_once("svc")
    assert [u.source for u in seen] == ["svc"]


async def test_refresh_now_polls_without_waiting_for_the_interval():
    engine, built = engine_with(("svc", []))
    await engine.start()
    await asyncio.sleep(0.05)
    before = built["svc"].calls
    engine.refresh_now()
    await asyncio.sleep(0.05)
    await engine.stop()
    assert built["svc"].calls == before + 1


async def test_a_broken_adapter_is_a_row_not_a_crash():
    def factory(s, config):
        raise ImportError("no module named pyfoo")

    engine = Engine(make_config(spec("odd")), source_factory=factory)
    (update,) = await engine.sweep()
    assert update.readings[0].state is State.UNKNOWN
    assert "cannot start the test adapter: ImportError: no module named pyfoo" in update.readings[0].reason


async def test_keys_a_source_stops_reporting_are_dropped_after_a_good_poll():
    engine, built = engine_with(("svc", []))
    await engine.poll_once("svc")
    engine.readings["svc:extra"] = engine.readings["svc"]
    engine._keys_by_source["svc"].add("svc:extra")
    await engine.poll_once("svc")
    assert "svc:extra" not in engine.readings


class Busy(Source):
    """A log that is always behind: each poll takes ``cost`` seconds, and says more is waiting."""

    def __init__(self, spec, thresholds, cost):
        super().__init__(spec, thresholds)
        self.cost = cost
        self.starts: list[float] = []

    def hurry(self) -> bool:
        return True

    async def poll(self):
        self.starts.append(time.monotonic())
        await asyncio.sleep(self.cost)
        return [CheckReading(key=self.name, source=self.name, state=State.OK, reason="busy", ts=time.time())]


async def busy_gaps(cost: float) -> list[float]:
    built = {}

    def factory(s: SourceSpec, config: Config) -> Source:
        built[s.name] = Busy(s, config.thresholds, cost)
        return built[s.name]

    engine = Engine(make_config(spec("log", interval=5.0, timeout=1.0)), source_factory=factory)
    await engine.start()
    await asyncio.sleep(0.8)
    await engine.stop()
    starts = built["log"].starts
    return [b - a for a, b in zip(starts, starts[1:])]


async def test_a_busy_source_is_polled_every_follow_interval_not_every_refresh():
    gaps = await busy_gaps(0.01)
    assert len(gaps) >= 4 and all(0.09 <= gap < 0.3 for gap in gaps), gaps


async def test_a_source_behind_reads_on_at_once_when_a_poll_takes_longer_than_the_follow_interval():
    gaps = await busy_gaps(0.15)
    assert len(gaps) >= 3 and all(0.15 <= gap < 0.22 for gap in gaps), gaps  # not 0.15 + 0.1


async def test_a_wake_from_another_thread_polls_soon_but_not_per_wake():
    engine, built = engine_with(("svc", []))
    for name in engine.sources:  # a long interval: only wakes can bring polls
        engine.health[name].interval = 60.0
    built["svc"].interval = 60.0
    await engine.start()
    await asyncio.sleep(0.05)
    before = built["svc"].calls
    source = engine.sources["svc"]
    threads = [threading.Thread(target=lambda: [source.wake() for _ in range(200)]) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    await asyncio.sleep(0.35)
    await engine.stop()
    assert 1 <= built["svc"].calls - before <= 4  # 400 wakes in a burst: a poll or a few, spaced 0.1 s apart
