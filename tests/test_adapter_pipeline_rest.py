"""RestPipelines against a stateful stand-in of the analytics engine's pipeline API on loopback
(tests/pipeline_api_server.py): what it reads, what it opens, and what each action sends and changes."""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager

import pytest

from backends.actions import Tier
from backends.adapters import ACTION_IDS
from backends.adapters.pipeline_base import PipelineError
from backends.adapters.pipeline_base import epoch_seconds
from backends.model import State
from helpers import read_all, source_for
from pipeline_api_server import BASE, T0, pipeline_api  # noqa: F401  (fixture)

ALT_PATHS = {"status": "/overview", "item": "/items/{name}", "errors": "/items/{name}/failures",
             "start": "/items/{name}/do/start", "stop": "/items/{name}/do/stop", "restart": "/items/{name}/do/restart",
             "pause": "/items/{name}/do/pause", "retry": "/items/{name}/do/retry",
             "clear_errors": "/items/{name}/do/clear-errors"}
ALT_FIELDS = {"list": "data.items", "name": "id", "status": "state.phase", "last_run": "run.startedAt",
              "last_success": "run.succeededAt", "duration": "run.tookMs", "errors": "failures", "message": "note"}


@asynccontextmanager
async def rest(url: str, **options):
    options.setdefault("refresh", "5s")
    options.setdefault("timeout", "2s")
    source = source_for("pipelines", "rest", url=url, **options)
    try:
        yield source
    finally:
        await source.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_every_pipeline_is_a_row_with_its_state_reason_and_times(pipeline_api):
    async with rest(pipeline_api.url) as source:
        rows = await read_all(source)
    assert list(rows) == ["orders", "clicks", "billing", "archive", "exports", "eu/sessions"]
    assert {name: (r.state, r.reason) for name, r in rows.items()} == {
        "orders": (State.OK, "running"),
        "clicks": (State.WARN, "running · 2 errors · lagging 40s"),
        "billing": (State.CRITICAL, "failed · 1 error · sink refused writes"),
        "archive": (State.WARN, "stopped"),
        "exports": (State.OK, "paused"),
        "eu/sessions": (State.WARN, "degraded · one of 3 workers down"),
    }
    orders = rows["orders"]
    assert (orders.key, orders.kind, orders.status, orders.ref) == ("t:orders", "rest", "running", ("pipeline", "orders"))
    assert (orders.last_start, orders.last_success, orders.last_duration) == (T0, T0 + 90, 90.0)
    assert rows["clicks"].failures == 2 and rows["billing"].failures == 1
    assert rows["exports"].paused and rows["exports"].last_start == T0  # epoch milliseconds, read as such
    assert not rows["orders"].paused
    assert (rows["archive"].last_start, rows["archive"].last_duration) == (None, None)


async def test_opening_a_pipeline_lists_its_failed_batches_and_notes_its_status(pipeline_api):
    async with rest(pipeline_api.url) as source:
        listing = await source.open(("pipeline", "clicks"))
    assert [(i.name, i.ref, i.state, i.note) for i in listing.items] == [
        ("b-17", ("batch", "clicks", "b-17"), State.CRITICAL, "schema mismatch in b-17"),
        ("b-18", ("batch", "clicks", "b-18"), State.CRITICAL, "schema mismatch in b-18"),
    ]
    assert listing.items[0].started == T0 - 600  # 09:50:00Z
    assert listing.note == "running · 2 failed batches"
    assert listing.columns[1] == "Batch" and len(listing.columns) == 6


