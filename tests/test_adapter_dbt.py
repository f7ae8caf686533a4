"""DbtProject against a real dbt-core 1.11 with dbt-duckdb, on a copy of tests/dbt_project (shop).

shop: models customers, orders, numbers (the slow one) and order_totals (customers + orders); five tests, of
which not_null_orders_amount fails (order 12 has no amount), so ``dbt build`` skips order_totals and its test.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from helpers import source_for

from backends.actions import Action, Tier
from backends.adapters.pipeline_base import PipelineError
from backends.model import PipelineReading, State

pytestmark = pytest.mark.integration
pytest_plugins = ["conftest_dbt"]  # its fixtures: dbt_executable, dbt_project, built_dbt_project

FAILING_TEST = "not_null_orders_amount"
FAILING_MESSAGE = "Got 1 result, configured to fail if != 0"
UNIT_TEST = """unit_tests:
  - name: totals_add_up
    model: order_totals
    given:
      - input: ref('customers')
        rows: [{customer_id: 1, name: a}]
      - input: ref('orders')
        rows: [{order_id: 1, customer_id: 1, amount: 2}, {order_id: 2, customer_id: 1, amount: 3}]
    expect:
      rows: [{customer_id: 1, total: 6}]  # wrong on purpose: 2 + 3 is 5
