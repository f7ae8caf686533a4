"""Actions: what an operator can do to a target, how risky it is, and exactly what it will run."""

from __future__ import annotations

import collections
import enum
import shlex
import time
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable


class Tier(enum.IntEnum):
    """How much an action can hurt, ordered: config may raise a tier, never lower it."""

    READ = 0  # refresh, view, tail: no confirmation
    DISRUPTIVE = 1  # start, stop, restart, trigger: a modal with Cancel focused, the exact command shown
    DESTRUCTIVE = 2  # prune, restore, delete: a dry-run preview, confirmed by typing the target's name

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""

    def describe(self) -> str:
        shown = " ".join(f"-H '{k}: {v}'" for k, v in self.headers)
        body = f" -d {shlex.quote(self.body)}" if self.body else ""
        return f"{self.method} {self.url}" + (f" {shown}" if shown else "") + body


@dataclass(frozen=True)
class Action:
    """One thing to do to one target.

    Exactly one of ``argv`` (an argument list, never a shell string), ``request`` (an HTTP request) or
    ``call`` (a named API call such as supervisord's XML-RPC, with its arguments shown) says what runs.
    """

    target: str
    id: str
    title: str
    tier: Tier
    argv: tuple[str, ...] = ()
    request: HttpRequest | None = None
    call: str = ""
    timeout: float = 60.0
    expect: str = ""  # the transition shown on the row while it runs: "restarting", "stopping"...
    cwd: str | None = None
    # An action on part of a source (a DAG of an Airflow instance, a run of that DAG): ``target`` names the
    # part ("airflow:etl_daily"), ``source`` the engine source that runs it, ``ref`` what its adapter needs.
    source: str = ""
    ref: tuple[str, ...] = ()
    confirm: str = ""  # what a destructive action asks the operator to type (default: the target)
    ask: str = ""  # a value to ask for before confirming (a --select, a run's conf), as its prompt
    value: str = ""  # the value given to ``ask``

    @property
    def owner(self) -> str:
        """The engine source that runs this action."""
        return self.source or self.target

    def describe(self) -> str:
        """The exact command or request, as shown before it runs and written to the audit log."""
        if self.argv:
            return shlex.join(self.argv)
        if self.request is not None:
            return self.request.describe()
        return self.call


@dataclass
class ActionResult:
    action: Action
    ok: bool
    exit_code: int | None
    output: list[str] = field(default_factory=list)  # the last lines, bounded
    duration: float = 0.0
    error: str = ""  # one line when it failed before or instead of an exit code
    audit_error: str = ""  # the audit log could not take the line saying how it ended

    @property
    def summary(self) -> str:
        if self.ok:
            return f"{self.action.title} {self.action.target}: done in {self.duration:.1f}s"
        cause = self.error or f"exit {self.exit_code}"
        return f"{self.action.title} {self.action.target} failed: {cause}"


Emit = Callable[[str], None]
Preview = Callable[[], Awaitable[list[str]]]
TRANSCRIPT_LINES = 200  # the output an action's result keeps (the audit log and the failure modal show its end)


class Transcript:
    """An adapter's own action as it goes: each line passed to ``emit`` and kept, and the result at the end."""

    def __init__(self, action: Action, emit: Emit) -> None:
        self.action = action
        self.emit = emit
        self.lines: collections.deque[str] = collections.deque(maxlen=TRANSCRIPT_LINES)
        self.started = time.monotonic()

    def say(self, line: str) -> None:
        self.lines.append(line)
        self.emit(line)

    def result(self, ok: bool, error: str = "", exit_code: int | None = None) -> ActionResult:
        return ActionResult(self.action, ok, exit_code, list(self.lines), time.monotonic() - self.started, error)


class ActionRefused(Exception):
    """The action may not run: read-only, unknown, its target busy, or the audit log cannot be written."""


def title_of(action_id: str) -> str:
    return action_id.replace("_", " ").replace("-", " ").capitalize()


def from_config(target: str, entry: dict) -> Action:
    """An action the config adds (``actions:`` with a command or an http request)."""
    http = entry.get("http")
    request = None
    if http:
        request = HttpRequest(http["method"], http["url"], tuple(http["headers"].items()), http["body"])
    return Action(
        target=target, id=entry["id"], title=entry.get("title") or title_of(entry["id"]),
        tier=Tier[(entry.get("tier") or "disruptive").upper()], argv=tuple(entry.get("command") or ()),
        request=request, timeout=entry.get("timeout") or 60.0, expect=entry.get("expect") or "", cwd=entry.get("cwd"),
    )


def merge(declared: list[Action], entries: list[dict], target: str) -> list[Action]:
    """The adapter's actions with the config's: new ones added, tiers raised, never lowered."""
    by_id = {a.id: a for a in declared}
    for entry in entries:
        old = by_id.get(entry["id"])
        wanted = Tier[entry["tier"].upper()] if entry.get("tier") else None
        if entry.get("command") or entry.get("http"):
            new = from_config(target, entry)
            floor = old.tier if old else Tier.READ
            by_id[new.id] = replace(new, tier=max(new.tier, floor))
        elif old is not None and wanted is not None:
            by_id[old.id] = replace(old, tier=max(old.tier, wanted))
    return list(by_id.values())
