"""The Backups and Tables panes through the keys: a real SQLite database backed up, verified, pruned and
restored; a real pyiceberg SQL catalog whose snapshots are expired and rolled back, each destructive step
confirmed by typing its target's name. Keys in; files, catalog state and the audit log out."""

from __future__ import annotations

import json
import sqlite3

import yaml

from backends import config as cfg
from conftest_iceberg import orders_batch
from tui.app import LakedeckApp
from tui.pipeline_screen import PipelineScreen
from ui_support import screen_text, until
from widgets.ask_modal import AskModal
from widgets.confirm import ARM_DELAY, ConfirmModal
from widgets.status_table import StatusTable


def make_app(tmp_path, **sections) -> LakedeckApp:
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "refresh": "1s",
                           "store": {"enabled": False}, **sections})
    return LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1")


async def wait_for(pilot, condition, seconds: float = 15.0) -> None:
    assert await until(pilot, condition, seconds), "condition never became true"


def audit(tmp_path) -> list[tuple[str, str]]:
    path = tmp_path / "audit.jsonl"
    return [(e["event"], e["action"]) for e in map(json.loads, path.read_text().splitlines())] if path.exists() else []


async def choose(pilot, app, title: str) -> None:
    """``a``, then the menu entry whose text starts with ``title``."""
    await pilot.press("a")
    await wait_for(pilot, lambda: title in screen_text(app))
    for _ in range(8):
        if app.screen.query_one("OptionList").highlighted_option.prompt.plain.startswith(title):
            break
        await pilot.press("down")
    await pilot.press("enter")


async def confirm_typed(pilot, app, name: str) -> str:
    """A destructive confirmation: what it shows, then the name typed and Run pressed."""
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
    await wait_for(pilot, lambda: f"Type {name} to confirm" in screen_text(app))
    shown = screen_text(app)
    await pilot.pause(ARM_DELAY)
    await pilot.press("shift+tab", *name, "enter")
    return shown


def database(path, rows: int) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, note TEXT)")
    con.executemany("INSERT INTO orders (note) VALUES (?)", [("x",)] * rows)
    con.commit()
    con.close()


def count(path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM orders").fetchone()[0]
    finally:
        con.close()


async def test_backup_run_verify_prune_and_restore_through_the_keys(tmp_path):
    db, dest, restored = tmp_path / "app.db", tmp_path / "backups", tmp_path / "restored.db"
    dest.mkdir()
    database(db, 100)
    app = make_app(tmp_path, backups=[{"name": "app-db", "kind": "sqlite", "database": str(db), "dest": str(dest),
                                       "rpo": "1h", "keep_last": 1, "restore_to": str(restored)}])
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.dashboard.query_one("#backups-table", StatusTable)
        await wait_for(pilot, lambda: table.keys == ["app-db"])
        assert "no backup yet" in screen_text(app)
        await pilot.press("5")
        for rows in (100, 150):  # two sets: the first with 100 rows, the second with 150
            await choose(pilot, app, "Run backup")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
            await pilot.pause(ARM_DELAY)
            await pilot.press("tab", "enter")
            await wait_for(pilot, lambda: len(app.engine.readings["app-db"].sets) == (1 if rows == 100 else 2))
            database(db, 50)
        job = app.engine.readings["app-db"]
        assert job.state.name == "OK" and "2 sets" in job.reason
        newest, oldest = job.sets[0].name, job.sets[1].name

        await choose(pilot, app, "Verify")
        await wait_for(pilot, lambda: app.engine.readings["app-db"].sets[0].verified == "ok")
        await wait_for(pilot, lambda: "✓ ok" in screen_text(app))

        await choose(pilot, app, "Prune")
        shown = await confirm_typed(pilot, app, "app-db")
        assert oldest in shown and newest not in shown.split("It will affect")[-1]  # exactly the old set goes
        await wait_for(pilot, lambda: [s.name for s in app.engine.readings["app-db"].sets] == [newest])
        assert not (dest / "app-db" / oldest).exists()

        await pilot.press("enter")  # the job's sets
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen) and newest in screen_text(app))
        await choose(pilot, app, "Restore")
        shown = await confirm_typed(pilot, app, "app-db")
        assert str(restored) in shown and newest in shown
        await wait_for(pilot, lambda: restored.exists())
    assert count(restored) == 150 and count(db) == 200  # the set's rows; the live database untouched
    assert ("succeeded", "prune") in audit(tmp_path) and ("succeeded", "restore") in audit(tmp_path)


async def test_expire_and_rollback_snapshots_through_the_keys(tmp_path, iceberg_lake):
    orders = iceberg_lake.make_table("sales.pilot", [orders_batch(i * 10, 10) for i in range(4)])
    snapshots = [s.snapshot_id for s in orders.snapshots()]  # oldest first
    app = make_app(tmp_path, tables=[iceberg_lake.source(namespaces=["sales"])])
    key = f"{iceberg_lake.source()['name']}:sales.pilot"
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("6")
        table = app.dashboard.query_one("#tables-table", StatusTable)
        await wait_for(pilot, lambda: key in table.keys)
        assert app.engine.readings[key].records == 40 and app.engine.readings[key].snapshots == 4
        table.move_cursor(row=table.keys.index(key))

        await choose(pilot, app, "Expire")
        await wait_for(pilot, lambda: isinstance(app.screen, AskModal))
        await pilot.press(*"last 3", "enter")
        shown = await confirm_typed(pilot, app, "sales.pilot")
        assert str(snapshots[0]) in shown and str(snapshots[1]) not in shown
        await wait_for(pilot, lambda: app.engine.readings[key].snapshots == 3)
        assert [s.snapshot_id for s in iceberg_lake.table("sales.pilot").snapshots()] == snapshots[1:]

        await pilot.press("enter")  # the snapshots, newest first
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen) and str(snapshots[1]) in screen_text(app))
        listing = app.screen.table
        listing.move_cursor(row=next(i for i, k in enumerate(listing.keys) if str(snapshots[1]) in k))
        await choose(pilot, app, "Roll back")
        shown = await confirm_typed(pilot, app, "sales.pilot")
        assert str(snapshots[1]) in shown
        await wait_for(pilot, lambda: iceberg_lake.table("sales.pilot").current_snapshot().snapshot_id == snapshots[1])
    assert iceberg_lake.table("sales.pilot").scan().to_arrow().num_rows == 20
    assert ("succeeded", "expire") in audit(tmp_path) and ("succeeded", "rollback") in audit(tmp_path)
