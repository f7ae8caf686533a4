"""The Pipelines pane driven through the console: real adapters against the local pipeline API server (the
analytics engine's API), recorded Marquez answers, and a real dbt. Keys in; screens, server state and audit
lines out."""

from __future__ import annotations

import json

import yaml

from backends import config as cfg
from backends.model import PipelineReading, State
from pipeline_api_server import pipeline_api  # noqa: F401  (fixture)
from marquez_server import marquez  # noqa: F401  (fixture)
from tui.app import LakedeckApp
from tui.pipeline_screen import PipelineScreen
from ui_support import choose, screen_text, until
from widgets.ask_modal import AskModal
from widgets.confirm import ARM_DELAY, ConfirmModal
from widgets.status_table import StatusTable

pytest_plugins = ["conftest_dbt"]


def make_app(tmp_path, *pipelines: dict) -> LakedeckApp:
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "refresh": "500ms",
                           "pipelines": list(pipelines)})
    return LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1")


async def wait_for(pilot, condition, seconds: float = 10.0) -> None:
    assert await until(pilot, condition, seconds), "condition never became true"


def table(app) -> StatusTable:
    return app.dashboard.query_one("#pipelines-table", StatusTable)


async def select_row(pilot, app, key: str) -> None:
    await pilot.press("3")
    rows = table(app)
    await wait_for(pilot, lambda: key in rows.keys)
    rows.move_cursor(row=rows.keys.index(key))
    await pilot.pause()


def audit(tmp_path) -> list[tuple[str, str, str]]:
    path = tmp_path / "audit.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(e["event"], e["action"], e["target"]) for e in map(json.loads, lines)]


async def test_rest_pipelines_failures_first_then_open_and_clear_errors(tmp_path, pipeline_api):
    app = make_app(tmp_path, {"name": "engine", "kind": "rest", "url": pipeline_api.url})
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: len(table(app).keys) == 6)
        assert table(app).keys[0] == "engine:billing"  # the failed pipeline on top
        text = screen_text(app)
        assert "✖ CRITICAL" in text and "billing" in text and "sink refused writes" in text

        await select_row(pilot, app, "engine:clicks")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen))
        await wait_for(pilot, lambda: "b-17" in screen_text(app) and "b-18" in screen_text(app))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.dashboard)

        await pilot.press("a")
        await wait_for(pilot, lambda: "Clear errors" in screen_text(app))
        menu = screen_text(app)
        assert "destructive" in menu and "disruptive" in menu and "Restart" in menu
        await choose(pilot, app, "Clear errors")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        shown = screen_text(app)
        assert "It will affect (2)" in shown and "b-17" in shown and "Type clicks to confirm" in shown
        await pilot.pause(ARM_DELAY)
        await pilot.press("shift+tab", *"clicks", "enter")  # Cancel has the focus; the name field is before it
        await wait_for(pilot, lambda: pipeline_api.engine.errors("clicks") == [])
        assert pipeline_api.engine.errors("billing")  # only the chosen pipeline's errors went
    assert audit(tmp_path) == [("requested", "clear-errors", "engine:clicks"),
                               ("confirmed", "clear-errors", "engine:clicks"),
                               ("succeeded", "clear-errors", "engine:clicks")]


async def test_a_late_pipeline_turns_warn_then_critical(tmp_path, pipeline_api):
    """The seeded lastSuccess of ``orders`` is in 2024: far older than any max age."""
    app = make_app(tmp_path, {"name": "engine", "kind": "rest", "url": pipeline_api.url, "max_age": "1h",
                              "max_age_for": {"exports": "100000d"}})
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: "engine:orders" in app.engine.readings)
        orders = app.engine.readings["engine:orders"]
        assert orders.state is State.CRITICAL and orders.reason.startswith("late: last success")
        assert "max age 1h" in orders.reason
        exports = app.engine.readings["engine:exports"]
        assert isinstance(exports, PipelineReading) and exports.paused and exports.state is State.OK


async def test_a_disruptive_action_in_read_only_is_refused(tmp_path, pipeline_api):
    app = make_app(tmp_path, {"name": "engine", "kind": "rest", "url": pipeline_api.url, "read_only": True})
    async with app.run_test(size=(160, 50)) as pilot:
        await select_row(pilot, app, "engine:orders")
        await pilot.press("a")
        await wait_for(pilot, lambda: "READ-ONLY" in screen_text(app))
        assert "Restart" not in screen_text(app)
    assert not pipeline_api.engine.sent("POST")


