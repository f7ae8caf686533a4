"""What a prune may delete, and the prune's own look at the sets before it deletes any.

The plan is pure (``prune_plan``): a set goes only when every rule lets it go, the newest undamaged set and
the newest verified one never go, and a set known to be damaged is neither counted nor protected. A set is
"undamaged" when the prune itself found it so (``checked_plan``): its manifest readable and every file of
the right size, and a full re-hash of each set it keeps in place of one it deletes. Damage found then takes
the set out of the count and the plan is made again, until the sets it counts on are all re-hashed good.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backup_leftovers import alive
from .backup_members import check_files, fingerprint
from .backup_sets import (
    MANIFEST,
    STALE_PARTIAL,
    JobSets,
    ManifestError,
    Unfinished,
    partial_pid,
    read_manifest,
    set_order,
)
from .model import BackupSet

REHASH_FRESH = 600.0  # a re-hash of a set nothing touched since is good this long (the preview's, for the run)


def damaged(backup: BackupSet, known: Iterable[str] = ()) -> bool:
    """A set known to be no restore point: its last verify failed, or a prune's own check found it bad."""
    return backup.verified.startswith("failed") or backup.name in set(known)


def newest_first(sets: Iterable[BackupSet]) -> list[BackupSet]:
    return sorted(sets, key=set_order, reverse=True)


def protected(sets: Iterable[BackupSet], known_damaged: Iterable[str] = ()) -> set[str]:
    """Sets no prune may take: the newest undamaged one, and the newest that passed its last verify."""
    bad = set(known_damaged)
    good = [s for s in newest_first(sets) if not damaged(s, bad)]
    keep = {good[0].name} if good else set()
    verified = next((s for s in good if s.verified == "ok"), None)
    if verified is not None:
        keep.add(verified.name)
    return keep


def counted(sets: Iterable[BackupSet], keep_last: int | None, known_damaged: Iterable[str] = ()) -> list[BackupSet]:
    """The sets a prune keeps in place of the ones it deletes: the newest ``keep_last`` undamaged sets and
    the protected ones, newest first."""
    bad = set(known_damaged)
    ordered = newest_first(sets)
    good = [s for s in ordered if not damaged(s, bad)]
    chosen = {s.name for s in good[: keep_last or 0]} | protected(ordered, bad)
    return [s for s in ordered if s.name in chosen]


def prune_plan(sets: Iterable[BackupSet], keep: float | None, keep_last: int | None, now: float,
               known_damaged: Iterable[str] = ()) -> list[BackupSet]:
    """The sets a prune would delete, oldest first: a set goes only when every given rule lets it go (older
    than ``keep``; ``keep_last`` undamaged sets newer than it staying). No rule: nothing goes."""
    if keep is None and keep_last is None:
        return []
    bad = set(known_damaged)
    ordered = newest_first(sets)
    safe = protected(ordered, bad)
    plan, newer_good = [], 0
    for backup in ordered:
        goes = (backup.name not in safe and (keep_last is None or newer_good >= keep_last)
                and (keep is None or now - backup.started > keep))
        if goes:
            plan.append(backup)
        elif not damaged(backup, bad):
            newer_good += 1
    return plan[::-1]


def stale_unfinished(unfinished: Iterable[Unfinished], now: float, busy: Iterable[str] = ()) -> list[Unfinished]:
    """Leftovers of dead runs: ``.partial-*`` directories untouched for an hour whose process is gone
    (and that are not being written by this process, ``busy``)."""
    busy = set(busy)
    stale = []
    for item in unfinished:
        pid = partial_pid(item.name)  # None: not a directory any lakedeck run names so, never removed
        if pid is None or item.path in busy or now - item.mtime < STALE_PARTIAL:
            continue
        if pid != os.getpid() and alive(pid):
            continue
        stale.append(item)
    return stale


@dataclass(frozen=True)
class Plan:
    sets: tuple[BackupSet, ...]  # to delete, oldest first
    leftovers: tuple[Unfinished, ...]  # dead runs' directories to remove
    found: tuple[tuple[str, str], ...] = ()  # damage the check found: (set, why)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sets] + [u.name for u in self.leftovers]


def quick_plan(listing: JobSets, keep: float | None, keep_last: int | None, now: float, busy: Iterable[str]) -> Plan:
    """The plan from what the listing knows (no reading of files): what an action offers before its preview."""
    return Plan(tuple(prune_plan(listing.sets, keep, keep_last, now)),
                tuple(stale_unfinished(listing.unfinished, time.time(), busy)))


class Rehasher:
    """Full re-hashes of sets, remembered while nothing in the set changes and for REHASH_FRESH: the run that
    follows a preview does not read every kept set a second time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._good: dict[str, tuple[tuple[Any, ...], float]] = {}

    def problem(self, backup: BackupSet, on_chunk: Callable[[int], None] | None = None) -> str:
        set_dir = Path(backup.path)
        try:
            manifest = read_manifest(set_dir)
        except ManifestError as exc:
            return str(exc)
        mark = fingerprint(set_dir, [MANIFEST, *(f["path"] for f in manifest["files"])])
        held = self._good.get(backup.path)
        if mark is not None and held is not None and held[0] == mark and self.clock() - held[1] < REHASH_FRESH:
            return ""
        problem = check_files(set_dir, manifest["files"], on_chunk)
        if not problem and mark is not None:
            self._good[backup.path] = (mark, self.clock())
        return problem


def _sizes_problem(backup: BackupSet) -> str:
    set_dir = Path(backup.path)
    try:
        return check_files(set_dir, read_manifest(set_dir)["files"], full=False)
    except ManifestError as exc:
        return str(exc)


def checked_plan(listing: JobSets, keep: float | None, keep_last: int | None, now: float, rehasher: Rehasher,
                 busy: Iterable[str] = (), on_chunk: Callable[[int], None] | None = None) -> Plan:
    """The plan once the prune has looked: every set's manifest and file sizes, and a full re-hash of each
    set it counts on while it deletes others; a set found damaged is not counted and the plan made again."""
    found: dict[str, str] = {}
    for backup in listing.sets:
        if not damaged(backup):
            problem = _sizes_problem(backup)
            if problem:
                found[backup.name] = problem
    checked: set[str] = set()
    while True:
        plan = prune_plan(listing.sets, keep, keep_last, now, found)
        todo = [s for s in counted(listing.sets, keep_last, found) if s.name not in checked] if plan else []
        if not todo:
            break
        for backup in todo:
            checked.add(backup.name)
            problem = rehasher.problem(backup, on_chunk)
            if problem:
                found[backup.name] = problem
    return Plan(tuple(plan), tuple(stale_unfinished(listing.unfinished, time.time(), busy)), tuple(found.items()))
