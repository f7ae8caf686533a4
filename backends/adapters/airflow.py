"""An Airflow instance through its REST API: one row per DAG, its runs and tasks, task logs, and actions.

v2 is Airflow 3 (a JWT from ``POST /auth/token``), v1 is Airflow 2 (basic auth). A poll costs a bounded,
small number of requests however many DAGs there are: the DAG list in pages of 100, the import errors, the
failed runs of the last 24 h, and the runs changed since the previous poll. The API does not say which run of
a DAG is its latest, so each DAG's newest run and newest success are read once (in bulk, 100 DAGs a request,
then one by one for the DAGs the bulk answer did not settle, within the poll's time budget) and kept up to date
from the changed runs after that.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import fnmatch
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, TypeVar

from ..actions import Action, ActionResult, Emit, Tier
from ..logtext import LEVELS, Stamper
from ..model import Listing, LogLine, PipelineItem, PipelineReading, Reading, State
from .json_api import ApiError, JsonApi, segment
from .pipeline_base import FAILED_WORDS, PipelineError, PipelineSource
from .text import one_line

T = TypeVar("T")
PAGE = 100
MAX_PAGES = 20  # a listing (DAGs, changed runs, task instances) longer than 2,000 rows is cut
RUNS_SHOWN = 25
DAY = 86400.0
RENEW_BEFORE = 60.0  # seconds before a token expires that a new one is fetched
FEED_OVERLAP = 120.0  # runs changed this long before the previous poll are read again: commits land late
FILL_AT_ONCE = 8
MAX_LOG_LINES = 20_000
RUNNING_TASK_STATES = {"running", "deferred", "up_for_reschedule", "awaiting_input"}
FINISHED_TASK_STATES = {"success", "failed", "skipped", "upstream_failed", "removed"}
WORKING_TASK_STATES = {"up_for_retry", "restarting"}
# log fields that say where a line came from, not what it says
_FRACTION = re.compile(r"\.(\d+)")
LOG_CONTEXT = {"timestamp", "event", "level", "logger", "filename", "lineno", "task_id", "dag_id", "run_id",
               "map_index", "try_number", "ti_id", "error_detail"}


def epoch(value: Any) -> float | None:
    """An ISO 8601 time from the API as epoch seconds (a time without a zone is UTC)."""
    if not value or not isinstance(value, str):
        return None
    # Python 3.10 reads only 3 or 6 digits of a fraction, and no "Z"
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "00000")[:6], value.replace("Z", "+00:00"), count=1)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def jwt_times(token: str) -> tuple[float | None, float | None]:
    """``(iat, exp)`` of a JWT, unverified: only to know when to fetch the next one."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return (float(claims["iat"]) if "iat" in claims else None, float(claims["exp"]) if "exp" in claims else None)
    except (IndexError, ValueError, TypeError, KeyError):
        return None, None


@dataclass(frozen=True)
class Run:
    dag_id: str
    run_id: str
    state: str
    run_after: float  # when it was due: orders a DAG's runs
    start: float | None
    end: float | None
    duration: float | None
    run_type: str = ""
    note: str = ""

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Run:
        start, end = epoch(raw.get("start_date")), epoch(raw.get("end_date"))
        duration = raw.get("duration")
        if duration is None and start is not None and end is not None:
            duration = end - start  # v1 runs have no duration
        due = raw.get("run_after") or raw.get("logical_date") or raw.get("execution_date") or raw.get("queued_at")
        return cls(str(raw.get("dag_id") or ""), str(raw.get("dag_run_id") or ""), str(raw.get("state") or ""),
                   epoch(due) or start or 0.0, start, end, duration, str(raw.get("run_type") or ""),
                   str(raw.get("note") or ""))


@dataclass
class DagRuns:
    """What is known of one DAG's runs: its newest run and the end of its newest success."""

    latest: Run | None = None
    last_success: float | None = None

    def merge(self, run: Run) -> None:
        if self.latest is None or run.run_id == self.latest.run_id or run.run_after >= self.latest.run_after:
            self.latest = run
        if run.state == "success" and run.end is not None and (self.last_success or 0) < run.end:
            self.last_success = run.end