async def test_pipeline_actions_show_the_exact_request_with_the_configured_headers(pipeline_api):
    async with rest(pipeline_api.url, name="engine", headers={"X-Token": "s3cret"}) as source:
        rows = await read_all(source)
        actions = {a.id: a for a in source.item_actions(rows["eu/sessions"])}
    assert tuple(actions) == ACTION_IDS[("pipelines", "rest")]
    assert {i: a.tier for i, a in actions.items()} == {
        "start": Tier.DISRUPTIVE, "stop": Tier.DISRUPTIVE, "restart": Tier.DISRUPTIVE, "pause": Tier.DISRUPTIVE,
        "retry": Tier.DESTRUCTIVE, "clear-errors": Tier.DESTRUCTIVE}
    restart = actions["restart"]
    assert (restart.target, restart.source, restart.confirm, restart.ref) == (
        "engine:eu/sessions", "engine", "eu/sessions", ("pipeline", "eu/sessions"))
    assert restart.describe() == f"POST {pipeline_api.url}/eu%2Fsessions/restart -H 'X-Token: s3cret'"
    assert actions["clear-errors"].describe().startswith(f"POST {pipeline_api.url}/eu%2Fsessions/clear-errors ")


async def test_start_stop_restart_and_pause_change_the_engine_and_send_the_headers(pipeline_api):
    engine = pipeline_api.engine
    lines: list[str] = []
    async with rest(pipeline_api.url, headers={"X-Token": "s3cret"}) as source:
        row = (await read_all(source))["archive"]
        actions = {a.id: a for a in source.item_actions(row)}
        for action_id, expected in (("start", "RUNNING"), ("pause", "PAUSED"), ("stop", "STOPPED"),
                                    ("restart", "RUNNING")):
            result = await source.run(actions[action_id], lines.append)
            assert result.ok, result.error
            assert engine.status("archive") == expected
        assert (await read_all(source))["archive"].state is State.OK
    posts = engine.sent("POST")
    assert [(p.path, p.body, p.headers.get("X-Token")) for p in posts] == [
        (f"{BASE}/archive/{verb}", None, "s3cret") for verb in ("start", "pause", "stop", "restart")]
    assert engine.restarts == {"archive": 1}
    assert lines[:3] == [f"POST {pipeline_api.url}/archive/start",
                         'accepted: {"name": "archive", "status": "RUNNING"}', "archive is now running"]


async def test_clear_errors_previews_exactly_the_errors_it_clears(pipeline_api):
    engine = pipeline_api.engine
    async with rest(pipeline_api.url) as source:
        row = (await read_all(source))["clicks"]
        clear = next(a for a in source.item_actions(row) if a.id == "clear-errors")
        assert await source.preview(clear) == ["b-17 at 2024-05-01T09:50:00Z: schema mismatch in b-17",
                                               "b-18 at 2024-05-01T09:51:00Z: schema mismatch in b-18"]
        result = await source.run(clear, lambda line: None)
        assert result.ok, result.error
        assert engine.errors("clicks") == []
        assert await source.preview(clear) == ["no errors: nothing would be cleared"]
        assert (await read_all(source))["clicks"].state is State.OK
    assert [p.path for p in engine.sent("POST")] == [f"{BASE}/clicks/clear-errors"]


async def test_retry_sends_exactly_the_failed_batches_its_preview_listed(pipeline_api):
    engine = pipeline_api.engine
    async with rest(pipeline_api.url) as source:
        row = (await read_all(source))["clicks"]
        retry = next(a for a in source.item_actions(row) if a.id == "retry")
        assert retry.tier is Tier.DESTRUCTIVE and retry.title == "Retry failed batches"
        assert await source.preview(retry) == ["b-17 at 2024-05-01T09:50:00Z: schema mismatch in b-17",
                                               "b-18 at 2024-05-01T09:51:00Z: schema mismatch in b-18"]
        late = {"batch": "b-19", "time": "2024-05-01T09:59:00Z", "error": "timeout"}
        with engine.lock:  # a batch that fails after the operator saw the preview is not retried unseen
            engine.pipelines["clicks"]["errors"].append(late)
        result = await source.run(retry, lambda line: None)
    assert result.ok, result.error
    assert [(p.path, p.body) for p in engine.sent("POST")] == [(f"{BASE}/clicks/retry", {"batches": ["b-17", "b-18"]})]
    assert engine.errors("clicks") == [late]


async def test_retry_with_nothing_failed_sends_nothing(pipeline_api):
    async with rest(pipeline_api.url) as source:
        row = (await read_all(source))["orders"]
        retry = next(a for a in source.item_actions(row) if a.id == "retry")
        assert await source.preview(retry) == ["no failed batches: nothing would be retried"]
        result = await source.run(retry, lambda line: None)
    assert not result.ok and result.error == "no failed batches to retry"
    assert pipeline_api.engine.sent("POST") == []


