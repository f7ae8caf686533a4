"""AirflowInstance against a real Airflow 3.3.2 (the v2 API) on loopback, and against a small local HTTP server
that answers in the documented Airflow 2 ``/api/v1`` shapes with basic auth: Airflow 2 is not run here.

The real Airflow is started once per session (tests/conftest_airflow.py); the tests on it run in file order and
leave failing_dag's run failed for the ones after them.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import contextlib
import hashlib
import hmac
import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from conftest_airflow import JWT_SECRET, free_port
from helpers import source_for

from backends.actions import Tier
from backends.adapters.json_api import segment
from backends.adapters.pipeline_base import PipelineError
from backends.model import PipelineItem, PipelineReading, State

MARKER = "lakedeck-marker: the source table [/raw/orders] is missing"
WITHIN = 90.0


def instance(url: str, **options):
    options.setdefault("username", "admin")
    options.setdefault("password", "admin")
    options.setdefault("timeout", "8s")
    options.setdefault("refresh", "10s")
    return source_for("pipelines", "airflow", name="af", url=url, **options)


async def rows(source) -> dict[str, PipelineReading]:
    readings = await source.poll()
    for reading in readings:
        assert "\n" not in reading.reason and reading.kind == "airflow", reading
    return {r.name: r for r in readings}


async def poll_until(source, name: str, check, within: float = WITHIN) -> PipelineReading:
    """The row ``name`` once ``check(row)`` holds, polling as the engine would."""
    deadline = time.monotonic() + within
    while True:
        row = (await rows(source)).get(name)
        if row is not None and check(row):
            return row
        assert time.monotonic() < deadline, f"{name} is still {row} after {within:g}s"
        await asyncio.sleep(0.5)


def action(source, row, action_id: str):
    return next(a for a in source.item_actions(row) if a.id == action_id)


async def act(source, chosen) -> tuple[bool, list[str], str]:
    lines: list[str] = []
    result = await source.run(chosen, lines.append)
    return result.ok, lines, result.error


@pytest.fixture
async def af(airflow):  # noqa: F811
    source = instance(airflow.url)
    yield source
    await source.close()


# -- the real Airflow 3.3.2 ----------------------------------------------------------------------------

integration = pytest.mark.integration


@integration
async def test_lists_the_dags_as_they_start_and_the_broken_file(af, airflow):  # noqa: F811
    found = await poll_until(af, "import error: broken_dag.py", lambda row: True, within=30)
    assert found.state is State.CRITICAL and found.can_open is False
    assert found.reason == "import error: ImportError: lakedeck test: this DAG file is broken on purpose"
    listed = await rows(af)
    for name in ("ok_dag", "failing_dag"):
        row = listed[name]
        assert (row.state, row.paused, row.status, row.reason) == (State.OK, True, "no runs", "paused"), row
        assert row.key == f"af:{name}" and row.ref == ("dag", name) and row.can_open and row.failures == 0
    nightly = listed["nightly_dag"]
    assert not nightly.paused and nightly.reason == "no runs yet"
    assert nightly.next_run == pytest.approx(4070916000.0)  # 2099-01-01T02:00Z: when its schedule first fires
    filtered = instance(airflow.url, dags=["ok_*", "nightly_dag"])
    assert set(await rows(filtered)) == {"ok_dag", "nightly_dag", "import error: broken_dag.py"}
    await filtered.close()


@integration
async def test_unpause_trigger_with_conf_and_watch_the_run_succeed(af, airflow):  # noqa: F811
    row = (await rows(af))["ok_dag"]
    unpause = action(af, row, "unpause")
    assert unpause.tier is Tier.DISRUPTIVE and unpause.target == "af:ok_dag" and unpause.confirm == "ok_dag"
    assert unpause.call == 'PATCH /api/v2/dags/ok_dag {"is_paused": false}'
    ok, lines, _ = await act(af, unpause)
    assert ok and lines == ["ok_dag is running its schedule (unpaused)"]
    row = (await rows(af))["ok_dag"]
    assert not row.paused and [a.id for a in af.item_actions(row)] == ["trigger", "pause"]

    trigger = af.with_value(action(af, row, "trigger"), '{"rows": 3}')
    assert trigger.call == 'POST /api/v2/dags/ok_dag/dagRuns {"logical_date": null, "conf": {"rows": 3}}'
    ok, lines, _ = await act(af, trigger)
    assert ok and lines[0].startswith("triggered ok_dag: run manual__"), lines
    run_id = lines[0].split()[3]
    assert airflow.run_of("ok_dag", run_id)["conf"] == {"rows": 3}

    row = await poll_until(af, "ok_dag", lambda r: r.status == "success")
    assert row.state is State.OK and row.reason == "last run succeeded" and row.failures == 0
    assert row.last_success is not None and row.last_start is not None and 0 < row.last_duration < 120
    assert abs(row.last_success - time.time()) < 120

    runs = await af.open(("dag", "ok_dag"))
    assert runs.note == "the latest 25 runs"
    [run] = [item for item in runs.items if item.name == run_id]
    assert (run.state, run.status, run.can_open, run.ref) == (State.OK, "success", True, ("run", "ok_dag", run_id))
    tasks = await af.open(run.ref)
    assert [(t.name, t.status, t.has_log, t.note) for t in tasks.items] == [
        ("extract", "success", True, "try 1 · @task"), ("load", "success", True, "try 1 · @task")]
    assert tasks.items[0].ref == ("task", "ok_dag", run_id, "extract", "1", "-1")
    log = await af.log(tasks.items[1].ref)
    assert any(line.text == "loaded 3 rows" for line in log), [line.text for line in log]

    mark_failed = action(af, run, "mark-failed")
    assert await af.preview(mark_failed) == [f"run {run_id}: success → failed"]
    assert [a.id for a in af.item_actions(run)] == ["clear", "mark-failed"]


@pytest.fixture(scope="module")
def failed_run(airflow) -> str:  # noqa: F811
    """A run of failing_dag that has failed."""
    run_id = airflow.trigger("failing_dag")
    airflow.wait_for_run("failing_dag", run_id, {"failed"})
    return run_id


def ensure_failed(airflow, run_id: str) -> None:  # noqa: F811
    """Puts the run back to failed (as a test before may have left it), without running it again."""
    airflow.call("PATCH", f"/api/v2/dags/failing_dag/dagRuns/{segment(run_id)}", {"state": "failed"})


@integration
async def test_a_failed_run_makes_the_dag_critical(af, airflow, failed_run):  # noqa: F811
    ensure_failed(airflow, failed_run)
    row = (await rows(af))["failing_dag"]
    assert (row.state, row.status, row.failures) == (State.CRITICAL, "failed", 1)
    assert row.reason == f"last run failed ({failed_run})", row.reason
    assert row.last_success is None


@integration
async def test_the_failed_task_and_its_log(af, airflow, failed_run):  # noqa: F811
    runs = await af.open(("dag", "failing_dag"))
    run = next(item for item in runs.items if item.name == failed_run)
    assert (run.state, run.status, run.note) == (State.CRITICAL, "failed", "manual")
    [task] = (await af.open(run.ref)).items
    assert (task.name, task.state, task.status, task.has_log) == ("load_orders", State.CRITICAL, "failed", True)
    log = await af.log(task.ref)
    [marker] = [line for line in log if line.text == MARKER]  # brackets and all: plain text, never markup
    assert marker.level == "error" and marker.source == "af" and abs(marker.ts - time.time()) < 600
    assert "RuntimeError: orders not loaded" in [line.text for line in log]
    with pytest.raises(PipelineError, match=r"^cannot read the log of load_orders try 7: HTTP 404"):
        await af.log(task.ref[:4] + ("7", "-1"))


@integration
async def test_clear_shows_the_dry_run_then_runs_the_failed_task_again(af, airflow, failed_run):  # noqa: F811
    ensure_failed(airflow, failed_run)
    row = (await rows(af))["failing_dag"]
    clear = action(af, row, "clear")
    assert (clear.tier, clear.target, clear.confirm, clear.ref) == (
        Tier.DESTRUCTIVE, "af:failing_dag", "failing_dag", ("run", "failing_dag", failed_run))
    assert clear.call == ('POST /api/v2/dags/failing_dag/clearTaskInstances {"dry_run": false, "only_failed": true, '
                          f'"reset_dag_runs": true, "dag_run_id": "{failed_run}"}}')
    assert await af.preview(clear) == [f"load_orders (failed) in {failed_run}"]
    assert airflow.run_of("failing_dag", failed_run)["state"] == "failed"  # the dry run changed nothing

    ok, lines, _ = await act(af, clear)
    assert ok and lines == [f"cleared 1 task instance of {failed_run}: load_orders"]
    airflow.wait_for_run("failing_dag", failed_run, {"failed"})
    [task] = (await af.open(("run", "failing_dag", failed_run))).items
    assert (task.status, task.note) == ("failed", "try 2 · @task")


@integration
async def test_mark_a_failed_run_success(af, airflow, failed_run):  # noqa: F811
    ensure_failed(airflow, failed_run)
    runs = await af.open(("dag", "failing_dag"))
    run = next(item for item in runs.items if item.name == failed_run)
    mark = action(af, run, "mark-success")
    assert (mark.tier, mark.target, mark.confirm) == (Tier.DESTRUCTIVE, f"af:failing_dag/{failed_run}", "failing_dag")
    assert mark.call == f'PATCH /api/v2/dags/failing_dag/dagRuns/{segment(failed_run)} {{"state": "success"}}'
    assert await af.preview(mark) == [f"run {failed_run}: failed → success"]  # its one task has finished
    ok, lines, _ = await act(af, mark)
    assert ok and lines == [f"run {failed_run} of failing_dag is success now"]
    row = (await rows(af))["failing_dag"]
    assert (row.state, row.status, row.failures) == (State.OK, "success", 0)
    ensure_failed(airflow, failed_run)


@integration
async def test_a_viewer_may_read_but_not_trigger(airflow):  # noqa: F811
    viewer = instance(airflow.url, username="viewer", password="viewer")
    row = (await rows(viewer))["ok_dag"]
    ok, _, error = await act(viewer, action(viewer, row, "trigger"))
    assert not ok and error.startswith("HTTP 403 from POST /api/v2/dags/ok_dag/dagRuns"), error
    await viewer.close()


@integration
async def test_a_wrong_password_is_one_row_with_the_reason(airflow):  # noqa: F811
    source = instance(airflow.url, password="wrong")
    [reading] = await source.poll()
    assert (reading.key, reading.state, reading.can_open) == ("af", State.UNKNOWN, False)
    assert reading.reason == (f"login refused for admin at 127.0.0.1:{airflow.port}: "
                              "HTTP 401 from POST /auth/token: Invalid credentials")
    await source.close()


async def test_nothing_listening_is_one_row_with_the_reason():
    port = free_port()
    source = instance(f"http://127.0.0.1:{port}")
    [reading] = await source.poll()
    assert (reading.key, reading.state) == ("af", State.UNKNOWN)
    assert reading.reason == f"connection refused on 127.0.0.1:{port} — is the service running?"
    await source.close()


def requests_of(source) -> list[str]:
    """Records every request the adapter sends: ``METHOD path``."""
    sent: list[str] = []
    original = source.api.request

    async def recording(method, path, **kwargs):
        sent.append(f"{method} {path}")
        return await original(method, path, **kwargs)

    source.api.request = recording
    return sent


@integration
async def test_a_token_is_renewed_before_it_expires(af, airflow):  # noqa: F811
    sent = requests_of(af)
    await rows(af)
    await rows(af)
    assert sent.count("POST /auth/token") == 1  # one token for both polls
    af.clock = lambda: time.time() + 86400 - 30  # Airflow's tokens live 24 h: this is half a minute before the end
    sent.clear()
    listed = await rows(af)
    assert sent[0] == "POST /auth/token" and sent.count("POST /auth/token") == 1 and "ok_dag" in listed


def expired_token() -> str:
    """A token signed with the server's own secret whose time is up: what a console left running meets."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": "admin", "role": "admin", "aud": "apache-airflow", "nbf": now - 200,
                             "iat": now - 200, "exp": now - 100}).encode())
    signature = hmac.new(JWT_SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha512).digest()
    return f"{header}.{claims}.{b64(signature)}"


