"""The engine: one poll loop per source, latest readings, bounded history, subscribers.

Runs in whatever asyncio loop it is started in (Textual's in the console, ``asyncio.run`` headless).
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from . import interrupts, locks
from .actions import Action, ActionRefused, ActionResult, Emit, Tier, merge
from .adapters import build_source
from .audit import AuditLog, AuditUnwritable, default_path, who
from .adapters.base import BrokenSource, Source, StillRunning
if TYPE_CHECKING:
    from .store import HistoryStore
from .config import Config, SourceSpec
from .durations import format_duration
from .model import Reading, SourceHealth, State, Update
from .redact import option_secrets
from .text import one_line

BACKOFF_CAP = 60.0
STOP_GRACE = 0.3  # an action still running when the engine stops: SIGTERM, then SIGKILL this much later
CLOSED = "interrupted: lakedeck was closed while it ran"
# Adapters give up at 90% of their timeout and say why; the engine's own deadline is a backstop for a
# bug or a hang, late enough that a loaded machine does not beat the adapter's clearer reason.
BACKSTOP_GRACE = 0.25
# A source with more waiting (a busy log) is polled again this soon, and a source that wakes its loop
# (a streaming log) is not polled more often than this: busy sources cost per screen update, not per line.
FOLLOW_INTERVAL = 0.1
Subscriber = Callable[[Update], None]
SourceFactory = Callable[[SourceSpec, Config], Source]


@dataclass
class RunningAction:
    """An action under way: what an interruption needs to write its audit line."""

    action: Action
    started: float  # time.monotonic()
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))
    interrupted: str = ""  # set once its `failed` line has been written for an interruption
    task: asyncio.Task[object] | None = None  # the task awaiting it
    children_before: frozenset[int] = frozenset()  # this process's children when it started (its own come after)


def backoff_delay(interval: float, failures: int, cap: float = BACKOFF_CAP) -> float:
    """The wait before the next poll of a source that failed ``failures`` times in a row."""
    if failures <= 0:
        return interval
    return min(interval * (2 ** failures), max(interval, cap))


class Engine:
    def __init__(self, config: Config, clock: Callable[[], float] = time.time,
                 source_factory: SourceFactory = build_source, store: HistoryStore | None = None) -> None:
        self.config = config
        self.store = store  # history on disk: every poll's readings are handed to it (it writes in its own thread)
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
        self._attached: dict[str, tuple[SourceSpec, asyncio.Task[None]]] = {}
        self._epoch = 0.0  # the loop time polls are aligned to
        self._wake: dict[str, asyncio.Event] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.read_only = config.read_only
        self.audit = AuditLog(Path(config.audit_log) if config.audit_log else default_path(),
                              option_secrets(spec.options for spec in config.sources) | set(config.secrets))
        self.transitions: dict[str, str] = {}  # target -> "restarting"... until a poll after the action
        self._lock_dir: locks.LockDir | None = None
        self._active: dict[str, RunningAction] = {}  # target -> the action running on it (in this process)
        self._settling: dict[str, set[str]] = {}  # source -> targets whose transition its next poll ends

    # -- lifecycle ---------------------------------------------------------------------------------

    def build(self) -> None:
        """Create the adapters. Imports each kind's library, so call it off the first paint."""
        for spec in self.config.sources:
            self._build_one(spec)

    def _build_one(self, spec: SourceSpec) -> Source:
        if spec.name not in self.sources:
            try:
                self.sources[spec.name] = self._factory(spec, self.config)
            except Exception as exc:  # a broken adapter is one red row, not a dead console
                reason = one_line(f"cannot start the {spec.kind} adapter: {type(exc).__name__}: {exc}")
                self.sources[spec.name] = BrokenSource(spec, self.config.thresholds, reason)
            watch = getattr(self.sources[spec.name], "watch", None)
            if watch is not None:  # the rules source judges every other source's latest readings
                watch(self.readings)
            self._locks[spec.name] = asyncio.Lock()
        return self.sources[spec.name]

    async def start(self) -> None:
        """Build each kind of source in a thread (adapter imports are slow) and start its loops as soon as
        it is built: a tcp check does not wait for psutil to load for the host adapter."""
        self._epoch = asyncio.get_running_loop().time()
        by_kind: dict[tuple[str, str], list[SourceSpec]] = {}
        for spec in self.config.sources:
            by_kind.setdefault((spec.section, spec.kind), []).append(spec)

        async def start_kind(specs: list[SourceSpec]) -> None:
            await asyncio.to_thread(lambda: [self._build_one(spec) for spec in specs])
            for spec in specs:
                self._wake[spec.name] = asyncio.Event()
                self.sources[spec.name].wake = self._waker(self._wake[spec.name])
                self._tasks.append(asyncio.create_task(self._loop(spec.name), name=f"poll:{spec.name}"))

        await asyncio.gather(*(start_kind(specs) for specs in by_kind.values()))

    async def attach(self, spec: SourceSpec) -> None:
        """Watch a source the config does not name (a service's logs, opened with `l`) until ``detach``."""
        if spec.name in self.sources:
            return
        self.health[spec.name] = SourceHealth(spec.name, spec.kind, spec.interval)
        self._keys_by_source[spec.name] = set()
        source = await asyncio.to_thread(self._build_one, spec)
        self._wake[spec.name] = asyncio.Event()
        source.wake = self._waker(self._wake[spec.name])
        task = asyncio.create_task(self._loop(spec.name), name=f"poll:{spec.name}")
        self._attached[spec.name] = (spec, task)

    async def detach(self, name: str) -> None:
        """Stop watching an attached source and forget what it reported."""
        spec_task = self._attached.pop(name, None)
        if spec_task is None:
            return
        spec_task[1].cancel()
        await asyncio.gather(spec_task[1], return_exceptions=True)
        source = self.sources.pop(name)
        await source.close()
        for key in self._keys_by_source.pop(name, set()):
            self.readings.pop(key, None)
            self.history.pop(key, None)
        self.health.pop(name, None)
        self._wake.pop(name, None)
        self._locks.pop(name, None)

    async def stop(self) -> None:
        """Stop polling and close the sources. An action still running is ended first: its `failed` line written
        (interrupted: lakedeck was closed), its process groups killed, its task cancelled."""
        await self._end_actions(CLOSED)
        for name in list(self._attached):
            await self.detach(name)
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
        # the rules judge what the others read, so they go last
        judges = [name for name, source in self.sources.items() if hasattr(source, "watch")]
        updates = list(await asyncio.gather(*(self.poll_once(n) for n in self.sources if n not in judges)))
        return updates + [await self.poll_once(name) for name in judges]

    # -- polling -----------------------------------------------------------------------------------

    def _waker(self, event: asyncio.Event) -> Callable[[], None]:
        """A call any thread may make to have a source polled soon, but not sooner than FOLLOW_INTERVAL
        after its previous wake: a stream with new lines costs per screen update, not per line."""
        loop = asyncio.get_running_loop()
        last = [float("-inf")]
        pending: list[asyncio.TimerHandle] = []

        def fire() -> None:
            pending.clear()
            last[0] = loop.time()
            event.set()

        def set_soon() -> None:
            if pending:
                return
            gap = last[0] + FOLLOW_INTERVAL - loop.time()
            if gap > 0:
                pending.append(loop.call_later(gap, fire))
            else:
                fire()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(set_soon)
            except RuntimeError:  # the loop has closed: nothing left to wake
                pass
        return wake

    async def _loop(self, name: str) -> None:
        wake = self._wake[name]
        loop = asyncio.get_running_loop()
        while True:
            wake.clear()
            await self.poll_once(name)
            health = self.health[name]
            delay = health.next_delay
            if delay == health.interval:
                # on the engine's grid: sources with the same interval poll together, and the console
                # draws their answers in one frame instead of one frame each
                delay -= (loop.time() - self._epoch) % delay
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
                readings = await asyncio.wait_for(source.poll(), source.timeout + BACKSTOP_GRACE)
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
            if not failure and source.hurry():  # counted from the poll's start: a source behind reads on at once
                health.next_delay = min(health.next_delay, max(0.0, FOLLOW_INTERVAL - (self.clock() - started)))
            update = Update(name, tuple(readings), health)
            self._record(name, readings, replace=not failure)
            if self.store is not None:
                self.store.record(readings, source=name)
            for target in self._settling.pop(name, ()):  # the first poll after an action shows its real outcome
                self.transitions.pop(target, None)
        self._notify(update)
        return update

    def _notify(self, update: Update) -> None:
        for subscriber in list(self._subscribers):
            subscriber(update)

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
                backfill = getattr(reading, "backfill", ())
                if backfill and len(ring) < len(backfill):
                    self._prepend(ring, backfill)
                ring.append((reading.ts, value))
        if replace:
            for gone in keys - fresh:
                self.readings.pop(gone, None)
                self.history.pop(gone, None)
            keys.clear()
        keys |= fresh

    @staticmethod
    def _prepend(ring: collections.deque[tuple[float, float]], points: Iterable[tuple[float, float]]) -> None:
        """Put earlier points (a range query, the store) before what the ring holds, keeping the newest."""
        first = ring[0][0] if ring else float("inf")
        older = [p for p in points if p[0] < first]
        if older:
            kept = list(ring)
            ring.clear()
            ring.extend(older[-(ring.maxlen or len(older)):])
            ring.extend(kept)

    def seed_history(self, series: dict[str, list[tuple[float, float]]]) -> None:
        """Sparklines full right after a restart: the store's points for each key, before the first poll's."""
        for key, points in series.items():
            ring = self.history.get(key)
            if ring is None:
                ring = self.history[key] = collections.deque(maxlen=self.config.history)
            self._prepend(ring, points)

    # -- actions ---------------------------------------------------------------------------------

    def spec(self, target: str) -> SourceSpec | None:
        if target in self._attached:
            return self._attached[target][0]
        return next((s for s in self.config.sources if s.name == target), None)

    def owner_of(self, target: str) -> str | None:
        """The source behind ``target``: the source itself, or the one that reported the row (a DAG)."""
        if target in self.sources:
            return target
        reading = self.readings.get(target)
        return reading.source if reading is not None else None

    def is_read_only(self, target: str) -> bool:
        spec = self.spec(self.owner_of(target) or target)
        return self.read_only or bool(spec and spec.options.get("read_only"))

    def actions_for(self, target: str, include_refused: bool = False) -> list[Action]:
        """What can be done to ``target`` (a source, or a pipeline row); in read-only mode only ``read``."""
        if target in self.sources:
            return self._offered(target, self.sources[target].actions(), target, include_refused)
        reading = self.readings.get(target)
        source = self.sources.get(reading.source) if reading is not None else None
        if source is None or not hasattr(source, "item_actions"):
            return []
        return self._offered(reading.source, source.item_actions(reading), target, include_refused)

    def item_actions(self, source_name: str, item: object, include_refused: bool = False) -> list[Action]:
        """What can be done to a drill-down item of a pipeline source (a run, a task instance)."""
        source = self.sources.get(source_name)
        if source is None or not hasattr(source, "item_actions"):
            return []
        declared = source.item_actions(item)
        target = declared[0].target if declared else source_name
        return self._offered(source_name, declared, target, include_refused)

    def _offered(self, source_name: str, declared: list[Action], target: str, include_refused: bool) -> list[Action]:
        """The adapter's actions with the config's own added and tiers raised, each run by ``source_name``."""
        spec = self.spec(source_name)
        if spec is None:
            return []
        actions = merge(declared, list(spec.options.get("actions") or ()), target)
        if target != source_name:
            actions = [a if a.source else replace(a, source=source_name) for a in actions]
        if self.is_read_only(source_name) and not include_refused:
            actions = [a for a in actions if a.tier is Tier.READ]
        return sorted(actions, key=lambda a: (a.tier, a.title))

    def find_action(self, target: str, action_id: str) -> Action:
        actions = self.actions_for(target, include_refused=True)
        found = next((a for a in actions if a.id == action_id), None)
        if found is None:
            if target not in self.sources and target not in self.readings:
                raise ActionRefused(f"no source or pipeline named {target!r} (see lakedeck check)")
            offered = ", ".join(a.id for a in actions) or "none"
            raise ActionRefused(f"{target} has no action {action_id!r} (it has: {offered})")
        return found

    @property
    def lock_dir(self) -> locks.LockDir:
        """Where the targets' locks are (made on first use: it may create /run/lakedeck)."""
        if self._lock_dir is None:
            self._lock_dir = locks.resolve(self.config.locks)
        return self._lock_dir

    def _lock_targets(self, action: Action) -> list[str]:
        """The targets ``action`` acts on: its own, and the service a restore stops and starts around it."""
        source = self.sources.get(action.owner)
        around = getattr(source, "service_around", lambda _: "")(action) if source is not None else ""
        return [action.target] + ([around] if around and around != action.target else [])

    def _read_only_refusal(self, action: Action) -> str:
        if action.tier > Tier.READ and self.is_read_only(action.owner):
            return f"read-only: {action.title.lower()} {action.target} is refused ({action.tier.label} action)"
        return ""

    def refusal(self, action: Action) -> str:
        """Why ``action`` may not run now, or "" when it may (another process may still take its target first)."""
        if self._read_only_refusal(action):
            return self._read_only_refusal(action)
        for target in self._lock_targets(action):
            busy = locks.TargetLock(self.lock_dir, target).holder()
            if busy:
                return busy
        return ""

    def _take_locks(self, action: Action) -> tuple[list[locks.TargetLock], str]:
        """Every target's lock, or none and why not."""
        holder = {"user": who()["user"], "pid": os.getpid(), "since": time.time(), "action": action.title.lower()}
        taken: list[locks.TargetLock] = []
        for target in self._lock_targets(action):
            lock = locks.TargetLock(self.lock_dir, target)
            try:
                lock.acquire(holder)
            except (locks.LockBusy, OSError) as exc:
                for held in taken:
                    held.release()
                return [], str(exc) if isinstance(exc, locks.LockBusy) else lock.unusable(exc)
            taken.append(lock)
        return taken, ""

    async def record(self, event: str, action: Action, result: ActionResult | None = None, reason: str = "") -> None:
        """Append to the audit log (in a thread: it fsyncs); AuditUnwritable when it cannot be written."""
        entry = self.audit.entry(event, action, result, reason, now=self.clock())
        await asyncio.to_thread(self.audit.append, entry)

    async def run_action(self, action: Action, emit: Emit) -> ActionResult:
        """Run an action the operator has confirmed; refused ones raise ActionRefused (and are audited).

        Its targets' locks are held while it runs (another process's action on them is refused). Output lines
        and the result come back with their secrets as ``***``. An audit log that cannot be written refuses the
        action (AuditUnwritable) before anything runs; when only the last line cannot be written, the result
        says so in ``audit_error``.
        """
        held: list[locks.TargetLock] = []
        reason = self._read_only_refusal(action)
        if not reason:
            held, reason = self._take_locks(action)
        if reason:
            await self.record("refused", action, reason=reason)
            raise ActionRefused(reason)
        try:
            await self.record("confirmed", action)
        except AuditUnwritable:
            for lock in held:
                lock.release()
            raise
        running = self._active[action.target] = RunningAction(action, time.monotonic(), task=asyncio.current_task(),
                                                              children_before=frozenset(interrupts.children()))
        redact = self.audit.redactor.for_action(action).text

        def shown(line: str) -> None:
            line = redact(line)
            running.output.append(line)
            emit(line)

        source = self.sources[action.owner]
        self.transitions[action.target] = action.expect or f"{action.title.lower()}…"
        self._notify(Update(action.owner, (), self.health[action.owner]))
        around = getattr(source, "service_around", lambda _: "")(action)
        try:
            if around:
                result = await self._with_service_stopped(around, action, source, shown)
            else:
                result = await source.run(action, shown)
        except asyncio.CancelledError:  # the console closed under it: the log says so before it goes
            self._interrupted(running, CLOSED)
            raise
        except Exception as exc:  # an adapter bug is a failed action, not a dead console
            result = ActionResult(action, False, None, [], time.monotonic() - running.started,
                                  one_line(f"{type(exc).__name__}: {exc}"))
        finally:  # the run has ended (a command's group is gone): another may act on the targets
            self._active.pop(action.target, None)
            for lock in held:
                lock.release()
        result = replace(result, output=[redact(line) for line in result.output], error=redact(result.error))
        if running.interrupted:  # its `failed` line is written already
            result = replace(result, ok=False, error=running.interrupted)
        else:
            try:
                await self.record("succeeded" if result.ok else "failed", action, result)
            except AuditUnwritable as exc:
                result.audit_error = str(exc)
        self._settling.setdefault(action.owner, set()).add(action.target)
        wake = self._wake.get(action.owner)
        if wake is not None:
            wake.set()
        else:
            self.transitions.pop(action.target, None)
        return result

    def interrupt(self, why: str) -> list[int]:
        """A signal ends this process: SIGTERM to every child process group, and a `failed` line for each running
        action (``interrupted by SIGTERM``), written before this returns. Returns the groups signalled, for
        ``interrupts.end_groups``. Synchronous: it runs in the signal handler, with the exit to follow."""
        groups = interrupts.terminate_children()
        for running in list(self._active.values()):
            self._interrupted(running, f"interrupted by {why}")
        return groups

    async def _end_actions(self, why: str) -> None:
        """End the actions running now, whatever runs them (a command, a backup's thread): each one's `failed` line
        first, then SIGTERM to the process groups this process started since it began (every action command leads
        its own; a poll's command started meanwhile goes too, as the engine is stopping), its task cancelled, and
        SIGKILL to what is left after STOP_GRACE, even when this is cut short."""
        running = list(self._active.values())
        if not running:
            return
        for each in running:
            self._interrupted(each, why)
        before = frozenset.intersection(*(each.children_before for each in running))
        groups = interrupts.groups_of(set(interrupts.children()) - before)
        interrupts.signal_groups(groups, signal.SIGTERM)
        tasks = [each.task for each in running if each.task is not None and not each.task.done()]
        for task in tasks:
            if not task.cancelling():  # one already cancelled is ending its group: a second cancel would cut it short
                task.cancel()
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_GRACE)
        finally:
            interrupts.signal_groups(interrupts.alive(groups), signal.SIGKILL)

    def _interrupted(self, running: RunningAction, why: str) -> None:
        if running.interrupted:
            return
        running.interrupted = why
        result = ActionResult(running.action, False, None, list(running.output), time.monotonic() - running.started,
                              why)
        try:
            self.audit.append(self.audit.entry("failed", running.action, result, now=self.clock()))
        except AuditUnwritable:
            pass  # nowhere to say it: the log broke after this action's `confirmed` line

    async def _with_service_stopped(self, service: str, action: Action, source: Source, emit: Emit) -> ActionResult:
        """A restore that wants its service down: stop it (through its own stop action, audited), run, then
        start it again whatever happened. When it cannot be stopped, nothing is restored."""
        def own(action_id: str) -> Action | None:
            return next((a for a in self.actions_for(service, include_refused=True) if a.id == action_id), None)

        stop, start = own("stop"), own("start")
        if service not in self.sources or stop is None or start is None:
            return ActionResult(action, False, None, [], 0.0, f"{service} cannot be stopped and started by lakedeck "
                                                               f"(no such service, or no stop/start action): nothing restored")
        for step in (stop, action, start):
            if step is not action:
                try:
                    await self.record("confirmed", step, reason=f"around {action.title.lower()} {action.target}")
                except AuditUnwritable:
                    if step is stop:
                        raise  # nothing has run yet: nothing runs
                    # the service comes back up whatever the log says
            emit(f"-- {step.title.lower()} {step.target}")
            try:
                result = await self.sources[step.owner].run(step, emit)
            except Exception as exc:
                result = ActionResult(step, False, None, [], 0.0, one_line(f"{type(exc).__name__}: {exc}"))
            if step is not action:
                try:
                    await self.record("succeeded" if result.ok else "failed", step, result)
                except AuditUnwritable:
                    pass  # the restore's own line says the log broke
            if step is stop and not result.ok:
                return ActionResult(action, False, None, result.output, result.duration,
                                    f"could not stop {service} ({result.summary}): nothing restored")
            if step is action:
                outcome = result
        if not result.ok:  # restored, but the service did not come back: say so on the restore
            return ActionResult(action, False, outcome.exit_code, outcome.output, outcome.duration,
                                f"restored, but starting {service} failed: {result.summary}")
        return outcome

    def worst(self) -> State:
        return max((r.state for r in self.readings.values()), default=State.OK)