class Budget:
    """What is left of a time limit, for each request in turn."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.05, self.deadline - time.monotonic())

    def spent(self) -> bool:
        return time.monotonic() >= self.deadline


def item_state(status: str) -> State:
    if status in FAILED_WORDS:
        return State.CRITICAL
    return State.WARN if status in WORKING_TASK_STATES else State.OK


class AirflowInstance(PipelineSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.v1 = options.get("api") == "v1"
        self.prefix = "/api/v1" if self.v1 else "/api/v2"
        self.username: str = options.get("username") or ""
        self.password: str = options.get("password") or ""
        self.globs: list[str] = list(options.get("dags") or ())
        headers = {}
        if self.v1 and self.username:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        self.api = JsonApi(options["url"], headers, options.get("verify_tls", True), options.get("ca_file"))
        self._token = ""
        self._renew_at = 0.0
        self._skew = 0.0  # the server's clock minus ours, learnt from a token's issue time
        self._login_lock = asyncio.Lock()
        self._runs: dict[str, DagRuns] = {}  # DAGs whose runs have been read, by id
        self._feed_since: float | None = None  # server time from which changed runs are read next
        self._latest_failed: dict[str, str] = {}  # DAG id -> its newest failed run, for the DAG's clear

    def describe(self) -> str:
        return f"Airflow at {self.api.where}"

    async def close(self) -> None:
        await self.api.close()

    # -- requests ----------------------------------------------------------------------------------

    def server_now(self) -> float:
        return self.clock() + self._skew

    async def _login(self, budget: Budget) -> None:
        try:
            answer = await self.api.request("POST", "/auth/token", timeout=budget.left(),
                                            body={"username": self.username, "password": self.password})
        except ApiError as exc:
            if exc.status is None:
                raise
            raise ApiError(f"login refused for {self.username} at {self.api.where}: {exc}", exc.status) from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not token:
            raise ApiError(f"login at {self.api.where} gave no access_token")
        issued, expires = jwt_times(token)
        now = self.clock()
        if issued is not None:
            self._skew = issued - now
        # the token's lifetime is measured on our clock, so a skewed server clock does not matter
        lifetime = (expires - issued) if issued is not None and expires is not None else float("inf")
        self._token, self._renew_at = token, now + max(lifetime - RENEW_BEFORE, lifetime / 2)

    async def _auth(self, budget: Budget, stale: str = "") -> dict[str, str]:
        if self.v1 or not self.username:
            return {}
        async with self._login_lock:
            if self._token == stale or self.clock() >= self._renew_at:  # expired, or refused just now
                await self._login(budget)
        return {"Authorization": f"Bearer {self._token}"}

    async def call(self, method: str, path: str, budget: Budget, *, params: dict[str, Any] | None = None,
                   body: Any = None) -> dict[str, Any]:
        """One API request, logged in, answered with a JSON object; a refused token is renewed once."""
        headers = await self._auth(budget)
        try:
            return await self._request(method, path, budget, params, body, headers)
        except ApiError as exc:
            if exc.status != 401:
                raise
            if not headers:
                raise self._refused(exc) from None
        headers = await self._auth(budget, stale=headers["Authorization"].removeprefix("Bearer "))
        try:
            return await self._request(method, path, budget, params, body, headers)
        except ApiError as exc:
            raise (self._refused(exc) if exc.status == 401 else exc) from None

    async def _request(self, method: str, path: str, budget: Budget, params: dict[str, Any] | None, body: Any,
                       headers: dict[str, str]) -> dict[str, Any]:
        answer = await self.api.request(method, path, timeout=budget.left(), params=params, body=body,
                                        headers=headers)
        if not isinstance(answer, dict):
            raise ApiError(f"the answer to {method} {path} is not a JSON object: is {self.api.base_url} Airflow?")
        return answer

    def _refused(self, exc: ApiError) -> ApiError:
        if not self.username:
            return ApiError(f"{exc} (no username and password configured)", exc.status)
        return ApiError(f"login refused for {self.username} at {self.api.where}: {exc}", exc.status)

    async def pages(self, path: str, key: str, budget: Budget, params: dict[str, Any] | None = None) -> list[dict]:
        """Every row of a paginated list: the first page, then the rest at once."""
        first = await self.call("GET", path, budget, params={**(params or {}), "limit": PAGE, "offset": 0})
        rows = list(first.get(key) or ())
        total = min(int(first.get("total_entries") or 0), PAGE * MAX_PAGES)
        rest = await asyncio.gather(*(self.call("GET", path, budget, params={**(params or {}), "limit": PAGE,
                                                                            "offset": offset})
                                      for offset in range(PAGE, total, PAGE)))
        for page in rest:
            rows.extend(page.get(key) or ())
        return rows

    def dag_path(self, dag_id: str, *rest: str) -> str:
        return "/".join((f"{self.prefix}/dags/{segment(dag_id)}", *(segment(part) for part in rest)))

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
        started = time.monotonic()
        output: list[str] = []

        def say(line: str) -> None:
            output.append(line)
            emit(line)

        try:
            await self._do(action, Budget(action.timeout), say)
        except (ApiError, ValueError) as exc:
            error = one_line(str(exc))
            say(error)
            return ActionResult(action, False, None, output, time.monotonic() - started, error)
        return ActionResult(action, True, None, output, time.monotonic() - started)

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


def parse_conf(text: str) -> dict[str, Any] | None:
    """A run's conf typed by the operator: a JSON object, or nothing. ``ValueError`` (one line) otherwise."""
    if not text.strip():
        return None
    try:
        conf = json.loads(text)
    except ValueError as exc:
        raise ValueError(one_line(f"conf is not JSON: {exc}")) from None
    if not isinstance(conf, dict):  # ValueError: what the ask modal shows under the input
        raise ValueError(f"conf must be a JSON object like {{\"key\": \"value\"}}, not {type(conf).__name__}")  # noqa: TRY004
    return conf


def _instance_name(task: dict[str, Any]) -> str:
    index = task.get("map_index")
    return f"{task.get('task_id')}[{index}]" if isinstance(index, int) and index >= 0 else str(task.get("task_id"))


def _instance_line(task: dict[str, Any]) -> str:
    """One task instance a clear would reset (v1 names only the task and the run)."""
    state = f" ({task['state']})" if task.get("state") else ""
    return f"{_instance_name(task)}{state} in {task.get('dag_run_id')}"


def _traceback(detail: Any) -> list[str]:
    """Airflow 3's structured exception as the lines of a Python traceback."""
    lines: list[str] = []
    for exc in detail if isinstance(detail, list) else ():
        if not isinstance(exc, dict):
            continue
        lines.append("Traceback (most recent call last):")
        for frame in exc.get("frames") or ():
            lines.append(f'  File "{frame.get("filename")}", line {frame.get("lineno")}, in {frame.get("name")}')
        lines.append(f"{exc.get('exc_type')}: {exc.get('exc_value')}")
    return lines


def _unwrap_v1_log(text: str) -> str:
    """Airflow 2 before 2.8 sent the log as the text of a Python list of ``(host, log)`` pairs."""
    if not text.startswith("[("):
        return text
    try:
        pairs = ast.literal_eval(text)
        return "\n".join(str(pair[1]) for pair in pairs)
    except (ValueError, SyntaxError, TypeError, IndexError, MemoryError, RecursionError):
        return text