async def test_one_batch_of_the_drill_down_can_be_retried(pipeline_api):
    engine = pipeline_api.engine
    async with rest(pipeline_api.url) as source:
        listing = await source.open(("pipeline", "clicks"))
        (retry,) = source.item_actions(listing.items[1])
        assert (retry.id, retry.tier, retry.target, retry.confirm) == ("retry", Tier.DESTRUCTIVE, "t:clicks", "clicks")
        assert retry.describe() == f"POST {pipeline_api.url}/clicks/retry -d '{{\"batches\": [\"b-18\"]}}'"
        assert await source.preview(retry) == ["b-18 at 2024-05-01T09:51:00Z: schema mismatch in b-18"]
        result = await source.run(retry, lambda line: None)
    assert result.ok, result.error
    assert [p.body for p in engine.sent("POST")] == [{"batches": ["b-18"]}]
    assert [e["batch"] for e in engine.errors("clicks")] == ["b-17"]


async def test_a_server_error_with_a_json_message_is_a_clear_reason(pipeline_api):
    pipeline_api.fail("GET", f"{BASE}/status", 500, {"message": "engine is rebalancing"})
    pipeline_api.fail("POST", f"{BASE}/orders/stop", 500, {"message": "orders is checkpointing"})
    async with rest(pipeline_api.url) as source:
        (reading,) = await source.poll()
        stop = next(a for a in source.item_actions(source.reading("orders", State.OK, "", ref=("pipeline", "orders")))
                    if a.id == "stop")
        result = await source.run(stop, lambda line: None)
    assert reading.state is State.UNKNOWN and reading.key == "t"
    assert reading.reason == "HTTP 500 from GET /status: engine is rebalancing"
    assert not result.ok and result.exit_code == 500
    assert result.error == "HTTP 500 from POST /orders/stop: orders is checkpointing"
    assert pipeline_api.engine.status("orders") == "RUNNING"


async def test_an_answer_that_is_not_json_is_a_reason(pipeline_api):
    pipeline_api.fail("GET", f"{BASE}/status", 200, b"<html>502 Bad Gateway</html>")
    async with rest(pipeline_api.url) as source:
        (reading,) = await source.poll()
    assert reading.state is State.UNKNOWN
    assert reading.reason == "the answer to GET /status is not JSON: <html>502 Bad Gateway</html>"


async def test_a_bad_fields_mapping_says_which_field_is_missing(pipeline_api):
    async with rest(pipeline_api.url, fields={"status": "state"}) as source:
        rows = await read_all(source)
    assert {r.state for r in rows.values()} == {State.UNKNOWN}
    assert rows["orders"].reason == "no 'state' field (fields.status)"
    assert rows["billing"].reason == "no 'state' field (fields.status) · 1 error · sink refused writes"

    async with rest(pipeline_api.url, fields={"list": "items"}) as source:
        (reading,) = await source.poll()
    assert reading.reason == "no 'items' list in the answer to GET /status (fields.list)"

    async with rest(pipeline_api.url, fields={"last_success": "lastOk"}) as source:
        orders = (await read_all(source))["orders"]
    assert (orders.state, orders.reason) == (State.OK, "running · no 'lastOk' field (fields.last_success)")
    assert orders.last_success is None


async def test_odd_values_are_named_in_the_row_never_raised(pipeline_api):
    engine = pipeline_api.engine
    with engine.lock:
        engine.pipelines["orders"].update(lastRun="yesterday", durationMs="slow")
        engine.pipelines["clicks"]["status"] = "REBALANCING"
        del engine.pipelines["archive"]["name"]
    async with rest(pipeline_api.url) as source:
        rows = await read_all(source)
    assert rows["orders"].reason == "running · lastRun 'yesterday' is not a time · durationMs 'slow' is not milliseconds"
    assert rows["orders"].state is State.OK and rows["orders"].last_start is None
    assert rows["clicks"].state is State.UNKNOWN
    assert rows["clicks"].reason.startswith("status 'REBALANCING' is not one of RUNNING, PAUSED, STOPPED, FAILED, DEGRADED")
    assert (rows["#4"].state, rows["#4"].reason, rows["#4"].can_open) == (State.UNKNOWN, "no 'name' field (fields.name)", False)
    assert source.item_actions(rows["#4"]) == []


