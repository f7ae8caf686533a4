"""MarquezLineage against Marquez's API replayed on loopback (tests/marquez_server.py).

Marquez itself cannot run on these machines (no Docker, no JVM, no PostgreSQL), so these tests do NOT talk to a
real Marquez: they run against recorded answers written in the documented shapes of Marquez 0.51 — its
spec/openapi.yml and the LineageService that builds /lineage graphs — as tests/fixtures/marquez/README.md cites.
"""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager

import pytest

from backends.adapters.pipeline_base import PipelineError
from backends.model import State
from helpers import read_all, source_for
from marquez_server import marquez  # noqa: F401  (fixture)

NOW = 1_714_557_600.0  # 2024-05-01T10:00:00Z, an hour after the fixtures' runs
FOOD = "food_delivery"
RAW_NS = "postgres://orders-db:5432"


@asynccontextmanager
async def lineage(url: str, **options):
    options.setdefault("refresh", "5s")
    options.setdefault("timeout", "2s")
    source = source_for("pipelines", "lineage", url=url, **options)
    source.clock = lambda: NOW
    try:
        yield source
    finally:
        await source.close()


def rows(listing) -> list[tuple[int, str, State, str]]:
    return [(i.depth, i.name, i.state, i.note) for i in listing.items]


async def test_every_job_of_every_namespace_is_a_row_with_its_latest_run(marquez):
    async with lineage(marquez.url) as source:
        jobs = await read_all(source)
    assert {name: (r.state, r.reason) for name, r in jobs.items()} == {
        f"{FOOD}/etl_orders": (State.OK, "completed"),
        f"{FOOD}/etl_customers": (State.OK, "completed"),
        f"{FOOD}/etl_orders_7_days": (State.CRITICAL, 'failed: relation "public.menus" does not exist'),
        f"{FOOD}/etl_delivery_7_days": (State.OK, "completed"),
        f"{FOOD}/delivery_times_7_days": (State.OK, "running"),
        f"{FOOD}/email_discounts": (State.WARN, "aborted"),
        "analytics/nightly_rollup": (State.OK, "no runs yet"),
    }
    orders = jobs[f"{FOOD}/etl_orders"]
    assert (orders.key, orders.kind, orders.status, orders.ref) == (
        f"t:{FOOD}/etl_orders", "lineage", "completed", ("job", FOOD, "etl_orders"))
    assert orders.last_start == pytest.approx(NOW - 3595 + 0.101)  # 09:00:05.101Z
    assert orders.last_success == pytest.approx(NOW - 3475 + 0.101) and orders.last_duration == 120.0
    assert jobs["analytics/nightly_rollup"].status == "no runs" and jobs["analytics/nightly_rollup"].last_start is None
    assert jobs[f"{FOOD}/delivery_times_7_days"].last_duration is None  # still running
    assert source.item_actions(orders) == []


async def test_a_failed_job_is_critical_with_its_error_and_its_recent_failures(marquez):
    async with lineage(marquez.url, namespaces=FOOD) as source:
        jobs = await read_all(source)
    failed = jobs["etl_orders_7_days"]  # one namespace watched: plain job names
    assert failed.state is State.CRITICAL and failed.status == "failed"
    assert failed.reason == 'failed: relation "public.menus" does not exist'
    assert failed.failures == 2  # two of its runs failed in the last 24 h; the one of 04-29 is older
    assert failed.last_success == NOW - 86400 - 3600 + 540  # 2024-04-30T09:09Z, the newest COMPLETED run
    assert failed.last_duration == 100.0
    assert marquez.sent("/api/v1/namespaces") == []  # the namespaces were named: no need to list them


async def test_lists_are_read_page_by_page(marquez):
    async with lineage(marquez.url) as source:
        source.page_size = 2
        jobs = await read_all(source)
    assert len(jobs) == 7
    assert [(q["limit"], q["offset"]) for q in marquez.sent("/api/v1/namespaces")] == [(["2"], ["0"]), (["2"], ["2"])]
    assert [q["offset"] for q in marquez.sent(f"/api/v1/namespaces/{FOOD}/jobs")] == [["0"], ["2"], ["4"]]


