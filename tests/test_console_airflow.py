"""A real Airflow 3 driven through the console, as an operator would during triage: unpause a DAG, trigger it
with a conf, watch its row turn red, `l` straight to the failed task's log, open its runs, clear the failed
task with the dry run's preview, and find every step in the audit log."""

from __future__ import annotations

import json

import yaml

from backends import config as cfg
from backends.model import State
from tui.app import LakedeckApp
from tui.log_screen import LogScreen
from tui.pipeline_screen import PipelineScreen
from ui_support import screen_text, until
from widgets.ask_modal import AskModal
from widgets.confirm import ARM_DELAY, ConfirmModal
from widgets.status_table import StatusTable

MARKER = "lakedeck-marker: the source table [/raw/orders] is missing"  # what failing_dag logs (markup-like on purpose)


async def wait_for(pilot, condition, seconds: float = 15.0) -> None:
    assert await until(pilot, condition, seconds), f"condition never became true; the screen:\n{screen_text(pilot.app)}"


async def choose(pilot, app, title: str) -> None:
    """In the open action menu, move to the action called ``title`` and pick it."""
    await pilot.press("a")
    await wait_for(pilot, lambda: app.screen.query("OptionList"))
    menu = app.screen.query_one("OptionList")
    for _ in range(10):
        if menu.highlighted_option is not None and menu.highlighted_option.prompt.plain.startswith(title):
            break
        await pilot.press("down")
    assert menu.highlighted_option.prompt.plain.startswith(title), screen_text(app)
    await pilot.press("enter")


async def confirm_disruptive(pilot, app) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
    await pilot.pause(ARM_DELAY)
    await pilot.press("tab", "enter")


def newest_run(airflow, dag_id: str) -> dict:
    return airflow.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=1")["dag_runs"][0]


async def test_triage_a_failing_dag_from_the_keyboard(tmp_path, airflow):
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "pipelines": [
        {"name": "af", "kind": "airflow", "url": airflow.url, "username": airflow.username,
         "password": airflow.password, "refresh": "1s", "timeout": "900ms", "dags": ["failing_dag", "ok_dag"]}]})
    app = LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1")
    airflow.call("PATCH", "/api/v2/dags/failing_dag", {"is_paused": True})  # however earlier tests left it
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("3")
        rows = app.dashboard.query_one("#pipelines-table", StatusTable)
        await wait_for(pilot, lambda: "af:failing_dag" in rows.keys and app.engine.readings["af:failing_dag"].paused)
        rows.move_cursor(row=rows.keys.index("af:failing_dag"))

        await choose(pilot, app, "Unpause")
        await confirm_disruptive(pilot, app)
        await wait_for(pilot, lambda: not app.engine.readings["af:failing_dag"].paused)
        assert airflow.call("GET", "/api/v2/dags/failing_dag")["is_paused"] is False

        before = newest_run(airflow, "failing_dag")["dag_run_id"] if airflow.call(
            "GET", "/api/v2/dags/failing_dag/dagRuns?limit=1")["dag_runs"] else None
        rows.move_cursor(row=rows.keys.index("af:failing_dag"))
        await choose(pilot, app, "Trigger")
        await wait_for(pilot, lambda: isinstance(app.screen, AskModal))
        await pilot.press(*"[1]", "enter")  # not an object: refused, the modal stays and says why
        await wait_for(pilot, lambda: "JSON object" in screen_text(app) or "object" in screen_text(app))
        assert isinstance(app.screen, AskModal)
        app.screen.query_one("Input").value = ""
        await pilot.press(*'{"reason": "pilot"}', "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert '"reason": "pilot"' in screen_text(app)  # the exact request, with the conf
        await confirm_disruptive(pilot, app)
        await wait_for(pilot, lambda: newest_run(airflow, "failing_dag")["dag_run_id"] != before)
        run = newest_run(airflow, "failing_dag")
        assert run["conf"] == {"reason": "pilot"}
        airflow.wait_for_run("failing_dag", run["dag_run_id"], {"failed"})
        await wait_for(pilot, lambda: app.engine.readings["af:failing_dag"].state is State.CRITICAL
                       and run["dag_run_id"] in app.engine.readings["af:failing_dag"].reason)
        await wait_for(pilot, lambda: rows.keys[0] == "af:failing_dag")  # failures first

        rows.move_cursor(row=0)
        await pilot.press("l")  # straight to the failed task's log
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen), 20)
        await wait_for(pilot, lambda: MARKER in screen_text(app))  # shown as text, never as markup
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.dashboard)

        rows.move_cursor(row=rows.keys.index("af:failing_dag"))
        rows.focus()
        await pilot.press("enter")  # the DAG's runs, newest first
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen), 30)
        runs = app.screen
        await wait_for(pilot, lambda: run["dag_run_id"] in screen_text(app))
        assert runs.selected is not None and runs.selected.ref == ("run", "failing_dag", run["dag_run_id"])
        await pilot.press("enter")  # its task instances
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen is not runs)
        await wait_for(pilot, lambda: "load_orders" in screen_text(app) and "failed" in screen_text(app))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is runs)

        await choose(pilot, app, "Clear failed tasks")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        shown = screen_text(app)
        assert "It will affect (1)" in shown and "load_orders" in shown and "Type failing_dag to confirm" in shown
        await pilot.pause(ARM_DELAY)
        await pilot.press("shift+tab", *"failing_dag", "enter")
        await wait_for(pilot, lambda: airflow.run_of("failing_dag", run["dag_run_id"])["state"] != "failed", 20)
        # the cleared task runs again (try 2) and fails again: the DAG's row stays red, as it should
        airflow.wait_for_run("failing_dag", run["dag_run_id"], {"failed"})
        airflow.call("PATCH", "/api/v2/dags/failing_dag", {"is_paused": True})

    events = [(e["event"], e["action"], e["target"]) for e in
              map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines())]
    assert [e[:2] for e in events] == [
        ("requested", "unpause"), ("confirmed", "unpause"), ("succeeded", "unpause"),
        ("requested", "trigger"), ("confirmed", "trigger"), ("succeeded", "trigger"),
        ("requested", "clear"), ("confirmed", "clear"), ("succeeded", "clear")]
    assert events[-1][2] == f"af:failing_dag/{run['dag_run_id']}"