@integration
async def test_a_token_the_server_calls_expired_is_renewed_once(af, airflow):  # noqa: F811
    await rows(af)
    af._token = expired_token()  # our clock thinks it is still good (a skewed clock): the server disagrees
    sent = requests_of(af)
    listed = await rows(af)
    assert "ok_dag" in listed
    assert sent[:3] == ["GET /api/v2/dags", "POST /auth/token", "GET /api/v2/dags"]
    assert sent.count("POST /auth/token") == 1


# -- no server needed -----------------------------------------------------------------------------------


def test_conf_must_be_a_json_object_or_nothing():
    source = instance("http://127.0.0.1:9")
    row = PipelineReading(key="af:etl", source="af", state=State.OK, reason="", ts=0.0, kind="airflow", name="etl",
                          paused=True, ref=("dag", "etl"))
    trigger = action(source, row, "trigger")
    assert trigger.ask == "conf as JSON (empty for none)" and trigger.tier is Tier.DISRUPTIVE
    assert source.with_value(trigger, "").call == 'POST /api/v2/dags/etl/dagRuns {"logical_date": null}'
    with pytest.raises(ValueError, match=r"^conf must be a JSON object like \{\"key\": \"value\"\}, not list$"):
        source.with_value(trigger, "[1, 2]")
    with pytest.raises(ValueError, match=r"^conf is not JSON: Expecting property name"):
        source.with_value(trigger, "{rows: 3}")
    assert [a.id for a in source.item_actions(row)] == ["trigger", "unpause"]  # no failed run known: no clear
    task = PipelineItem(ref=("task", "etl", "r1", "t", "1", "-1"), name="t", state=State.OK)
    assert source.item_actions(task) == []