async def test_lineage_enter_on_a_failed_job_shows_what_it_feeds(tmp_path, marquez):
    app = make_app(tmp_path, {"name": "lineage", "kind": "lineage", "url": marquez.url})
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: table(app).keys and app.engine.readings[table(app).keys[0]].state is State.CRITICAL)
        failed = app.engine.readings[table(app).keys[0]]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen))
        screen = app.screen
        assert "downstream" in screen.listing.note and "affected" in screen.listing.note
        assert any("↓" in item.name for item in screen.listing.items)
        assert failed.name.split("/")[-1] in screen_text(app)


async def test_dbt_build_asks_for_a_select_streams_its_output_and_the_row_follows(tmp_path, dbt_executable, dbt_project):
    app = make_app(tmp_path, {"name": "dbt", "kind": "dbt", "project_dir": str(dbt_project),
                              "dbt": dbt_executable})
    async with app.run_test(size=(160, 50)) as pilot:
        await select_row(pilot, app, "dbt:shop")
        assert "no run_results.json" in app.engine.readings["dbt:shop"].reason
        await pilot.press("a")
        await wait_for(pilot, lambda: "Build" in screen_text(app))
        await pilot.press("enter")  # build comes first
        await wait_for(pilot, lambda: isinstance(app.screen, AskModal))
        await pilot.press(*"--help", "enter")
        await wait_for(pilot, lambda: "dbt" in screen_text(app) and isinstance(app.screen, AskModal))
        assert "-" in app.screen.query_one(".ask--error").render().plain  # refused, the modal stays
        field = app.screen.query_one("Input")
        field.value = ""
        await pilot.press(*"orders+", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "--select orders+" in screen_text(app)
        await pilot.pause(ARM_DELAY)
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: "Completed with" in screen_text(app) or "FAILED" in screen_text(app), 90)
        await wait_for(pilot, lambda: app.engine.readings["dbt:shop"].state is State.CRITICAL, 10)
        await wait_for(pilot, lambda: any(key.startswith("dbt:") and key != "dbt:shop" for key in table(app).keys))
        assert "not_null_orders_amount" in " ".join(table(app).keys)  # the failing test has its own row
    events = audit(tmp_path)
    assert [e[0] for e in events] == ["requested", "confirmed", "failed"] and events[0][1] == "build"


def test_lakedeck_check_includes_pipelines(tmp_path, pipeline_api):
    import subprocess
    import sys

    config = tmp_path / "lakedeck.yaml"
    config.write_text(yaml.safe_dump({"pipelines": [{"name": "engine", "kind": "rest", "url": pipeline_api.url}]}))
    out = subprocess.run([sys.executable, "-m", "tui.cli", "check", "-c", str(config)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out.stderr  # billing failed
    first = out.stdout.splitlines()[1]
    assert first.startswith("CRITICAL") and "engine:billing" in first and "rest failed" in first
    assert "engine:orders" in out.stdout and "rest running" in out.stdout
    as_json = subprocess.run([sys.executable, "-m", "tui.cli", "check", "-c", str(config), "--json"],
                             capture_output=True, text=True, timeout=60)
    panes = {r["key"]: r["pane"] for r in json.loads(as_json.stdout)["readings"]}
    assert panes["engine:billing"] == "pipelines" and len(panes) == 6


def test_lakedeck_action_on_a_pipeline_previews_then_runs(tmp_path, pipeline_api):
    import subprocess
    import sys

    config = tmp_path / "lakedeck.yaml"
    config.write_text(yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"),
                                      "pipelines": [{"name": "engine", "kind": "rest", "url": pipeline_api.url}]}))

    def action(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tui.cli", "action", *args, "-c", str(config)],
                              capture_output=True, text=True, timeout=60)

    dry = action("engine:clicks", "clear-errors", "--dry-run")
    assert dry.returncode == 0 and "b-17" in dry.stdout and "dry run: nothing was run" in dry.stdout
    assert pipeline_api.engine.errors("clicks")
    unconfirmed = action("engine:clicks", "clear-errors")
    assert unconfirmed.returncode == 3 and pipeline_api.engine.errors("clicks")
    done = action("engine:clicks", "clear-errors", "--yes")
    assert done.returncode == 0, done.stderr
    assert pipeline_api.engine.errors("clicks") == [] and pipeline_api.engine.errors("billing")
    missing = action("engine:nope", "restart")
    assert missing.returncode == 2 and "no source or pipeline named 'engine:nope'" in missing.stderr