async def test_a_namespace_with_more_jobs_than_a_poll_reads_says_so(marquez, monkeypatch):
    from backends.adapters import lineage as module

    monkeypatch.setattr(module, "MAX_PAGES", 2)
    async with lineage(marquez.url, namespaces=[FOOD, "analytics"]) as source:
        source.page_size = 2
        jobs = await read_all(source)
    assert len([name for name in jobs if name.startswith(f"{FOOD}/")]) == 5  # four jobs and the notice
    notice = jobs[f"{FOOD}/…"]
    assert (notice.state, notice.can_open) == (State.WARN, False)
    assert notice.reason == f"only the first 4 jobs of {FOOD} are watched (2 pages of 2 a poll)"


async def test_a_namespace_that_cannot_be_read_is_its_own_row(marquez):
    async with lineage(marquez.url, namespaces=[FOOD, "nope"]) as source:
        jobs = await read_all(source)
    assert len(jobs) == 7
    assert (jobs["nope"].state, jobs["nope"].can_open) == (State.UNKNOWN, False)
    assert jobs["nope"].reason == "namespace nope: HTTP 404 from GET /namespaces/nope/jobs: /api/v1/namespaces/nope/jobs not found"


async def test_opening_a_failed_job_shows_its_upstream_then_its_affected_downstream(marquez):
    async with lineage(marquez.url) as source:
        listing = await source.open(("job", FOOD, "etl_orders_7_days"))
    assert rows(listing) == [
        (0, "job etl_orders_7_days", State.CRITICAL, 'failed: relation "public.menus" does not exist'),
        (1, "↑ dataset public.orders", State.OK, ""),
        (2, "↑ job etl_orders", State.OK, ""),
        (3, "↑ dataset public.raw_orders", State.OK, f"namespace {RAW_NS}"),
        (1, "↓ dataset public.orders_7_days", State.WARN, "not refreshed: etl_orders_7_days failed"),
        (2, "↓ job etl_delivery_7_days", State.OK, ""),
        (3, "↓ dataset public.delivery_7_days", State.WARN, "downstream of failed etl_orders_7_days"),
        (4, "↓ job delivery_times_7_days", State.OK, ""),
        (5, "↓ dataset public.top_delivery_times", State.WARN, "downstream of failed etl_orders_7_days"),
    ]
    assert listing.note == "FAILED: 3 downstream datasets and 2 jobs affected · 3 upstream · depth 5"
    assert [i.ref for i in listing.items[1:4]] == [
        ("dataset", FOOD, "public.orders"), ("job", FOOD, "etl_orders"), ("dataset", RAW_NS, "public.raw_orders")]
    assert not listing.items[0].can_open and all(i.can_open for i in listing.items[1:])
    assert [i.status for i in listing.items] == ["failed", "", "completed", "", "writer failed", "completed",
                                                "affected", "running", "affected"]
    assert marquez.sent("/api/v1/lineage") == [{"nodeId": [f"job:{FOOD}:etl_orders_7_days"], "depth": ["5"]}]


async def test_depth_counts_jobs_as_marquez_does(marquez):
    async with lineage(marquez.url, depth=1) as source:
        listing = await source.open(("job", FOOD, "etl_orders_7_days"))
    assert [(d, name) for d, name, _, _ in rows(listing)] == [
        (0, "job etl_orders_7_days"),
        (1, "↑ dataset public.orders"), (2, "↑ job etl_orders"), (3, "↑ dataset public.raw_orders"),
        (1, "↓ dataset public.orders_7_days"), (2, "↓ job etl_delivery_7_days"), (3, "↓ dataset public.delivery_7_days"),
    ]
    assert listing.note.startswith("FAILED: 2 downstream datasets and 1 job affected")
    assert marquez.sent("/api/v1/lineage")[0]["depth"] == ["1"]