def test_log_forms_plain_text_never_markup():
    source = instance("http://127.0.0.1:9")
    structured = source.log_lines([
        {"event": "::group::Log message source details"},  # the file's header: no time of its own
        {"timestamp": "2026-11-22T05:34:17.5Z", "event": "loaded [/raw/x] near [/", "level": "warning"},
        {"timestamp": "2026-11-22T05:34:18Z", "event": "Task failed with exception", "level": "error",
         "logger": "task", "error_detail": [{"exc_type": "KeyError", "exc_value": "'id'",
                                             "frames": [{"filename": "/dags/x.py", "lineno": 3, "name": "load"}]}]},
        "[2026-11-22T05:34:19.000+0000] {x.py:1} CRITICAL - unparsed by Airflow",
    ])
    assert [(line.text, line.level, line.ts) for line in structured] == [
        ("::group::Log message source details", "", 1795325657.5),
        ("loaded [/raw/x] near [/", "warn", 1795325657.5),
        ("Task failed with exception", "error", 1795325658.0),
        ("Traceback (most recent call last):", "error", 1795325658.0),
        ('  File "/dags/x.py", line 3, in load', "error", 1795325658.0),
        ("KeyError: 'id'", "error", 1795325658.0),
        ("[2026-11-22T05:34:19.000+0000] {x.py:1} CRITICAL - unparsed by Airflow", "critical", 1795325659.0),
    ]
    # Airflow 2 before 2.8 sent the text of a Python list of (host, log) pairs
    wrapped = source.log_lines("[('worker-1', '*** Found local files\\n[2026-11-22T05:00:00.000+0000] INFO - hi')]")
    assert [(line.text, line.level) for line in wrapped] == [
        ("*** Found local files", ""), ("[2026-11-22T05:00:00.000+0000] INFO - hi", "info")]
    assert {line.source for line in structured + wrapped} == {"af"}


