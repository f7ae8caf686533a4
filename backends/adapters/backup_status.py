"""What a backup job's row and its drill-down say: pure functions of its listing and the clock.

The row's state and reason are the same everywhere (the pane, `lakedeck check`): the last good set is the
newest one not known damaged; a failed last run warns, and is CRITICAL once the RPO has passed; foreign
entries under DEST/JOB warn.
"""

from __future__ import annotations

from pathlib import Path

from ..backup_prune import damaged
from ..backup_sets import JobSets
from ..durations import format_duration
from ..model import BackupSet, PipelineItem, State
from ..text import human_bytes


def age_text(seconds: float) -> str:
    return f"{format_duration(seconds)} ago"


def spoken_span(seconds: float) -> str:
    """``42 seconds``, ``6 minutes``, ``2 hours 5 minutes``, ``3 days 4 hours``: for a sentence."""
    left = int(max(0.0, seconds))
    if left < 60:
        return plural(left, "second", "seconds")
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count, left = divmod(left, size)
        if count:
            parts.append(plural(count, unit, f"{unit}s"))
        elif parts:
            break
        if len(parts) == 2:
            break
    return " ".join(parts)


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def foreign_text(listing: JobSets) -> str:
    return plural(len(listing.foreign), "foreign entry", "foreign entries")


def judge(listing: JobSets, now: float, rpo: float | None, job_dir: Path) -> tuple[State, str, float | None]:
    """The job's state, its reason's parts joined, and when its last good set finished."""
    sets = listing.sets
    # a set whose last verify failed is no restore point: the RPO is judged by the newest other one
    good = next((s for s in sets if not damaged(s)), None)
    last_good = (good.finished or good.started) if good else None
    parts: list[str] = []
    run = listing.last_run
    failed = run if run is not None and (not sets or run.at >= sets[0].started) else None
    if failed is not None:
        parts.append(f"last run failed: {failed.failed}")
    if good is None or last_good is None:
        state = State.CRITICAL
        parts.append(f"no backup yet in {job_dir}" if not sets else "no good set: every set failed verify")
    else:
        age = now - last_good
        parts.append(f"last good {age_text(age)}" + (f" (rpo {format_duration(rpo)})" if rpo else ""))
        state = State.OK
        if rpo and age > 2 * rpo:
            state = State.CRITICAL
        elif rpo and age > rpo:
            state = State.WARN
        if failed is not None:  # WARN now, CRITICAL once the RPO has passed
            state = max(state, State.CRITICAL if rpo and age > rpo else State.WARN)
    if sets:
        parts.append(f"{plural(len(sets), 'set', 'sets')}, {human_bytes(listing.size)}")
        newest = sets[0]
        if newest.verified.startswith("failed"):
            state = max(state, State.WARN)
            parts.append(f"verify FAILED: {newest.verified.removeprefix('failed: ')}")
        else:
            verified = next((s for s in sets if s.verified == "ok"), None)
            if newest.verified == "ok" and newest.verified_at is not None:
                parts.append(f"newest verified {age_text(now - newest.verified_at)}")
            else:
                parts.append("newest NOT verified" + (f" (last verified set {verified.name})" if verified else ""))
    if listing.foreign:
        state = max(state, State.WARN)
        parts.append(f"{foreign_text(listing)} in DEST")
    partial = [u for u in listing.unfinished if u.partial]
    broken = [u for u in listing.unfinished if not u.partial]
    if partial:
        parts.append(f"{plural(len(partial), 'unfinished set', 'unfinished sets')} (a run was killed?)")
    if broken:
        parts.append(f"{plural(len(broken), 'set', 'sets')} without a readable manifest")
    return state, " · ".join(parts), last_good


def item_of(backup: BackupSet) -> PipelineItem:
    if backup.verified == "ok":
        state, status = State.OK, "verified"
    elif backup.verified.startswith("failed"):
        state, status = State.CRITICAL, "verify failed"
    else:
        state, status = State.OK, "not verified"
    duration = backup.finished - backup.started if backup.finished is not None else None
    note = f"{human_bytes(backup.size)} · {plural(backup.files, 'file', 'files')}"
    if backup.unpacked is not None and backup.unpacked != backup.size:
        note += f" · {human_bytes(backup.unpacked)} unpacked"
    if backup.verified.startswith("failed"):
        note += f" · {backup.verified}"
    return PipelineItem(("set", backup.name), backup.name, state, status=status, started=backup.started,
                        duration=duration, note=note)


def items_of(listing: JobSets) -> tuple[PipelineItem, ...]:
    """The drill-down: the sets newest first, then what is unfinished, then what is foreign."""
    return (tuple(item_of(s) for s in listing.sets)
            + tuple(PipelineItem(("unfinished", u.name), u.name, State.WARN, status="unfinished", started=u.mtime,
                                 note=u.why) for u in listing.unfinished)
            + tuple(PipelineItem(("foreign", f.name), f.name, State.WARN, status="foreign",
                                 note=f"{f.why}: not a set, never pruned or restored") for f in listing.foreign))
