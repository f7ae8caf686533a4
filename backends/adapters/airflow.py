"""An Airflow instance through its REST API: one row per DAG, its runs and tasks, task logs, and actions.

v2 is Airflow 3 (a JWT from ``POST /auth/token``), v1 is Airflow 2 (basic auth). A poll costs a bounded,
small number of requests however many DAGs there are: the DAG list in pages of 100, the import errors, the
failed runs of the last 24 h, and the runs changed since the previous poll. The API does not say which run of
a DAG is its latest, so each DAG's newest run and newest success are read once (in bulk, 100 DAGs a request,
then one by one for the DAGs the bulk answer did not settle, within the poll's time budget) and kept up to date
from the changed runs after that.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from ..actions import Action, ActionResult, Emit, Tier, Transcript
from ..logtext import LEVELS, Stamper
from ..model import Listing, LogLine, PipelineItem, PipelineReading, Reading, State
from .airflow_api import (
    FINISHED_TASK_STATES,
    LOG_CONTEXT,
    MAX_PAGES,
    PAGE,
    RUNNING_TASK_STATES,
    AirflowApi,
    Budget,
    DagRuns,
    Run,
    _instance_line,
    _instance_name,
    _traceback,
    _unwrap_v1_log,
    epoch,
    iso,
    item_state,
    parse_conf,
)
from .json_api import ApiError
from .pipeline_base import PipelineError, PipelineSource
from .text import one_line

T = TypeVar("T")
RUNS_SHOWN = 25
DAY = 86400.0
FEED_OVERLAP = 120.0  # runs changed this long before the previous poll are read again: commits land late
FILL_AT_ONCE = 8
MAX_LOG_LINES = 20_000


class AirflowInstance(AirflowApi, PipelineSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self._connect(options)
        self.globs: list[str] = list(options.get("dags") or ())
        self._runs: dict[str, DagRuns] = {}  # DAGs whose runs have been read, by id
        self._feed_since: float | None = None  # server time from which changed runs are read next
        self._latest_failed: dict[str, str] = {}  # DAG id -> its newest failed run, for the DAG's clear

    def describe(self) -> str:
        return f"Airflow at {self.api.where}"

    async def close(self) -> None:
        await self.api.close()

    # -- polling -----------------------------------------------------------------------------------

    def wanted(self, dag_id: str) -> bool:
        return not self.globs or any(fnmatch.fnmatchcase(dag_id, glob) for glob in self.globs)

    async def read(self) -> list[Reading]:
        budget = Budget(self.timeout * 0.9)
        try:
            dags = [d for d in await self.pages(f"{self.prefix}/dags", "dags", budget)
                    if self.wanted(str(d.get("dag_id")))]
            started = self.server_now()  # after the first request: a login has learnt the server's clock
            errors = await self.pages(f"{self.prefix}/importErrors", "import_errors", budget)
            failed = await self._failed_runs(started - DAY, budget)
            await self._read_changed_runs(started, budget)
        except ApiError as exc:
            return self.failed(str(exc))
        ids = {str(d.get("dag_id")) for d in dags}
        self._runs = {dag_id: runs for dag_id, runs in self._runs.items() if dag_id in ids}
        await self._fill([dag_id for dag_id in sorted(ids) if dag_id not in self._runs], budget)
        self._latest_failed = self._newest_failed(failed)
        now = self.clock()
        unread = len(ids - self._runs.keys())
        rows = [self._dag_reading(d, failed.get(str(d.get("dag_id")), []), now, unread) for d in dags]
        return rows + [self._import_error(e) for e in errors]

    async def _failed_runs(self, since: float, budget: Budget) -> dict[str, list[Run]]:
        """The runs that failed since ``since`` (server time), newest first, by DAG."""
        found: dict[str, list[Run]] = {}
        for offset in range(0, PAGE * MAX_PAGES, PAGE):
            answer = await self.call("POST", f"{self.prefix}/dags/~/dagRuns/list", budget, body={
                "states": ["failed"], "end_date_gte": iso(since), "order_by": "-end_date",
                "page_limit": PAGE, "page_offset": offset})
            page = answer.get("dag_runs") or []
            for raw in page:
                run = Run.parse(raw)
                found.setdefault(run.dag_id, []).append(run)
            if len(page) < PAGE:
                break
        return found

    async def _read_changed_runs(self, started: float, budget: Budget) -> None:
        """Merge the runs changed since the previous poll into what is known; the first poll reads none
        (every DAG is then read whole by ``_fill``)."""
        if self._feed_since is not None:
            changed = await self.pages(f"{self.prefix}/dags/~/dagRuns", "dag_runs", budget, {
                "updated_at_gte": iso(self._feed_since - FEED_OVERLAP), "order_by": "updated_at"})
            for raw in changed:
                runs = self._runs.get(str(raw.get("dag_id")))
                if runs is not None:
                    runs.merge(Run.parse(raw))
        self._feed_since = started

    async def _fill(self, dag_ids: list[str], budget: Budget) -> None:
        """Read the newest runs of DAGs not read yet: in bulk, 100 DAGs a request, then one by one (a few at
        once) those the bulk answer could not settle, until the budget is spent."""
        try:
            for start in range(0, len(dag_ids), PAGE):
                if budget.spent():
                    return
                await self._fill_in_bulk(dag_ids[start:start + PAGE], budget)
        except ApiError:
            pass  # out of time, most likely: the one by one reads try what they can
        queue = [dag_id for dag_id in reversed(dag_ids) if dag_id not in self._runs]

        async def worker() -> None:
            while queue and not budget.spent():
                dag_id = queue.pop()
                try:
                    self._runs[dag_id] = await self._read_dag_runs(dag_id, budget)
                except ApiError:
                    return  # out of time, or the DAG just went away: the next poll tries again

        await asyncio.gather(*(worker() for _ in range(FILL_AT_ONCE)))

    async def _fill_in_bulk(self, dag_ids: list[str], budget: Budget) -> None:
        """The newest 100 runs of these DAGs together hold, for each DAG among them, its newest run and (if
        one is there) its newest success; when they are all its runs, a DAG missing from them has none."""
        answer = await self.call("POST", f"{self.prefix}/dags/~/dagRuns/list", budget, body={
            "dag_ids": dag_ids, "order_by": "-execution_date" if self.v1 else "-run_after", "page_limit": PAGE})
        page = answer.get("dag_runs") or []
        found: dict[str, DagRuns] = {}
        for raw in page:
            run = Run.parse(raw)
            found.setdefault(run.dag_id, DagRuns()).merge(run)
        whole = len(page) >= int(answer.get("total_entries") or 0)
        for dag_id in dag_ids:
            runs = found.get(dag_id)
            if whole or (runs is not None and runs.last_success is not None):
                self._runs[dag_id] = runs or DagRuns()

    async def _read_dag_runs(self, dag_id: str, budget: Budget) -> DagRuns:
        order = "-execution_date" if self.v1 else "-run_after"
        path = self.dag_path(dag_id, "dagRuns")
        answer = await self.call("GET", path, budget, params={"order_by": order, "limit": 5})
        runs = DagRuns()
        for raw in answer.get("dag_runs") or ():
            runs.merge(Run.parse(raw))
        if runs.latest is not None and runs.last_success is None:
            answer = await self.call("GET", path, budget, params={"state": "success", "order_by": "-end_date",
                                                                  "limit": 1})
            for raw in answer.get("dag_runs") or ():
                runs.merge(Run.parse(raw))
        return runs

    def _newest_failed(self, failed: dict[str, list[Run]]) -> dict[str, str]:
        newest = {dag_id: runs[0].run_id for dag_id, runs in failed.items() if runs}
        for dag_id, runs in self._runs.items():
            if runs.latest is not None and runs.latest.state == "failed":
                newest[dag_id] = runs.latest.run_id
        return newest

    def _dag_reading(self, dag: dict[str, Any], failed: list[Run], now: float, unread: int) -> PipelineReading:
        dag_id, paused = str(dag.get("dag_id")), bool(dag.get("is_paused"))
        next_run = None if paused else epoch(dag.get("next_dagrun_run_after") or dag.get("next_dagrun_create_after"))
        fields = {"paused": paused, "next_run": next_run, "failures": len(failed), "ref": ("dag", dag_id)}
        runs = self._runs.get(dag_id)
        if runs is None:
            return self.reading(dag_id, State.UNKNOWN, f"runs not read yet ({unread} DAGs left to read)",
                                status="", **fields)
        last = runs.latest
        state, reason = self._verdict(last, len(failed))
        if paused:
            reason = f"{reason} · paused" if state is not State.OK else "paused"
        if last is None:
            return self.reading(dag_id, state, reason, status="no runs", last_success=runs.last_success, **fields)
        duration = last.duration if last.end is not None or last.start is None else now - last.start
        return self.reading(dag_id, state, reason, status=last.state, last_start=last.start, last_duration=duration,
                            last_success=runs.last_success, **fields)

    def _verdict(self, last: Run | None, failures: int) -> tuple[State, str]:
        """No ages here: the table's Last run column has them, and a reason that changed with the clock would
        redraw a thousand rows at every poll."""
        in_day = f"{failures} failed run{'s' if failures != 1 else ''} in 24 h"
        if last is None:
            return State.OK, "no runs yet"
        if last.state == "failed":
            more = f" · {in_day}" if failures > 1 else ""
            return State.CRITICAL, f"last run failed ({last.run_id}){more}"
        if failures:
            return State.WARN, in_day
        if last.state == "running" and last.start is not None:
            return State.OK, "running"
        if last.state == "success" and last.end is not None:
            return State.OK, "last run succeeded"
        return State.OK, last.state or "no state"

    def _import_error(self, error: dict[str, Any]) -> PipelineReading:
        filename = str(error.get("filename") or "?")
        lines = [line for line in str(error.get("stack_trace") or "").splitlines() if line.strip()]
        return self.reading(f"import error: {filename}", State.CRITICAL,
                            one_line(f"import error: {lines[-1] if lines else 'no detail'}"),
                            status="import error", ref=("import-error", filename), can_open=False,
                            last_start=epoch(error.get("timestamp")))

    # -- drill-down --------------------------------------------------------------------------------

    def _read_budget(self) -> Budget:
        return Budget(max(10.0, self.timeout) * 0.9)

    async def _reading(self, what: str, work: Awaitable[T]) -> T:
        try:
            return await work
        except ApiError as exc:
            raise PipelineError(one_line(f"cannot read {what}: {exc}")) from None

    async def open(self, ref: tuple[str, ...]) -> Listing:
        if ref[:1] == ("dag",) and len(ref) == 2:
            return await self._reading(f"the runs of {ref[1]}", self._open_dag(ref[1]))
        if ref[:1] == ("run",) and len(ref) == 3:
            return await self._reading(f"the tasks of {ref[1]}/{ref[2]}", self._open_run(ref[1], ref[2]))
        return await super().open(ref)

    async def _open_dag(self, dag_id: str) -> Listing:
        order = "-execution_date" if self.v1 else "-run_after"
        answer = await self.call("GET", self.dag_path(dag_id, "dagRuns"), self._read_budget(),
                                 params={"order_by": order, "limit": RUNS_SHOWN})
        now = self.clock()
        items = tuple(self._run_item(Run.parse(raw), now) for raw in answer.get("dag_runs") or ())
        return Listing(title=dag_id, items=items, note=f"the latest {RUNS_SHOWN} runs" if items else "no runs yet")

    def _run_item(self, run: Run, now: float) -> PipelineItem:
        duration = run.duration if run.end is not None or run.start is None else now - run.start
        note = " · ".join(part for part in (run.run_type, run.note) if part)
        return PipelineItem(ref=("run", run.dag_id, run.run_id), name=run.run_id, state=item_state(run.state),
                            status=run.state, started=run.start, duration=duration, note=one_line(note),
                            can_open=True)

    async def _task_instances(self, dag_id: str, run_id: str, budget: Budget) -> list[dict[str, Any]]:
        return await self.pages(self.dag_path(dag_id, "dagRuns", run_id, "taskInstances"), "task_instances", budget)

    async def _open_run(self, dag_id: str, run_id: str) -> Listing:
        instances = await self._task_instances(dag_id, run_id, self._read_budget())
        instances.sort(key=lambda t: (epoch(t.get("start_date")) or float("inf"), t.get("task_id") or "",
                                      t.get("map_index") or -1))
        now = self.clock()
        items = tuple(self._task_item(dag_id, run_id, t, now) for t in instances)
        return Listing(title=f"{dag_id} / {run_id}", items=items, note=f"{len(items)} task instances")

    def _task_item(self, dag_id: str, run_id: str, task: dict[str, Any], now: float) -> PipelineItem:
        task_id, tries = str(task.get("task_id")), int(task.get("try_number") or 0)
        map_index = int(task.get("map_index") if task.get("map_index") is not None else -1)
        status = str(task.get("state") or "no status")
        start, end = epoch(task.get("start_date")), epoch(task.get("end_date"))
        duration = task.get("duration") if end is not None else (now - start if start is not None else None)
        operator = task.get("operator_name") or task.get("operator") or ""
        note = " · ".join(part for part in (f"try {tries}" if tries else "", operator) if part)
        return PipelineItem(ref=("task", dag_id, run_id, task_id, str(tries), str(map_index)),
                            name=task_id if map_index < 0 else f"{task_id}[{map_index}]", state=item_state(status),
                            status=status, started=start, duration=duration, note=note, has_log=tries > 0)

    # -- logs --------------------------------------------------------------------------------------

    async def log(self, ref: tuple[str, ...]) -> list[LogLine]:
        if ref[:1] != ("task",) or len(ref) != 6:
            return await super().log(ref)
        _, dag_id, run_id, task_id, tries, map_index = ref
        path = self.dag_path(dag_id, "dagRuns", run_id, "taskInstances", task_id, "logs", tries)
        answer = await self._reading(f"the log of {task_id} try {tries}", self.call(
            "GET", path, self._read_budget(), params={"full_content": "true", "map_index": map_index}))
        return self.log_lines(answer.get("content"))[-MAX_LOG_LINES:]

    def log_lines(self, content: Any) -> list[LogLine]:
        """v2 gives structured events (or plain lines when it could not parse them), v1 one text."""
        stamper = Stamper(self.name, self.clock)
        if isinstance(content, str):
            return [stamper.line(text) for text in _unwrap_v1_log(content).splitlines()]
        entries = list(content or ())
        stamps = [epoch(entry.get("timestamp")) if isinstance(entry, dict) else None for entry in entries]
        # a line without a time (the log file's own header) takes the time of the one before, else the first time
        last = next((stamp for stamp in stamps if stamp is not None), self.clock())
        lines: list[LogLine] = []
        for entry, stamp in zip(entries, stamps):
            if isinstance(entry, dict):
                last = stamp or last
                lines.extend(self._event_lines(entry, last))
            else:
                lines.append(stamper.line(str(entry)))
        return lines

    def _event_lines(self, entry: dict[str, Any], ts: float) -> list[LogLine]:
        raw_level = str(entry.get("level") or "").upper()
        level = "error" if raw_level == "EXCEPTION" else LEVELS.get(raw_level, "")
        extras = " ".join(f"{key}={value}" for key, value in entry.items() if key not in LOG_CONTEXT)
        text = str(entry.get("event") or "") + (f" {extras}" if extras else "")
        texts = (text.splitlines() or [""]) + _traceback(entry.get("error_detail"))
        return [LogLine(self.name, line, ts, level) for line in texts]

    # -- actions -----------------------------------------------------------------------------------

    def item_actions(self, row: PipelineReading | PipelineItem) -> list[Action]:
        if row.ref[:1] == ("dag",) and len(row.ref) == 2:
            return self._dag_actions(row.ref[1], bool(getattr(row, "paused", False)))
        if row.ref[:1] == ("run",) and len(row.ref) == 3:
            return self._run_actions(row.ref[1], row.ref[2], getattr(row, "status", ""))
        return []

    def _action(self, action_id: str, title: str, tier: Tier, target: str, ref: tuple[str, ...], method: str,
                path: str, body: Any, expect: str, **extra: Any) -> Action:
        call = f"{method} {path} {json.dumps(body)}"
        return Action(target=target, id=action_id, title=title, tier=tier, call=call, timeout=30.0, expect=expect,
                      source=self.name, ref=ref, confirm=ref[1], **extra)

    def _dag_actions(self, dag_id: str, paused: bool) -> list[Action]:
        target, ref = f"{self.name}:{dag_id}", ("dag", dag_id)
        switch = "unpause" if paused else "pause"
        actions = [
            self._action("trigger", "Trigger", Tier.DISRUPTIVE, target, ref, "POST", self.dag_path(dag_id, "dagRuns"),
                         self._trigger_body(None), "triggering", ask="conf as JSON (empty for none)"),
            self._action(switch, switch.capitalize(), Tier.DISRUPTIVE, target, ref, "PATCH", self.dag_path(dag_id),
                         {"is_paused": not paused}, f"{switch}ing"),
        ]
        run_id = self._latest_failed.get(dag_id)
        if run_id:  # the failed tasks of its newest failed run
            actions.append(self._clear_action(target, dag_id, run_id))
        return actions

    def _run_actions(self, dag_id: str, run_id: str, status: str) -> list[Action]:
        target, ref = f"{self.name}:{dag_id}/{run_id}", ("run", dag_id, run_id)
        actions = [self._clear_action(target, dag_id, run_id)]
        for state in ("failed", "success"):
            if status != state:
                actions.append(self._action(f"mark-{state}", f"Mark {state}", Tier.DESTRUCTIVE, target, ref, "PATCH",
                                            self.dag_path(dag_id, "dagRuns", run_id), {"state": state},
                                            f"marking {state}"))
        return actions

    def _clear_action(self, target: str, dag_id: str, run_id: str) -> Action:
        return self._action("clear", "Clear failed tasks", Tier.DESTRUCTIVE, target, ("run", dag_id, run_id), "POST",
                            self.dag_path(dag_id, "clearTaskInstances"), self._clear_body(run_id, dry_run=False),
                            "clearing")

    def _trigger_body(self, conf: dict[str, Any] | None) -> dict[str, Any]:
        if self.v1:
            return {"conf": conf or {}}
        return {"logical_date": None, **({"conf": conf} if conf else {})}

    @staticmethod
    def _clear_body(run_id: str, dry_run: bool) -> dict[str, Any]:
        return {"dry_run": dry_run, "only_failed": True, "reset_dag_runs": True, "dag_run_id": run_id}

    def with_value(self, action: Action, value: str) -> Action:
        if action.id != "trigger":
            return super().with_value(action, value)
        conf = parse_conf(value)
        body = self._trigger_body(conf)
        return replace(action, value=value, call=f"POST {self.dag_path(action.ref[1], 'dagRuns')} {json.dumps(body)}")

    @staticmethod
    def _own(action: Action) -> bool:
        """One of this adapter's actions, not a command or request the config gave the same id."""
        return bool(action.ref) and not action.argv and action.request is None

    async def preview(self, action: Action) -> list[str] | None:
        if not self._own(action):
            return None
        budget = self._read_budget()
        if action.id == "clear":
            _, dag_id, run_id = action.ref
            answer = await self._reading("what clear would do", self.call(
                "POST", self.dag_path(dag_id, "clearTaskInstances"), budget, body=self._clear_body(run_id, True)))
            return [_instance_line(t) for t in answer.get("task_instances") or ()]
        if action.id in ("mark-failed", "mark-success"):
            return await self._reading("the run to mark", self._mark_preview(action, budget))
        return None

    async def _mark_preview(self, action: Action, budget: Budget) -> list[str]:
        _, dag_id, run_id = action.ref
        new = action.id.removeprefix("mark-")
        run = await self.call("GET", self.dag_path(dag_id, "dagRuns", run_id), budget)
        lines = [f"run {run_id}: {run.get('state') or 'no state'} → {new}"]
        for task in await self._task_instances(dag_id, run_id, budget):
            state = task.get("state") or "no status"
            becomes = self._marked_task_state(state, new)
            if becomes:
                lines.append(f"task {_instance_name(task)}: {state} → {becomes}")
        return lines

    def _marked_task_state(self, state: str, new: str) -> str:
        """What marking the run makes of one task: Airflow 3 ends running tasks with the run's state and skips
        the ones not started; Airflow 2 marks every task success when the run is marked success."""
        if self.v1 and new == "success":
            return "" if state == "success" else "success"
        if state in RUNNING_TASK_STATES:
            return new
        return "" if state in FINISHED_TASK_STATES else "skipped"

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        if not self._own(action):
            return await super().run(action, emit)  # the config's own commands and requests
        transcript = Transcript(action, emit)
        try:
            await self._do(action, Budget(action.timeout), transcript.say)
        except (ApiError, ValueError) as exc:
            error = one_line(str(exc))
            transcript.say(error)
            return transcript.result(False, error)
        return transcript.result(True)

    async def _do(self, action: Action, budget: Budget, say: Callable[[str], None]) -> None:
        dag_id = action.ref[1]
        if action.id == "trigger":
            run = await self.call("POST", self.dag_path(dag_id, "dagRuns"), budget,
                                  body=self._trigger_body(parse_conf(action.value)))
            say(f"triggered {dag_id}: run {run.get('dag_run_id')} is {run.get('state')}")
        elif action.id in ("pause", "unpause"):
            dag = await self.call("PATCH", self.dag_path(dag_id), budget, body={"is_paused": action.id == "pause"})
            say(f"{dag_id} is {'paused' if dag.get('is_paused') else 'running its schedule (unpaused)'}")
        elif action.id == "clear":
            run_id = action.ref[2]
            answer = await self.call("POST", self.dag_path(dag_id, "clearTaskInstances"), budget,
                                     body=self._clear_body(run_id, False))
            cleared = [_instance_name(t) for t in answer.get("task_instances") or ()]
            say(f"cleared {len(cleared)} task instance{'s' if len(cleared) != 1 else ''} of {run_id}"
                + (f": {', '.join(cleared)}" if cleared else " (none had failed)"))
        else:
            run_id, new = action.ref[2], action.id.removeprefix("mark-")
            run = await self.call("PATCH", self.dag_path(dag_id, "dagRuns", run_id), budget, body={"state": new})
            say(f"run {run_id} of {dag_id} is {run.get('state')} now")