# -- Airflow 2 (/api/v1), as documented, served locally ------------------------------------------------

V1_USER, V1_PASSWORD = "admin", "secret"
DAY = 86400.0


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds))


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class V1Airflow:
    """Airflow 2's REST API over made-up DAGs: the fields and filters the adapter uses, as the v1 spec has them."""

    def __init__(self, dag_count: int = 0) -> None:
        now = time.time()
        self.requests: list[str] = []
        self.dags = {name: self._dag(name, now + 3600 if name == "etl" else None) for name in ("etl", "report", "busy")}
        self.runs: dict[str, list[dict[str, Any]]] = {
            "etl": [self._run("etl", "scheduled__a", "success", now - 7200, 60),
                    self._run("etl", "scheduled__b", "failed", now - 3600, 30)],
            "report": [],
            # a run a minute: its runs alone fill the newest 100, so etl and report are read one by one
            "busy": [self._run("busy", f"scheduled__m{m:03d}", "success", now - 60 * m, 5) for m in range(120, 0, -1)],
        }
        for index in range(dag_count):
            dag_id = f"bulk_{index:04d}"
            self.dags[dag_id] = self._dag(dag_id, None)
            self.runs[dag_id] = [self._run(dag_id, f"scheduled__{index}", "success", now - 600, 5)]
        self.tasks = {("etl", "scheduled__b"): [
            {"task_id": "extract", "dag_id": "etl", "dag_run_id": "scheduled__b", "state": "success", "try_number": 1,
             "map_index": -1, "start_date": iso(now - 3600), "end_date": iso(now - 3590), "duration": 10.0,
             "operator": "PythonOperator"},
            {"task_id": "load", "dag_id": "etl", "dag_run_id": "scheduled__b", "state": "failed", "try_number": 1,
             "map_index": -1, "start_date": iso(now - 3590), "end_date": iso(now - 3570), "duration": 20.0,
             "operator": "PythonOperator"},
            {"task_id": "publish", "dag_id": "etl", "dag_run_id": "scheduled__b", "state": "scheduled",
             "try_number": 0, "map_index": -1, "start_date": None, "end_date": None, "duration": None,
             "operator": "BashOperator"}]}
        self.log_text = ("[2026-11-22T05:00:01.000+0000] {taskinstance.py:1} INFO - starting load\n"
                         "[2026-11-22T05:00:02.000+0000] {taskinstance.py:2} ERROR - [/tmp/x] boom\n")
        self.import_errors = [{"import_error_id": 1, "timestamp": iso(now), "filename": "/dags/bad.py",
                               "stack_trace": "Traceback:\n  File x\nSyntaxError: invalid syntax\n"}]

    @staticmethod
    def _dag(dag_id: str, next_run: float | None) -> dict[str, Any]:
        return {"dag_id": dag_id, "is_paused": False, "is_active": True, "fileloc": f"/dags/{dag_id}.py",
                "next_dagrun": iso(next_run) if next_run else None,
                "next_dagrun_create_after": iso(next_run) if next_run else None, "tags": []}

    @staticmethod
    def _run(dag_id: str, run_id: str, state: str, start: float, seconds: float) -> dict[str, Any]:
        return {"dag_run_id": run_id, "dag_id": dag_id, "logical_date": iso(start), "execution_date": iso(start),
                "start_date": iso(start), "end_date": iso(start + seconds), "state": state,
                "run_type": "scheduled", "external_trigger": False, "conf": {}, "note": None,
                "updated_at": start + seconds}

    def change_run(self, dag_id: str, run_id: str, state: str) -> None:
        for run in self.runs[dag_id]:
            if run["dag_run_id"] == run_id:
                run.update(state=state, updated_at=time.time())

    # -- what the handler answers -------------------------------------------------------------------

    @staticmethod
    def shown(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in run.items() if k != "updated_at"} for run in runs]  # not in the v1 schema

    @staticmethod
    def ordered(runs: list[dict[str, Any]], order_by: str) -> list[dict[str, Any]]:
        key = order_by.lstrip("-")
        return sorted(runs, key=lambda r: r.get(key) or "", reverse=order_by.startswith("-"))

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        one = {k: v[0] for k, v in query.items()}
        limit, offset = int(one.get("limit", 100)), int(one.get("offset", 0))
        parts = [unquote(p) for p in path.split("/")[3:]]  # after /api/v1
        if parts == ["dags"] and method == "GET":
            dags = list(self.dags.values())
            return 200, {"dags": dags[offset:offset + limit], "total_entries": len(dags)}
        if parts == ["importErrors"]:
            return 200, {"import_errors": self.import_errors, "total_entries": len(self.import_errors)}
        if parts == ["dags", "~", "dagRuns", "list"] and method == "POST":
            runs = [r for dag_id, dag_runs in self.runs.items() for r in dag_runs
                    if dag_id in body.get("dag_ids", [dag_id]) and r["state"] in body.get("states", [r["state"]])]
            since = epoch(body.get("end_date_gte") or "1970-01-01T00:00:00Z")
            runs = [r for r in runs if epoch(r["end_date"]) >= since]
            runs = self.ordered(runs, body.get("order_by") or "dag_run_id")
            start = body.get("page_offset", 0)
            return 200, {"dag_runs": self.shown(runs[start:start + body.get("page_limit", 100)]),
                         "total_entries": len(runs)}
        if parts == ["dags", "~", "dagRuns"]:
            since = epoch(one["updated_at_gte"])
            runs = [r for dag_runs in self.runs.values() for r in dag_runs if r["updated_at"] >= since]
            return 200, {"dag_runs": self.shown(runs[offset:offset + limit]), "total_entries": len(runs)}
        if len(parts) >= 2 and parts[0] == "dags" and parts[1] not in self.dags:
            return 404, {"detail": f"DAG with dag_id: '{parts[1]}' not found", "status": 404, "title": "DAG not found"}
        if len(parts) == 2 and method == "PATCH":
            self.dags[parts[1]]["is_paused"] = body["is_paused"]
            return 200, self.dags[parts[1]]
        if parts[2:] == ["dagRuns"] and method == "GET":
            runs = self.runs[parts[1]]
            if "state" in query:
                runs = [r for r in runs if r["state"] in query["state"]]
            runs = self.ordered(runs, one.get("order_by", "dag_run_id"))
            return 200, {"dag_runs": self.shown(runs[offset:offset + limit]), "total_entries": len(runs)}
        if parts[2:] == ["dagRuns"] and method == "POST":
            run = self._run(parts[1], "manual__c", "queued", time.time(), 0) | {"conf": body.get("conf")}
            self.runs[parts[1]].append(run)
            return 200, self.shown([run])[0]
        if parts[2:3] == ["dagRuns"] and len(parts) == 4:
            run = next(r for r in self.runs[parts[1]] if r["dag_run_id"] == parts[3])
            if method == "PATCH":
                run.update(state=body["state"], updated_at=time.time())
            return 200, self.shown([run])[0]
        if parts[2:3] == ["dagRuns"] and parts[4:] == ["taskInstances"]:
            tasks = self.tasks.get((parts[1], parts[3]), [])
            return 200, {"task_instances": tasks, "total_entries": len(tasks)}
        if parts[4:5] == ["taskInstances"] and parts[6:7] == ["logs"]:
            return 200, {"content": self.log_text, "continuation_token": None}
        if parts[2:] == ["clearTaskInstances"]:
            failed = [t for t in self.tasks.get((parts[1], body["dag_run_id"]), []) if t["state"] == "failed"]
            if not body["dry_run"]:
                for task in failed:
                    task["state"] = None
                self.change_run(parts[1], body["dag_run_id"], "queued")
            return 200, {"task_instances": [{"task_id": t["task_id"], "dag_id": parts[1], "dag_run_id": t["dag_run_id"],
                                             "execution_date": iso(time.time())} for t in failed]}
        return 404, {"detail": f"no {method} {path}", "status": 404, "title": "Not Found"}


