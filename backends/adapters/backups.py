"""A backup job (``backups:``): its sets under DEST/JOB against its RPO; run, verify, prune and restore.

Action refs (the adapter makes them, and it alone reads them):
  run ``()`` · verify ``(set,)`` · prune ``("plan", *names)``: exactly what the preview listed and the run
  deletes · restore ``(set,)`` or ``(set, "service", NAME)`` when the job names a service to stop around it.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..actions import Action, ActionResult, Emit, Tier, Transcript
from ..backup_kinds import (
    MAKERS,
    BackupError,
    Made,
    Progress,
    Work,
    dump_name,
    pg_dump_argv,
    pg_restore_argv,
    source_root,
)
from ..backup_leftovers import STAGING_PREFIX, remove_dead, sqlite_prefix
from ..backup_prune import Plan, Rehasher, checked_plan, damaged, quick_plan
from ..backup_restore import RestoreFacts, check_target, is_live, restore_facts, restore_set, verify_set
from ..backup_sets import (
    FORMAT,
    PARTIAL_PREFIX,
    SCRATCH_PREFIX,
    JobSets,
    ManifestError,
    fsync_dir,
    fsync_tree,
    list_sets,
    name_time,
    partial_pid,
    record_run,
    set_name,
    write_manifest,
    write_verify,
)
from ..durations import format_duration
from ..model import BackupReading, BackupSet, Listing, Reading, State
from ..text import human_bytes, one_line
from .backup_status import age_text, foreign_text, items_of, judge, plural, spoken_span
from .base import Source

BUSY: set[str] = set()  # .partial-* directories this process is writing now: never pruned


def failure_text(exc: BaseException) -> str:
    if isinstance(exc, BackupError):
        return str(exc)
    if isinstance(exc, OSError):
        return one_line(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    return one_line(f"{type(exc).__name__}: {exc}")


class BackupJob(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.options = options
        self.dest = Path(os.path.expanduser(options["dest"])).absolute()
        self.job_dir = self.dest / self.name
        self.rpo: float | None = options.get("rpo")
        self.keep: float | None = options.get("keep")
        self.keep_last: int | None = options.get("keep_last")
        self.service: str | None = options.get("service")
        self.action_timeout: float = options.get("action_timeout") or 3600.0
        self._listing: JobSets | None = None
        self._rehasher = Rehasher()

    def describe(self) -> str:
        return f"{self.kind} backup into {self.job_dir}"

    # -- reading -----------------------------------------------------------------------------------

    async def poll(self) -> list[Reading]:
        try:
            listing = await self.in_thread(self._list)
        except FileNotFoundError:
            return [self._reading(State.CRITICAL, f"no backup yet: {self.dest} does not exist (is it mounted?)")]
        except OSError as exc:
            return [self._reading(State.UNKNOWN, f"cannot read {self.job_dir}: {exc.strerror or exc}")]
        return [self.judge(listing, self.clock())]

    def _list(self) -> JobSets:
        if not self.dest.is_dir():
            raise FileNotFoundError(f"{self.dest} does not exist")
        self._tidy()
        self._listing = listing = self._sets_now()
        return listing

    def _sets_now(self) -> JobSets:
        return list_sets(self.job_dir, self.clock())

    def _tidy(self, target: str = "") -> None:
        """Remove what a dead verify or restore left (their pids gone): in DEST/JOB, and beside or in every
        restore target this job knows, plus ``target``."""
        remove_dead(self.job_dir, SCRATCH_PREFIX, directories=True)
        targets = [t for t in (target, self.options.get("restore_to")) if t]
        if self.kind == "sqlite":
            for path in map(Path, [*targets, os.path.expanduser(self.options["database"])]):
                remove_dead(path.parent, sqlite_prefix(path), directories=False)
        elif self.kind == "files":
            for path in map(Path, [*targets, source_root(list(self.options["paths"]))]):
                remove_dead(path, STAGING_PREFIX, directories=True)

    def _reading(self, state: State, reason: str, **fields: Any) -> BackupReading:
        return BackupReading(key=self.name, source=self.name, state=state, reason=one_line(reason), ts=self.clock(),
                             kind=self.kind, dest=str(self.dest), rpo=self.rpo, **fields)

    def judge(self, listing: JobSets, now: float) -> BackupReading:
        state, reason, last_good = judge(listing, now, self.rpo, self.job_dir)
        return self._reading(state, reason, last_good=last_good, sets=listing.sets)

    # -- drill-down --------------------------------------------------------------------------------

    async def open(self, ref: tuple[str, ...] = ()) -> Listing:
        listing = await asyncio.to_thread(self._list)
        foreign = f", {foreign_text(listing)}" if listing.foreign else ""
        return Listing(title=f"{self.name} · backup sets in {self.job_dir}", items=items_of(listing),
                       note=f"{len(listing.sets)} sets, {human_bytes(listing.size)}{foreign}; newest first")

    # -- actions -----------------------------------------------------------------------------------

    def _sets(self) -> JobSets:
        """The listing of the last poll (actions() runs on the event loop: no I/O when there is one)."""
        return self._listing if self._listing is not None else self._sets_now()

    def _action(self, action_id: str, title: str, tier: Tier, call: str, ref: tuple[str, ...] = (), **kw: Any):
        return Action(target=self.name, id=action_id, title=title, tier=tier, call=call, ref=ref, source=self.name,
                      timeout=self.action_timeout, **kw)

    def actions(self) -> list[Action]:
        try:
            listing = self._sets()
        except OSError:
            listing = JobSets((), ())
        actions = [self._action("run", "Run backup now", Tier.DISRUPTIVE, self.run_text(), expect="backing up"),
                   self._prune_action(listing)]
        if listing.sets:
            actions.append(self._verify_action(listing.sets[0]))
            good = next((s for s in listing.sets if not damaged(s)), None)
            restore = self._restore_action(good) if good is not None else None
            if restore is not None:
                actions.append(restore)
        return actions

    def item_actions(self, item: Any) -> list[Action]:
        ref = getattr(item, "ref", ())
        if len(ref) == 2 and ref[0] == "set":
            found = next((s for s in self._sets().sets if s.name == ref[1]), None)
            if found is None:
                return []
            restore = self._restore_action(found)
            return [self._verify_action(found)] + ([restore] if restore is not None else [])
        return []

    def _verify_action(self, backup: BackupSet) -> Action:
        checks = {"postgres": "; pg_restore --list", "sqlite": "; PRAGMA integrity_check on a copy"}
        return self._action("verify", f"Verify {backup.name}", Tier.READ,
                            f"re-hash {backup.path} against its manifest{checks.get(self.kind, '')}",
                            ref=(backup.name,), expect="verifying")

    def _restore_action(self, backup: BackupSet) -> Action | None:
        if self.kind == "command" and not self.options.get("restore"):
            return None  # nothing says how to restore it
        target = self.options.get("restore_to") or ""
        service = ("service", self.service) if self.service else ()
        restore = self._action("restore", f"Restore {backup.name}", Tier.DESTRUCTIVE, "", ref=(backup.name, *service),
                               expect="restoring", confirm=self.name,
                               ask="" if target or self.kind == "command" else self._target_prompt(), value=target)
        return replace(restore, call=self.restore_text(restore))

    def _target_prompt(self) -> str:
        if self.kind == "files":
            return (f"an empty or new directory to unpack into, or {source_root(list(self.options['paths']))} to "
                    f"restore in place (absolute path)")
        return {"sqlite": "the database file to write (absolute path)",
                "postgres": "the database to restore into (created when missing)"}[self.kind]

    def _prune_action(self, listing: JobSets) -> Action:
        names = self._quick_plan(listing).names
        rules = ", ".join(f"{k} {v}" for k, v in (("keep", self.keep and format_duration(self.keep)),
                                                   ("keep_last", self.keep_last)) if v) or "no keep rule"
        return self._action("prune", "Prune old sets", Tier.DESTRUCTIVE,
                            f"delete {len(names)} of {self.job_dir}: {', '.join(names) or 'nothing'} ({rules})",
                            ref=("plan", *names), expect="pruning", confirm=self.name)

    def _quick_plan(self, listing: JobSets) -> Plan:
        return quick_plan(listing, self.keep, self.keep_last, self.clock(), BUSY)

    def _checked_plan(self, listing: JobSets, work: Work | None = None) -> Plan:
        """The plan after the prune's own look at the sets (in a thread); damage it found is recorded as the
        set's failed verify, so the row, `check` and the next plan know it too."""
        progress = Progress(work, None, "re-hashed ") if work is not None else None
        plan = checked_plan(listing, self.keep, self.keep_last, self.clock(), self._rehasher, BUSY,
                            progress.add if progress is not None else None)
        for name, why in plan.found:
            try:
                write_verify(self.job_dir / name, f"failed: {why} (found by a prune)", self.clock())
            except OSError:
                pass  # a read-only DEST: this plan still leaves the set out of the count
            if work is not None:
                work.emit(f"set {name} is damaged ({why}): it is not counted as a good set")
        if plan.found:
            self._listing = None  # the next actions() plans with what was found
        return plan

    def run_text(self) -> str:
        into = f" → {self.job_dir}/<UTC time>/ with a sha256 manifest"
        options = self.options
        if self.kind == "files":
            excludes = f" excluding {', '.join(options['exclude'])}" if options.get("exclude") else ""
            return f"tar.gz of {', '.join(options['paths'])}{excludes}{into}"
        if self.kind == "sqlite":
            return f"sqlite3 backup API of {options['database']}{into}"
        if self.kind == "postgres":
            return shlex.join(pg_dump_argv(options, f"{self.job_dir}/<UTC time>/{dump_name(options)}"))
        return shlex.join(options["command"]) + into

    def restore_text(self, action: Action) -> str:
        target = action.value or "<target>"
        name = action.ref[0]
        if self.kind == "files":
            what = f"unpack {name}/files.tar.gz into {target} (what is there under the same names is kept as " \
                   f"<name>.before-restore-*)"
        elif self.kind == "sqlite":
            what = f"write {target} from {name} (an existing file is kept as {Path(target).name}.before-restore-*)"
        elif self.kind == "postgres":
            what = f"{shlex.join(pg_restore_argv(self.options, target))} < {name}/{dump_name(self.options)}"
        else:
            what = shlex.join(self.options["restore"]).replace("{dir}", f"{self.job_dir}/{name}")
        service = f"stop service {self.service}, " if self.service else ""
        return f"{service}check sha256, {what}" + (f", start service {self.service}" if self.service else "")

    def service_around(self, action: Action) -> str:
        """The engine's hook: the service to stop before this action and start after it ("" for none)."""
        return service_of(action)

    def with_value(self, action: Action, value: str) -> Action:
        if action.id != "restore":
            return replace(action, value=value)
        check_target(self.kind, value, self.options)  # ValueError: one line
        chosen = replace(action, value=value)
        return replace(chosen, call=self.restore_text(chosen))

    async def preview(self, action: Action) -> list[str] | None:
        if action.argv or action.request is not None:
            return None
        if action.id == "prune":
            return await asyncio.to_thread(self._prune_preview, action)
        if action.id == "restore":
            return await asyncio.to_thread(self._restore_preview, action)
        return None

    def _prune_preview(self, action: Action) -> list[str]:
        try:
            listing = self._sets_now()
            plan = self._checked_plan(listing)
        except OSError as exc:
            return [f"cannot look at the sets: {failure_text(exc)}"]
        by_name = {s.name: s for s in listing.sets}
        left = {u.name: u for u in listing.unfinished}
        now = self.clock()
        lines = []
        for name in action.ref[1:]:
            if name in by_name:
                s = by_name[name]
                lines.append(f"delete set {name} · {human_bytes(s.size)} · {age_text(now - s.started)} · "
                             f"{s.verified or 'not verified'}")
            elif name in left:
                lines.append(f"remove unfinished {name} (untouched for {format_duration(time.time() - left[name].mtime)})")
            else:
                lines.append(f"{name}: gone already")
        for name, why in plan.found:
            lines.append(f"set {name} is damaged ({why}): not counted as a good set")
        if plan.names != list(action.ref[1:]):
            lines.append("the sets to prune changed since this was planned: open the action again")
        if listing.foreign:
            lines.append(f"left alone: {foreign_text(listing)} "
                         f"({', '.join(f.name for f in listing.foreign[:5])}{' …' if len(listing.foreign) > 5 else ''})")
        return lines

    def _restore_preview(self, action: Action) -> list[str]:
        found = next((s for s in self._sets_now().sets if s.name == action.ref[0]), None)
        if found is None:
            return [f"set {action.ref[0]} is gone"]
        target = action.value or "<asked before confirming>"
        try:
            facts = restore_facts(self.kind, self.options, Path(found.path))
        except (BackupError, OSError) as exc:
            return [f"set {found.name} cannot be restored: {failure_text(exc)}"]
        size = (f"{human_bytes(facts.unpacked)} unpacked ({human_bytes(found.size)} in the set)"
                if facts.unpacked is not None and facts.unpacked != found.size else human_bytes(found.size))
        lines = [f"restore set {found.name} · {size}, {plural(found.files, 'file', 'files')} · taken "
                 f"{age_text(self.clock() - found.started)} · {found.verified or 'not verified'}"]
        if facts.layout is not None:
            lines.append(f"into {target}: {facts.layout.shown()}")
        else:
            lines.append(f"into {target}")
        if facts.note:
            lines.append(facts.note)
        if action.value and is_live(self.kind, action.value, self.options):
            lines.append(self._live_warning(found, facts))
        if self.service:
            lines.append(f"service {self.service} is stopped before and started after")
        return lines

    def _live_warning(self, backup: BackupSet, facts: RestoreFacts) -> str:
        since = spoken_span(self.clock() - backup.started)
        if self.kind == "sqlite":
            what = Path(os.path.expanduser(self.options["database"])).name
            kept = f"the live file is kept as {what}.before-restore-*"
        elif self.kind == "files":
            what = ", ".join(facts.layout.top) if facts.layout is not None else "source"
            kept = "what is there now is kept as <name>.before-restore-*"
        else:
            what = f"database {self.options['dbname']}"
            kept = "no copy is kept: run a backup first to keep one"
        return f"this overwrites the live {what}; changes of the last {since} are lost ({kept})"

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        if action.argv or action.request is not None:
            return await super().run(action, emit)
        transcript = Transcript(action, emit)
        work = Work(transcript.say, time.monotonic() + action.timeout)
        steps = {"run": self._run_backup, "verify": self._verify, "prune": self._prune, "restore": self._restore}
        if action.id not in steps:
            return transcript.result(False, f"the backup adapter cannot run {action.id!r}")
        try:
            message = await asyncio.shield(asyncio.to_thread(steps[action.id], action, work))
        except asyncio.CancelledError:
            work.cancel.set()  # the thread stops at its next check and kills its subprocess
            raise
        except (BackupError, OSError) as exc:
            return transcript.result(False, failure_text(exc))
        finally:
            self._listing = None  # the next actions() or poll sees what the action changed
        transcript.say(message)
        return transcript.result(True)

    # -- the steps (in a thread) -------------------------------------------------------------------

    def _run_backup(self, action: Action, work: Work) -> str:
        started, clock = time.monotonic(), self.clock()
        if not self.dest.is_dir():  # never made here: an unmounted disk's mount point would fill the root disk
            raise BackupError(f"{self.dest} does not exist (create it, or is the disk mounted?)")
        self.job_dir.mkdir(exist_ok=True)
        name = set_name(clock)
        for n in range(2, 1000):  # two runs in one second
            partial = self.job_dir / f"{PARTIAL_PREFIX}{name}-{os.getpid()}"
            if not os.path.lexists(self.job_dir / name) and not os.path.lexists(partial):
                break
            name = f"{set_name(clock)}-{n}"
        partial.mkdir()
        BUSY.add(str(partial))
        try:
            made: Made = MAKERS[self.kind](self.options, partial, work)
            work.check()
            manifest = {"format": FORMAT, "job": self.name, "kind": self.kind, "name": name, "started": clock,
                        "finished": self.clock(), "duration": round(time.monotonic() - started, 3),
                        "source": self.run_text(), "tools": made.tools, **made.facts, "files": made.files}
            try:
                write_manifest(partial, manifest)
            except ManifestError as exc:
                raise BackupError(str(exc)) from None
            fsync_tree(partial)
            os.rename(partial, self.job_dir / name)
            fsync_dir(self.job_dir)
        except BaseException as exc:
            # a failed run leaves nothing half-made, and says so on the row until a run succeeds
            shutil.rmtree(partial, ignore_errors=True)
            self._record_run(failure_text(exc))
            raise
        finally:
            BUSY.discard(str(partial))
        self._record_run("")
        size = sum(f["size"] for f in made.files)
        return (f"set {name}: {plural(len(made.files), 'file', 'files')}, {human_bytes(size)} in "
                f"{format_duration(time.monotonic() - started)}")

    def _record_run(self, failed: str) -> None:
        try:
            record_run(self.job_dir, failed, self.clock())
        except OSError:
            pass  # a full or read-only DEST: the run's own result says what happened

    def _find(self, name: str) -> BackupSet:
        found = next((s for s in self._sets_now().sets if s.name == name), None)
        if found is None:
            raise BackupError(f"set {name} is not in {self.job_dir} (pruned, not finished, or not a set)")
        return found

    def _verify(self, action: Action, work: Work) -> str:
        remove_dead(self.job_dir, SCRATCH_PREFIX, directories=True)
        backup = self._find(action.ref[0])
        problem = verify_set(self.kind, self.options, Path(backup.path), work, self.clock)
        if problem:
            raise BackupError(f"verify of {backup.name} FAILED: {problem}")
        return f"set {backup.name} verified: every file matches its sha256"

    def _prune(self, action: Action, work: Work) -> str:
        planned = list(action.ref[1:])
        plan = self._checked_plan(self._sets_now(), work)
        if plan.names != planned:
            raise BackupError("the sets to prune changed since the preview; nothing was deleted: look again")
        for name in planned:
            if name_time(name) is None and partial_pid(name) is None:
                raise BackupError(f"refusing to delete {name!r}: not a backup set's name")
        for name in planned:
            work.check()
            path = self.job_dir / name
            # renamed first: a prune killed halfway leaves an unfinished directory, never a set that looks good
            doomed = path if partial_pid(name) is not None else self.job_dir / f"{PARTIAL_PREFIX}pruned-{name}-{os.getpid()}"
            if doomed != path:
                os.rename(path, doomed)
                fsync_dir(self.job_dir)
            shutil.rmtree(doomed)  # refuses a symlink: only a directory's own contents are deleted
            work.emit(f"deleted {name}")
        return f"pruned {len(planned)} of {self.job_dir}"

    def _restore(self, action: Action, work: Work) -> str:
        target = action.value or self.options.get("restore_to") or ""
        if self.kind != "command":
            check_target(self.kind, target, self.options)
        self._tidy(target)
        backup = self._find(action.ref[0])
        restore_set(self.kind, self.options, Path(backup.path), target, work)
        return f"restored set {backup.name}" + (f" into {target}" if target else "")


def service_of(action: Action) -> str:
    """The service a restore wants stopped before and started after it ("" for none): the engine's hook."""
    ref = action.ref
    return ref[2] if action.id == "restore" and len(ref) == 3 and ref[1] == "service" else ""
