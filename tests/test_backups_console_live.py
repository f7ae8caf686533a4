"""Through the keys (issue 13, item 6): a restore over the job's own live database says so in its
confirmation, and keeps the live file beside the restored one."""

from __future__ import annotations

from test_console_backups_tables import audit, choose, confirm_typed, count, database, make_app, wait_for

from widgets.confirm import ARM_DELAY, ConfirmModal


async def test_the_confirmation_of_a_restore_over_the_live_database_says_what_is_lost(tmp_path):
    db, dest = tmp_path / "app.db", tmp_path / "backups"
    dest.mkdir()
    database(db, 100)
    app = make_app(tmp_path, backups=[{"name": "app-db", "kind": "sqlite", "database": str(db), "dest": str(dest),
                                       "restore_to": str(db)}])
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_for(pilot, lambda: "app-db" in app.engine.readings)
        await pilot.press("5")
        await choose(pilot, app, "Run backup")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.pause(ARM_DELAY)
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: len(app.engine.readings["app-db"].sets) == 1)
        database(db, 50)  # changes after the set was taken

        await choose(pilot, app, "Restore")
        shown = await confirm_typed(pilot, app, "app-db")
        assert "this overwrites the live app.db; changes of the last " in shown
        assert "the live file is kept" in shown and "app.db.before-restore-*)" in shown  # (wrapped in the modal)
        await wait_for(pilot, lambda: ("succeeded", "restore") in audit(tmp_path))
    assert count(db) == 100
    (kept,) = [p for p in tmp_path.iterdir() if p.name.startswith("app.db.before-restore-")]
    assert count(kept) == 150