@contextlib.contextmanager
def serving(api: V1Airflow):
    """``api`` on a loopback port (``api.url``), checking basic auth on every request."""
    expected = "Basic " + base64.b64encode(f"{V1_USER}:{V1_PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms wait between them

        def log_message(self, *args):
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            api.requests.append(f"{self.command} {url.path}")
            if self.headers.get("Authorization") != expected:
                status, answer = 401, {"detail": None, "status": 401, "title": "Unauthorized", "type": "about:blank"}
            else:
                status, answer = api.answer(self.command, url.path, parse_qs(url.query), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def v1_server():
    with serving(V1Airflow()) as api:
        yield api


def v1_instance(api: V1Airflow, **options):
    options.setdefault("password", V1_PASSWORD)
    return instance(api.url, api="v1", username=V1_USER, **options)


async def test_v1_dags_runs_and_import_errors(v1_server):
    source = v1_instance(v1_server)
    listed = await rows(source)
    assert sorted(v1_server.requests) == [  # every DAG read: in bulk, then those the bulk left unsettled
        "GET /api/v1/dags", "GET /api/v1/dags/etl/dagRuns", "GET /api/v1/dags/report/dagRuns",
        "GET /api/v1/importErrors", "POST /api/v1/dags/~/dagRuns/list", "POST /api/v1/dags/~/dagRuns/list"]
    busy = listed["busy"]
    assert (busy.state, busy.status, busy.last_duration) == (State.OK, "success", 5)
    assert busy.reason == "last run succeeded", busy.reason
    etl = listed["etl"]
    assert (etl.state, etl.status, etl.failures) == (State.CRITICAL, "failed", 1)
    assert etl.reason == "last run failed (scheduled__b)", etl.reason
    assert etl.last_success == pytest.approx(time.time() - 7200 + 60, abs=5)
    assert etl.next_run == pytest.approx(time.time() + 3600, abs=5) and etl.last_duration == 30
    report = listed["report"]
    assert (report.state, report.status, report.reason) == (State.OK, "no runs", "no runs yet")
    broken = listed["import error: /dags/bad.py"]
    assert (broken.state, broken.reason) == (State.CRITICAL, "import error: SyntaxError: invalid syntax")
    await source.close()


async def test_v1_wrong_password(v1_server):
    source = v1_instance(v1_server, password="nope")
    [reading] = await source.poll()
    assert reading.state is State.UNKNOWN
    assert reading.reason == (f"login refused for admin at {v1_server.url.removeprefix('http://')}: "
                              "HTTP 401 from GET /api/v1/dags: Unauthorized")
    await source.close()


async def test_v1_open_a_run_and_read_its_text_log(v1_server):
    source = v1_instance(v1_server)
    runs = await source.open(("dag", "etl"))
    assert [(r.name, r.status, r.duration) for r in runs.items] == [("scheduled__b", "failed", 30.0),
                                                                    ("scheduled__a", "success", 60.0)]
    tasks = await source.open(runs.items[0].ref)
    assert [(t.name, t.state, t.has_log) for t in tasks.items] == [
        ("extract", State.OK, True), ("load", State.CRITICAL, True), ("publish", State.OK, False)]
    log = await source.log(tasks.items[1].ref)
    assert [(line.text, line.level) for line in log] == [
        ("[2026-11-22T05:00:01.000+0000] {taskinstance.py:1} INFO - starting load", "info"),
        ("[2026-11-22T05:00:02.000+0000] {taskinstance.py:2} ERROR - [/tmp/x] boom", "error")]
    assert log[1].ts == calendar.timegm((2026, 11, 22, 5, 0, 2))
    with pytest.raises(PipelineError, match=r"^cannot read the runs of nope: HTTP 404 from GET /api/v1/dags/nope/"):
        await source.open(("dag", "nope"))
    await source.close()


async def test_v1_actions(v1_server):
    source = v1_instance(v1_server)
    etl = (await rows(source))["etl"]
    assert [a.id for a in source.item_actions(etl)] == ["trigger", "pause", "clear"]
    trigger = source.with_value(action(source, etl, "trigger"), '{"day": "2026-11-21"}')
    assert trigger.call == 'POST /api/v1/dags/etl/dagRuns {"conf": {"day": "2026-11-21"}}'
    ok, lines, _ = await act(source, trigger)
    assert ok and lines == ["triggered etl: run manual__c is queued"]
    assert v1_server.runs["etl"][-1]["conf"] == {"day": "2026-11-21"}

    clear = action(source, etl, "clear")
    assert clear.ref == ("run", "etl", "scheduled__b")
    assert await source.preview(clear) == ["load in scheduled__b"]  # v1 names the instances, without a state
    ok, lines, _ = await act(source, clear)
    assert ok and lines == ["cleared 1 task instance of scheduled__b: load"]

    run = next(i for i in (await source.open(("dag", "etl"))).items if i.name == "scheduled__b")
    mark = action(source, run, "mark-success")
    # Airflow 2 marks every task of the run success, the finished ones too
    assert await source.preview(mark) == ["run scheduled__b: queued → success", "task load: no status → success",
                                          "task publish: scheduled → success"]
    assert await source.preview(action(source, run, "mark-failed")) == [
        "run scheduled__b: queued → failed", "task load: no status → skipped", "task publish: scheduled → skipped"]
    ok, lines, _ = await act(source, mark)
    assert ok and lines == ["run scheduled__b of etl is success now"]
    ok, lines, _ = await act(source, action(source, etl, "pause"))
    assert ok and v1_server.dags["etl"]["is_paused"] is True
    await source.close()


async def test_a_thousand_dags_cost_a_few_requests_per_poll_once_read():
    with serving(V1Airflow(dag_count=1000)) as api:
        source = v1_instance(api, refresh="60s", timeout="30s")
        first = await rows(source)
        assert len(first) == 1004 and all(r.status == "success" for n, r in first.items() if n.startswith("bulk_"))
        # 11 pages of DAGs, the import errors, the failed runs, 11 bulk reads of runs, then etl and report alone
        assert len(api.requests) == 26, api.requests
        api.requests.clear()
        api.change_run("bulk_0007", "scheduled__7", "failed")
        second = await rows(source)
        # 11 pages of DAGs, the import errors, the failed runs of the day, the runs changed since the last poll
        assert len(api.requests) == 14, api.requests
        assert second["bulk_0007"].state is State.CRITICAL and second["bulk_0008"].state is State.OK
        await source.close()


async def test_through_the_engine_dag_rows_are_targets_with_their_source_and_audit(v1_server, tmp_path):
    from helpers import config_for

    from backends.engine import Engine

    options = {"name": "af", "url": v1_server.url, "api": "v1", "username": V1_USER, "password": V1_PASSWORD,
               "refresh": "10s", "timeout": "8s", "actions": [{"id": "trigger", "tier": "destructive"}]}
    engine = Engine(config_for("pipelines", "airflow", root={"audit_log": str(tmp_path / "audit.jsonl")}, **options))
    engine.build()
    await engine.sweep()
    actions = {a.id: a for a in engine.actions_for("af:etl")}
    assert sorted(actions) == ["clear", "pause", "trigger"]
    assert actions["trigger"].tier is Tier.DESTRUCTIVE and actions["pause"].owner == "af"  # the config raised it
    result = await engine.run_action(actions["pause"], lambda line: None)
    assert result.ok and v1_server.dags["etl"]["is_paused"] is True
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["event"] == "succeeded" and audit[-1]["target"] == "af:etl"
    assert audit[-1]["command"] == 'PATCH /api/v1/dags/etl {"is_paused": true}'
    engine.read_only = True
    assert engine.actions_for("af:etl") == []
    await engine.stop()
