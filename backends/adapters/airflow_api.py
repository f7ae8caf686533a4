"""What AirflowInstance reads Airflow's REST API with: logged-in requests (a JWT from ``POST /auth/token``,
renewed before it expires or once when refused, for v2; basic auth for v1) and pagination, the API's times,
its runs, a poll's time budget, and the text of task logs and task instances.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..model import State
from .json_api import ApiError, JsonApi, segment
from .pipeline_base import FAILED_WORDS, epoch
from .text import one_line

PAGE = 100
MAX_PAGES = 20  # a listing (DAGs, changed runs, task instances) longer than 2,000 rows is cut
RENEW_BEFORE = 60.0  # seconds before a token expires that a new one is fetched
RUNNING_TASK_STATES = {"running", "deferred", "up_for_reschedule", "awaiting_input"}
FINISHED_TASK_STATES = {"success", "failed", "skipped", "upstream_failed", "removed"}
WORKING_TASK_STATES = {"up_for_retry", "restarting"}
# log fields that say where a line came from, not what it says
LOG_CONTEXT = {"timestamp", "event", "level", "logger", "filename", "lineno", "task_id", "dag_id", "run_id",
               "map_index", "try_number", "ti_id", "error_detail"}


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


class AirflowApi:
    """The requests of an Airflow source (mixed into AirflowInstance, whose clock it reads)."""

    clock: Callable[[], float]

    def _connect(self, options: Mapping[str, Any]) -> None:
        self.v1 = options.get("api") == "v1"
        self.prefix = "/api/v1" if self.v1 else "/api/v2"
        self.username: str = options.get("username") or ""
        self.password: str = options.get("password") or ""
        headers = {}
        if self.v1 and self.username:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        self.api = JsonApi(options["url"], headers, options.get("verify_tls", True), options.get("ca_file"))
        self._token = ""
        self._renew_at = 0.0
        self._skew = 0.0  # the server's clock minus ours, learnt from a token's issue time
        self._login_lock = asyncio.Lock()

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
