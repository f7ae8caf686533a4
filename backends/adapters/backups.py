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
    Work,
    dump_name,
    pg_dump_argv,
    pg_restore_argv,
)
from ..backup_restore import check_target, restore_set, verify_set
from ..backup_sets import (
    FORMAT,
    MANIFEST,
    PARTIAL_PREFIX,
    SET_NAME,
    JobSets,
    Unfinished,
    fsync_dir,
    fsync_tree,
    list_sets,
    prune_plan,
    set_name,
    stale_unfinished,
    write_json_atomic,
)
from ..durations import format_duration
from ..model import BackupReading, BackupSet, Listing, PipelineItem, Reading, State
from ..text import human_bytes, one_line
from .base import Source

BUSY: set[str] = set()  # .partial-* directories this process is writing now: never pruned


def age_text(seconds: float) -> str:
    return f"{format_duration(seconds)} ago"


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
        self._listing = listing = list_sets(self.job_dir)
        return listing

    def _reading(self, state: State, reason: str, **fields: Any) -> BackupReading:
        return BackupReading(key=self.name, source=self.name, state=state, reason=one_line(reason), ts=self.clock(),
                             kind=self.kind, dest=str(self.dest), rpo=self.rpo, **fields)

    def judge(self, listing: JobSets, now: float) -> BackupReading:
        sets = listing.sets
        # a set whose last verify failed is no restore point: the RPO is judged by the newest other one
        good = next((s for s in sets if not s.verified.startswith("failed")), None)
        last_good = (good.finished or good.started) if good else None
        parts: list[str] = []
        if good is None or last_good is None:
            state = State.CRITICAL
            parts.append(f"no backup yet in {self.job_dir}" if not sets else "no good set: every set failed verify")
        else:
            age = now - last_good
            rpo = f" (rpo {format_duration(self.rpo)})" if self.rpo else ""
            parts.append(f"last good {age_text(age)}{rpo}")
            state = State.OK
            if self.rpo and age > 2 * self.rpo:
                state = State.CRITICAL
            elif self.rpo and age > self.rpo:
                state = State.WARN
        if sets:
            parts.append(f"{len(sets)} set{'s' * (len(sets) != 1)}, {human_bytes(listing.size)}")
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
        partial = [u for u in listing.unfinished if u.partial]
        broken = [u for u in listing.unfinished if not u.partial]
        if partial:
            parts.append(f"{len(partial)} unfinished set{'s' * (len(partial) != 1)} (a run was killed?)")
        if broken:
            parts.append(f"{len(broken)} set{'s' * (len(broken) != 1)} without a readable manifest")
        return self._reading(state, " · ".join(parts), last_good=last_good, sets=sets)

    # -- drill-down --------------------------------------------------------------------------------

    async def open(self, ref: tuple[str, ...] = ()) -> Listing:
        listing = await asyncio.to_thread(self._list)
        items = tuple(self.item_of(s) for s in listing.sets)
        items += tuple(PipelineItem(("unfinished", u.name), u.name, State.WARN, status="unfinished",
                                    started=u.mtime, note=u.why) for u in listing.unfinished)
        return Listing(title=f"{self.name} · backup sets in {self.job_dir}", items=items,
                       note=f"{len(listing.sets)} sets, {human_bytes(listing.size)}; newest first")

    @staticmethod
    def item_of(backup: BackupSet) -> PipelineItem:
        if backup.verified == "ok":
            state, status = State.OK, "verified"
        elif backup.verified.startswith("failed"):
            state, status = State.CRITICAL, "verify failed"
        else:
            state, status = State.OK, "not verified"
        duration = backup.finished - backup.started if backup.finished is not None else None
        note = f"{human_bytes(backup.size)} · {backup.files} file{'s' * (backup.files != 1)}"
        if backup.verified.startswith("failed"):
            note += f" · {backup.verified}"
        return PipelineItem(("set", backup.name), backup.name, state, status=status, started=backup.started,
                            duration=duration, note=note)

    # -- actions -----------------------------------------------------------------------------------

    def _sets(self) -> JobSets:
        """The listing of the last poll (actions() runs on the event loop: no I/O when there is one)."""
        return self._listing if self._listing is not None else list_sets(self.job_dir)

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
            actions += self._set_actions(listing.sets[0])
        return actions

    def item_actions(self, item: Any) -> list[Action]:
        ref = getattr(item, "ref", ())
        if len(ref) == 2 and ref[0] == "set":
            found = next((s for s in self._sets().sets if s.name == ref[1]), None)
            return self._set_actions(found) if found is not None else []
        return []

    def _set_actions(self, backup: BackupSet) -> list[Action]:
        checks = {"postgres": "; pg_restore --list", "sqlite": "; PRAGMA integrity_check on a copy"}
        actions = [self._action("verify", f"Verify {backup.name}", Tier.READ,
                                f"re-hash {backup.path} against its manifest{checks.get(self.kind, '')}",
                                ref=(backup.name,), expect="verifying")]
        if self.kind == "command" and not self.options.get("restore"):
            return actions  # nothing says how to restore it
        target = self.options.get("restore_to") or ""
        service = ("service", self.service) if self.service else ()
        restore = self._action("restore", f"Restore {backup.name}", Tier.DESTRUCTIVE, "", ref=(backup.name, *service),
                               expect="restoring", confirm=self.name,
                               ask="" if target or self.kind == "command" else self._target_prompt(), value=target)
        return [*actions, replace(restore, call=self.restore_text(restore))]

    def _target_prompt(self) -> str:
        return {"files": "an empty or new directory to unpack into (absolute path)",
                "sqlite": "the database file to write (absolute path)",
                "postgres": "the database to restore into (created when missing)"}[self.kind]

    def _prune_action(self, listing: JobSets) -> Action:
        names = self._plan_names(listing)
        rules = ", ".join(f"{k} {v}" for k, v in (("keep", self.keep and format_duration(self.keep)),
                                                   ("keep_last", self.keep_last)) if v) or "no keep rule"
        return self._action("prune", "Prune old sets", Tier.DESTRUCTIVE,
                            f"delete {len(names)} of {self.job_dir}: {', '.join(names) or 'nothing'} ({rules})",
                            ref=("plan", *names), expect="pruning", confirm=self.name)

    def _plan(self, listing: JobSets) -> tuple[list[BackupSet], list[Unfinished]]:
        now = self.clock()
        return (prune_plan(listing.sets, self.keep, self.keep_last, now),
                stale_unfinished(listing.unfinished, time.time(), BUSY))

    def _plan_names(self, listing: JobSets) -> list[str]:
        sets, leftovers = self._plan(listing)
        return [s.name for s in sets] + [u.name for u in leftovers]

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
            what = f"unpack {name}/files.tar.gz into {target}"
        elif self.kind == "sqlite":
            what = f"write {target} from {name} (an existing file is kept as {Path(target).name}.before-restore-*)"
        elif self.kind == "postgres":
            what = shlex.join(pg_restore_argv(self.options, f"{name}/{dump_name(self.options)}", target))
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
        check_target(self.kind, value, self.options.get("restore_to"))  # ValueError: one line
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
        listing = list_sets(self.job_dir)
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
        if self._plan_names(listing) != list(action.ref[1:]):
            lines.append("the sets to prune changed since this was planned: open the action again")
        return lines

    def _restore_preview(self, action: Action) -> list[str]:
        found = next((s for s in list_sets(self.job_dir).sets if s.name == action.ref[0]), None)
        if found is None:
            return [f"set {action.ref[0]} is gone"]
        target = action.value or "<asked before confirming>"
        what = (f"restore set {found.name} · {human_bytes(found.size)}, {found.files} files · taken "
                f"{age_text(self.clock() - found.started)} · {found.verified or 'not verified'}")
        lines = [what, f"into {target}"]
        if self.service:
            lines.append(f"service {self.service} is stopped before and started after")
        return lines

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
        except BackupError as exc:
            return transcript.result(False, str(exc))
        except OSError as exc:
            return transcript.result(False, one_line(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")))
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
        for n in range(2, 1000):  # two runs in one second (a failed one leaves its partial directory)
            partial = self.job_dir / f"{PARTIAL_PREFIX}{name}-{os.getpid()}"
            if not (self.job_dir / name).exists() and not partial.exists():
                break
            name = f"{set_name(clock)}-{n}"
        partial.mkdir()
        BUSY.add(str(partial))
        try:
            made: Made = MAKERS[self.kind](self.options, partial, work)
            work.check()
            manifest = {"format": FORMAT, "job": self.name, "kind": self.kind, "name": name, "started": clock,
                        "finished": self.clock(), "duration": round(time.monotonic() - started, 3),
                        "source": self.run_text(), "tools": made.tools, "files": made.files}
            write_json_atomic(partial / MANIFEST, manifest)
            fsync_tree(partial)
            os.rename(partial, self.job_dir / name)
            fsync_dir(self.job_dir)
        finally:
            BUSY.discard(str(partial))
        size = sum(f["size"] for f in made.files)
        return f"set {name}: {len(made.files)} file{'s' * (len(made.files) != 1)}, {human_bytes(size)} in {format_duration(time.monotonic() - started)}"

    def _find(self, name: str) -> BackupSet:
        found = next((s for s in list_sets(self.job_dir).sets if s.name == name), None)
        if found is None:
            raise BackupError(f"set {name} is not in {self.job_dir} (pruned, or not finished)")
        return found

    def _verify(self, action: Action, work: Work) -> str:
        backup = self._find(action.ref[0])
        problem = verify_set(self.kind, self.options, Path(backup.path), work, self.clock)
        if problem:
            raise BackupError(f"verify of {backup.name} FAILED: {problem}")
        return f"set {backup.name} verified: every file matches its sha256"

    def _prune(self, action: Action, work: Work) -> str:
        listing = list_sets(self.job_dir)
        planned = list(action.ref[1:])
        if self._plan_names(listing) != planned:
            raise BackupError("the sets to prune changed since the preview; nothing was deleted: look again")
        for name in planned:
            if not (SET_NAME.match(name) or name.startswith(PARTIAL_PREFIX)) or "/" in name:
                raise BackupError(f"refusing to delete {name!r}: not a backup set's name")
        for name in planned:
            work.check()
            path = self.job_dir / name
            # renamed first: a prune killed halfway leaves an unfinished directory, never a set that looks good
            doomed = path if name.startswith(PARTIAL_PREFIX) else self.job_dir / f"{PARTIAL_PREFIX}pruned-{name}-{os.getpid()}"
            if doomed != path:
                os.rename(path, doomed)
                fsync_dir(self.job_dir)
            shutil.rmtree(doomed)
            work.emit(f"deleted {name}")
        return f"pruned {len(planned)} of {self.job_dir}"

    def _restore(self, action: Action, work: Work) -> str:
        target = action.value or self.options.get("restore_to") or ""
        if self.kind != "command":
            check_target(self.kind, target, self.options.get("restore_to"))
        backup = self._find(action.ref[0])
        restore_set(self.kind, self.options, Path(backup.path), target, work)
        return f"restored set {backup.name}" + (f" into {target}" if target else "")


def service_of(action: Action) -> str:
    """The service a restore wants stopped before and started after it ("" for none): the engine's hook."""
    ref = action.ref
    return ref[2] if action.id == "restore" and len(ref) == 3 and ref[1] == "service" else ""