async def test_custom_paths_and_fields_read_open_and_act_on_another_api_shape(pipeline_api):
    engine = pipeline_api.engine
    async with rest(f"{pipeline_api.root}/alt", paths=ALT_PATHS, fields=ALT_FIELDS) as source:
        rows = await read_all(source)
        assert {n: r.state for n, r in rows.items()} == {
            "orders": State.OK, "clicks": State.WARN, "billing": State.CRITICAL, "archive": State.WARN,
            "exports": State.OK, "eu/sessions": State.WARN}
        assert (rows["clicks"].failures, rows["clicks"].reason) == (2, "running · 2 errors · lagging 40s")
        assert rows["orders"].last_duration == 90.0 and rows["exports"].paused
        listing = await source.open(("pipeline", "billing"))
        assert [i.name for i in listing.items] == ["b-90"] and listing.note == "failed · 1 failed batch"
        start = next(a for a in source.item_actions(rows["billing"]) if a.id == "start")
        result = await source.run(start, lambda line: None)
    assert result.ok, result.error
    assert engine.status("billing") == "RUNNING"
    assert [p.path for p in engine.sent("POST")] == ["/alt/items/billing/do/start"]


async def test_a_refused_port_is_one_row_saying_so():
    port = free_port()
    async with rest(f"http://127.0.0.1:{port}/api/v1/analytics/pipelines") as source:
        (reading,) = await source.poll()
        assert source.item_actions(reading) == []
    assert reading.state is State.UNKNOWN and not reading.can_open
    assert reading.reason == f"connection refused on 127.0.0.1:{port} — is the service running?"


async def test_opening_an_unknown_pipeline_is_a_one_line_error(pipeline_api):
    async with rest(pipeline_api.url) as source:
        with pytest.raises(PipelineError) as raised:
            await source.open(("pipeline", "nope"))
    assert str(raised.value) == f"HTTP 404 from GET /nope/errors: no route GET {BASE}/nope/errors"


def test_times_are_iso_or_epoch_seconds_or_milliseconds():
    assert epoch_seconds("2024-05-01T10:00:00Z") == T0
    assert epoch_seconds("2024-05-01T12:00:00+02:00") == T0
    assert epoch_seconds("2024-05-01T10:00:00") == T0  # no zone written: UTC, as these APIs write it
    assert epoch_seconds(T0) == epoch_seconds(T0 * 1000) == epoch_seconds(str(T0)) == T0
    for odd in ("yesterday", True, float("nan"), {"at": 1}):
        with pytest.raises(ValueError):
            epoch_seconds(odd)


async def test_a_batch_that_failed_twice_is_two_rows_with_distinct_refs_both_retrying_it(pipeline_api):
    engine = pipeline_api.engine
    with engine.lock:
        engine.pipelines["billing"]["errors"].append({"batch": "b-90", "time": T0, "error": "again"})
        engine.pipelines["billing"]["errors"].append({"time": T0, "error": "no batch named"})
    async with rest(pipeline_api.url) as source:
        listing = await source.open(("pipeline", "billing"))
        assert [i.ref for i in listing.items] == [("batch", "billing", "b-90"), ("batch", "billing", "b-90", "1"),
                                                  ("error", "billing", "2")]
        assert listing.items[2].note == "no batch id · no batch named" and source.item_actions(listing.items[2]) == []
        (retry,) = source.item_actions(listing.items[1])
        assert await source.preview(retry) == ["b-90 at 2024-05-01T09:50:00Z: schema mismatch in b-90",
                                               f"b-90 at {T0}: again"]
        assert (await source.run(retry, lambda line: None)).ok
    assert [p.body for p in engine.sent("POST")] == [{"batches": ["b-90"]}]