async def test_opening_a_dataset_shows_who_writes_it_and_who_reads_it(marquez):
    async with lineage(marquez.url) as source:
        listing = await source.open(("dataset", FOOD, "public.orders_7_days"))
    assert rows(listing) == [
        (0, "dataset public.orders_7_days", State.WARN, "not refreshed: etl_orders_7_days failed"),
        (1, "↑ job etl_orders_7_days", State.CRITICAL, 'failed: relation "public.menus" does not exist'),
        (2, "↑ dataset public.orders", State.OK, ""),
        (3, "↑ job etl_orders", State.OK, ""),
        (4, "↑ dataset public.raw_orders", State.OK, f"namespace {RAW_NS}"),
        (1, "↓ job etl_delivery_7_days", State.OK, ""),
        (2, "↓ dataset public.delivery_7_days", State.OK, ""),
        (3, "↓ job delivery_times_7_days", State.OK, ""),
        (4, "↓ dataset public.top_delivery_times", State.OK, ""),
    ]
    assert listing.note == "4 upstream · 4 downstream · depth 5"
    assert marquez.sent("/api/v1/lineage")[0]["nodeId"] == [f"dataset:{FOOD}:public.orders_7_days"]


async def test_a_cycle_in_the_graph_ends_and_each_row_stays_distinct(marquez):
    async with lineage(marquez.url) as source:
        listing = await source.open(("job", "loops", "a"))
    assert rows(listing) == [
        (0, "job a", State.OK, ""),
        (1, "↑ dataset y", State.WARN, "not refreshed: b failed"),
        (2, "↑ job b", State.CRITICAL, "failed: division by zero"),
        (3, "↑ dataset x", State.OK, ""),
        (1, "↓ dataset x", State.OK, ""),
        (2, "↓ job b", State.CRITICAL, "failed: division by zero"),
        (3, "↓ dataset y", State.WARN, "not refreshed: b failed"),
    ]
    refs = [i.ref for i in listing.items]
    assert len(set(refs)) == len(refs)
    assert refs[5] == ("job", "loops", "b", "downstream")
    async with lineage(marquez.url) as source:  # that ref opens the job all the same
        assert (await source.open(refs[5])).items[0].name == "job b"


async def test_a_refused_port_is_one_row_saying_so():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with lineage(f"http://127.0.0.1:{port}") as source:
        (reading,) = await source.poll()
        with pytest.raises(PipelineError, match=f"connection refused on 127.0.0.1:{port}"):
            await source.open(("job", FOOD, "etl_orders"))
    assert (reading.state, reading.can_open) == (State.UNKNOWN, False)
    assert reading.reason == f"connection refused on 127.0.0.1:{port} — is the service running?"


async def test_an_answer_that_is_not_json_is_a_reason(marquez):
    marquez.garbage = b"<html><body>502 Bad Gateway</body></html>"
    async with lineage(marquez.url) as source:
        (reading,) = await source.poll()
        with pytest.raises(PipelineError) as raised:
            await source.open(("job", FOOD, "etl_orders_7_days"))
    assert reading.state is State.UNKNOWN
    assert reading.reason == "the answer to GET /namespaces is not JSON: <html><body>502 Bad Gateway</body></html>"
    assert str(raised.value).startswith("the answer to GET /lineage is not JSON: <html>")


async def test_a_node_marquez_has_no_lineage_for_is_a_one_line_error(marquez):
    async with lineage(f"{marquez.url}/api/v1/") as source:  # the url may name the API root too
        with pytest.raises(PipelineError) as raised:
            await source.open(("job", FOOD, "ghost"))
    assert str(raised.value) == f"HTTP 404 from GET /lineage: /api/v1/lineage?nodeId=job:{FOOD}:ghost not found"


def test_a_node_without_data_is_named_from_its_id_as_marquez_splits_it():
    from backends.adapters.lineage import identity

    assert identity({"id": "dataset:postgres://db:5432:public.orders"}) == ("postgres://db:5432", "public.orders")
    assert identity({"id": "job:food_delivery:etl_orders"}) == ("food_delivery", "etl_orders")
    assert identity({"id": "job:food_delivery:etl_orders", "data": {"id": {"namespace": "n", "name": "j"}}}) == ("n", "j")