"""


def project(directory: Path, dbt: str = "dbt", **options):
    return source_for("pipelines", "dbt", project_dir=str(directory), dbt=dbt, refresh="10s", timeout="5s",
                      **options)


async def poll(source) -> dict[str, PipelineReading]:
    readings = await source.poll()
    assert all("\n" not in r.reason and r.kind == "dbt" for r in readings)
    return {r.key: r for r in readings}


def action(source, row: PipelineReading, action_id: str) -> Action:
    return next(a for a in source.item_actions(row) if a.id == action_id)


def results_of(directory: Path) -> dict:
    return json.loads((directory / "target" / "run_results.json").read_text())


# -- before any run, and broken setups -------------------------------------------------------------


async def test_before_any_run(dbt_project):
    source = project(dbt_project)
    readings = await poll(source)
    assert list(readings) == ["t:shop"]  # named by dbt_project.yml, not by the directory
    row = readings["t:shop"]
    assert (row.state, row.status, row.ref) == (State.UNKNOWN, "no runs", ("project",))
    assert row.reason == f"no run_results.json in {dbt_project}/target yet (run dbt build)"
    with pytest.raises(PipelineError, match="no run_results.json"):
        await source.open(("project",))


async def test_missing_project_directory(tmp_path):
    source = project(tmp_path / "gone")
    [row] = (await poll(source)).values()
    assert (row.key, row.state, row.status) == ("t:gone", State.UNKNOWN, "missing")
    assert row.reason == f"project directory {tmp_path}/gone does not exist"
    result = await source.run(action(source, row, "build"), lambda line: None)
    assert not result.ok and result.error == f"project directory {tmp_path}/gone does not exist"


async def test_a_directory_that_is_not_a_dbt_project(tmp_path):
    [row] = (await poll(project(tmp_path))).values()
    assert row.state is State.UNKNOWN
    assert row.reason == f"no dbt_project.yml in {tmp_path}: is project_dir right?"


# -- running dbt through the actions ---------------------------------------------------------------


async def test_build_streams_dbt_output_and_fails_on_the_failing_test(dbt_project, dbt_executable):
    source = project(dbt_project, dbt_executable)
    row = (await poll(source))["t:shop"]
    build = source.with_value(action(source, row, "build"), "")
    assert build.argv == (dbt_executable, "build", "--project-dir", str(dbt_project),
                          "--profiles-dir", str(dbt_project))
    assert (build.tier, build.target, build.source, build.cwd) == (Tier.DISRUPTIVE, "t:shop", "t", str(dbt_project))

    lines: list[str] = []
    result = await source.run(build, lines.append)
    assert (result.ok, result.exit_code) == (False, 1)
    assert any("Running with dbt=1.11" in line for line in lines), lines[:5]
    assert any(f"FAIL 1 {FAILING_TEST}" in line for line in lines)
    assert not any("\x1b[" in line for line in lines)  # no colour codes for the log view to show as garbage

    readings = await poll(source)
    shop = readings["t:shop"]
    assert (shop.state, shop.status, shop.failures) == (State.CRITICAL, "failed", 1)
    invocation = results_of(dbt_project)["metadata"]["invocation_id"]
    assert shop.reason.startswith(f"dbt build: 6 ok, 1 failed ({FAILING_TEST}), 2 skipped · ")
    assert shop.reason.endswith(f" · invocation {invocation[:8]}")
    assert shop.last_start is not None and 0 < shop.last_duration < 120 and shop.last_success is None
    failing = readings[f"t:{FAILING_TEST}"]
    assert (failing.state, failing.status, failing.reason) == (State.CRITICAL, "fail", FAILING_MESSAGE)
    assert failing.ref[0] == "node" and failing.ref[1].startswith(f"test.shop.{FAILING_TEST}.")
    assert len(readings) == 2


async def test_testing_one_model_replaces_the_picture_and_counts_as_a_success(built_dbt_project, dbt_executable):
    source = project(built_dbt_project, dbt_executable, max_age="1m")
    before = await poll(source)
    assert before["t:shop"].state is State.CRITICAL and f"t:{FAILING_TEST}" in before
    test = source.with_value(action(source, before["t:shop"], "test"), "customers")
    assert test.argv[-2:] == ("--select", "customers") and test.value == "customers"

    lines: list[str] = []
    result = await source.run(test, lines.append)
    assert result.ok, lines[-20:]
    assert [r["unique_id"].split(".")[2] for r in results_of(built_dbt_project)["results"]] == [
        "not_null_customers_customer_id", "unique_customers_customer_id"]

    after = await poll(source)
    shop = after["t:shop"]
    assert list(after) == ["t:shop"]  # the failing test was not part of this invocation
    assert (shop.state, shop.status, shop.failures) == (State.OK, "success", 0)
    assert shop.reason.startswith("dbt test --select customers: 2 ok · ")
    assert time.time() - 120 < shop.last_success <= time.time()

    # freshness, by the base's rules: past max_age WARN, past twice that CRITICAL
    source.clock = lambda: shop.last_success + 90
    late = (await poll(source))["t:shop"]
    assert late.state is State.WARN and late.reason.startswith("late: last success 1m30s ago (max age 1m00s) · ")
    source.clock = lambda: shop.last_success + 150
    assert (await poll(source))["t:shop"].state is State.CRITICAL


async def test_a_model_error_is_a_row_with_the_database_error(built_dbt_project, dbt_executable):
    # named like the project, so that its row needs another name than the project's row
    (built_dbt_project / "models" / "shop.sql").write_text("select * from no_such_table\n")
    source = project(built_dbt_project, dbt_executable)
    run = source.with_value(action(source, (await poll(source))["t:shop"], "run"), "shop.shop")
    result = await source.run(run, lambda line: None)
    assert (result.ok, result.exit_code) == (False, 1)

    readings = await poll(source)
    assert readings["t:shop"].reason.startswith("dbt run --select shop.shop: 1 failed (shop) · ")
    broken = readings["t:model.shop.shop"]
    assert (broken.name, broken.state, broken.status) == ("model.shop.shop", State.CRITICAL, "error")
    # `--select shop` would be the whole project: the prefilled selectors are fqns
    assert [a.value for a in source.item_actions(broken)] == ["shop.shop+", "shop.shop", "shop.shop"]
    # the heading "Runtime Error in model shop (models/shop.sql)" shortened; DuckDB's own words follow
    assert broken.reason.startswith("Runtime Error: Catalog Error: Table with name no_such_table does not exist!")


async def test_a_failing_unit_test_holds_back_its_model(built_dbt_project, dbt_executable):
    (built_dbt_project / "models" / "unit.yml").write_text(UNIT_TEST)
    source = project(built_dbt_project, dbt_executable)
    build = source.with_value(action(source, (await poll(source))["t:shop"], "build"), "order_totals")
    assert not (await source.run(build, lambda line: None)).ok

    readings = await poll(source)
    unit = readings["t:totals_add_up"]
    assert (unit.status, unit.ref) == ("fail", ("node", "unit_test.shop.order_totals.totals_add_up"))
    assert unit.reason.startswith("actual differs from expected: ")
    listing = await source.open(unit.ref)
    assert [(item.name, item.depth, item.status) for item in listing.items] == [
        ("totals_add_up", 0, "fail"), ("↓ order_totals", 1, "skipped"),
        ("↓ not_null_order_totals_customer_id", 2, "skipped")]
    assert listing.items[1].note == "model · skipped: totals_add_up failed upstream"
    assert [a.value for a in source.item_actions(unit)] == [
        "shop.order_totals+", "shop.order_totals", "shop.order_totals.totals_add_up"]

    # the prefilled fqn selects exactly the unit test in real dbt
    again = await source.run(action(source, unit, "test"), lambda line: None)
    assert (again.ok, again.exit_code) == (False, 1)
    assert [r["unique_id"] for r in results_of(built_dbt_project)["results"]] == [unit.ref[1]]


async def test_last_success_is_kept_after_a_failing_invocation(built_dbt_project):
    source = project(built_dbt_project)
    path = built_dbt_project / "target" / "run_results.json"
    failed = path.read_text()
    clean = results_of(built_dbt_project)
    clean["results"] = [r for r in clean["results"] if r["status"] in ("success", "pass")]
    path.write_text(json.dumps(clean))
    os.utime(path, (time.time() - 60, time.time() - 60))
    first = (await poll(source))["t:shop"]
    assert first.state is State.OK and first.last_success is not None

    path.write_text(failed)
    os.utime(path, (time.time() - 30, time.time() - 30))
    second = (await poll(source))["t:shop"]
    assert second.state is State.CRITICAL and second.last_success == first.last_success


async def test_freshness_judges_only_the_project_row(built_dbt_project):
    readings = await poll(project(built_dbt_project, max_age="1h"))
    assert readings["t:shop"].reason.endswith(" · late: no successful run seen (max age 1h00m)")
    assert readings[f"t:{FAILING_TEST}"].reason == FAILING_MESSAGE


# -- drill-down ------------------------------------------------------------------------------------


async def test_open_project_lists_every_node_failures_first_then_slowest(built_dbt_project):
    source = project(built_dbt_project)
    listing = await source.open(("project",))
    names = [item.name for item in listing.items]
    assert sorted(names) == sorted(["customers", "orders", "numbers", "order_totals", FAILING_TEST,
                                    "not_null_customers_customer_id", "unique_customers_customer_id",
                                    "unique_orders_order_id", "not_null_order_totals_customer_id"])
    first = listing.items[0]
    assert (first.name, first.state, first.status) == (FAILING_TEST, State.CRITICAL, "fail")
    assert first.note == f"test · {FAILING_MESSAGE}" and first.can_open
    durations = [item.duration for item in listing.items[1:] if item.status != "skipped"]
    assert durations == sorted(durations, reverse=True) and None not in durations
    assert names[1] == "numbers"  # the slow model
    skipped = {item.name: item for item in listing.items if item.status == "skipped"}
    assert set(skipped) == {"order_totals", "not_null_order_totals_customer_id"}
    assert all(item.state is State.WARN and item.duration is None for item in skipped.values())
    assert [item.name for item in listing.items[-2:]] == list(skipped)  # they did not run: last
    assert skipped["order_totals"].note == f"model · skipped: {FAILING_TEST} failed upstream"

    invocation = results_of(built_dbt_project)["metadata"]["invocation_id"]
    assert listing.note.startswith("dbt build · ended ")
    assert f" · invocation {invocation[:8]} · slowest models: numbers " in listing.note


async def test_open_failing_test_shows_what_it_holds_back_and_what_it_tests(built_dbt_project):
    source = project(built_dbt_project)
    failing = (await poll(source))[f"t:{FAILING_TEST}"]
    listing = await source.open(failing.ref)
    assert [(item.name, item.depth, item.status) for item in listing.items] == [
        (FAILING_TEST, 0, "fail"),
        ("↓ order_totals", 1, "skipped"),
        ("↓ not_null_order_totals_customer_id", 2, "skipped"),
        ("↑ orders", 1, "success"),
    ]
    assert listing.note.startswith("↓ 2 downstream of orders: what dbt build skips when")
    assert len({item.ref for item in listing.items}) == len(listing.items)  # rows are keyed by ref


async def test_open_model_shows_its_tests_and_dependants(built_dbt_project):
    source = project(built_dbt_project)
    listing = await source.open(("node", "model.shop.order_totals"))
    assert [(item.name, item.depth) for item in listing.items] == [
        ("order_totals", 0), ("↓ not_null_order_totals_customer_id", 1), ("↑ customers", 1), ("↑ orders", 1)]
    listing = await source.open(("node", "model.shop.customers"))
    assert [item.name for item in listing.items][:2] == ["customers", "↓ order_totals"]


async def test_without_a_manifest_the_project_still_reads_but_nodes_cannot_open(built_dbt_project):
    (built_dbt_project / "target" / "manifest.json").unlink()
    source = project(built_dbt_project)
    readings = await poll(source)
    assert readings["t:shop"].state is State.CRITICAL and f"t:{FAILING_TEST}" in readings
    with pytest.raises(PipelineError, match="no manifest.json in .*run dbt parse or build"):
        await source.open(readings[f"t:{FAILING_TEST}"].ref)


# -- corrupt files and caching ---------------------------------------------------------------------


async def test_corrupt_run_results(built_dbt_project):
    path = built_dbt_project / "target" / "run_results.json"
    path.write_text('{"metadata": {')
    [row] = (await poll(project(built_dbt_project))).values()
    assert (row.state, row.status) == (State.UNKNOWN, "unreadable")
    assert row.reason == ("run_results.json is not valid JSON (expecting property name enclosed in double quotes "
                          "at line 1 column 15): run dbt again or remove it")

    path.write_text('{"results": 5}')
    [row] = (await poll(project(built_dbt_project))).values()
    assert row.reason.startswith("run_results.json is not what dbt writes (")


async def test_a_half_written_file_keeps_the_last_good_reading(built_dbt_project):
    source = project(built_dbt_project)
    path = built_dbt_project / "target" / "run_results.json"
    good = (await poll(source))["t:shop"]
    path.write_text(path.read_text()[:500])  # as dbt leaves it mid-write
    assert (await poll(source))["t:shop"].reason == good.reason
    os.utime(path, (time.time() - 10, time.time() - 10))  # still broken long after: say so
    assert (await poll(source))["t:shop"].status == "unreadable"


async def test_files_are_parsed_again_only_when_they_change(built_dbt_project):
    source = project(built_dbt_project)
    parsed: list[int] = []
    parse = source._run_results.parse
    source._run_results.parse = lambda raw: parsed.append(1) or parse(raw)
    await poll(source)
    await poll(source)
    assert len(parsed) == 1
    path = built_dbt_project / "target" / "run_results.json"
    path.write_text(path.read_text() + " ")
    await poll(source)
    assert len(parsed) == 2


# -- actions ---------------------------------------------------------------------------------------


async def test_failing_node_offers_the_next_steps_prefilled(built_dbt_project):
    source = project(built_dbt_project, "/opt/dbt", target="ci")
    readings = await poll(source)
    actions = {a.id: a for a in source.item_actions(readings[f"t:{FAILING_TEST}"])}
    assert set(actions) == {"build", "run", "test"}
    base = ("/opt/dbt", "build", "--project-dir", str(built_dbt_project), "--profiles-dir", str(built_dbt_project),
            "--target", "ci")
    assert actions["build"].argv == (*base, "--select", "shop.orders+")
    assert actions["test"].argv[-2:] == ("--select", f"shop.{FAILING_TEST}")
    assert [a.title for a in actions.values()] == ["Build orders+", "Run orders", f"Test {FAILING_TEST}"]
    assert all(a.target == "t:shop" and not a.ask and a.value for a in actions.values())  # one dbt at a time
    project_actions = source.item_actions(readings["t:shop"])
    assert [a.ask for a in project_actions] == ["--select (empty for all)"] * 3


async def test_with_value_takes_selectors_and_refuses_anything_else(dbt_project):
    source = project(dbt_project)
    build = action(source, (await poll(source))["t:shop"], "build")
    given = source.with_value(build, "tag:nightly orders+ path:models/staging 1+order_totals @customers "
                                     "config.materialized:table,tag:x my-model")
    assert given.argv[given.argv.index("--select"):] == (
        "--select", "tag:nightly", "orders+", "path:models/staging", "1+order_totals", "@customers",
        "config.materialized:table,tag:x", "my-model")
    for bad, why in (("--help", "is an option, not a selector"), ("orders -x", "is an option"),
                     ("orders;rm", "never use ';'"), ("$(id)", "never use '$'"), ("a`b`", "never use '`'")):
        with pytest.raises(ValueError, match=re.escape(why)):
            source.with_value(build, bad)


async def test_item_actions_on_a_model_in_the_listing(built_dbt_project):
    source = project(built_dbt_project)
    await poll(source)
    numbers = next(item for item in (await source.open(("project",))).items if item.name == "numbers")
    assert [(a.title, a.value) for a in source.item_actions(numbers)] == [
        ("Build numbers+", "shop.numbers+"), ("Run numbers", "shop.numbers"), ("Test numbers", "shop.numbers")]


async def test_through_the_engine_the_project_row_offers_exactly_the_declared_ids(built_dbt_project, tmp_path):
    from backends.adapters import ACTION_IDS
    from backends.config import parse
    from backends.engine import Engine

    def engine_for(**options) -> Engine:
        text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "pipelines": [
            {"name": "t", "kind": "dbt", "project_dir": str(built_dbt_project), **options}]})
        engine = Engine(parse(text, str(tmp_path / "lakedeck.yaml"), {}))
        engine.build()
        return engine

    engine = engine_for(actions=[{"id": "build", "tier": "destructive"}])
    await engine.poll_once("t")
    offered = {a.id: a for a in engine.actions_for("t:shop")}
    assert set(offered) == set(ACTION_IDS[("pipelines", "dbt")])
    assert offered["build"].tier is Tier.DESTRUCTIVE and offered["test"].tier is Tier.DISRUPTIVE
    assert engine.actions_for(f"t:{FAILING_TEST}")[0].target == "t:shop"

    read_only = engine_for(read_only=True)
    await read_only.poll_once("t")
    assert read_only.actions_for("t:shop") == []
