"""A real supervisord driven through the console: stop, start and restart a program with the keys, confirm in
the modal, watch the row change, and find the audit lines."""

from __future__ import annotations

import json

import yaml

from backends import config as cfg
from tui.app import LakedeckApp
from ui_support import screen_text, until
from widgets.confirm import ARM_DELAY, ConfirmModal


def make_app(tmp_path, supervisord) -> LakedeckApp:
    service = {"name": "web", "kind": "supervisor", "url": supervisord.socket_url, "program": "web"}
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "refresh": "500ms", "services": [service]})
    return LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1")


async def wait_for(pilot, condition, seconds: float = 10.0) -> None:
    assert await until(pilot, condition, seconds), "condition never became true"


async def confirm(pilot, app, key: str) -> None:
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
    await pilot.pause(ARM_DELAY)
    await pilot.press("tab", "enter")


async def test_stop_start_restart_a_supervisord_program(tmp_path, supervisord):
    app = make_app(tmp_path, supervisord)
    rpc = supervisord.rpc()
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: "web" in app.engine.readings and app.engine.readings["web"].reason.startswith("running"))
        app.refresh_view()
        await pilot.pause()
        first_pid = rpc.supervisor.getProcessInfo("web")["pid"]

        await confirm(pilot, app, "s")  # it runs, so s stops it
        await wait_for(pilot, lambda: rpc.supervisor.getProcessInfo("web")["statename"] == "STOPPED")
        # the row shows "⟳ stopping" until the first poll after the action, then the state it found
        await wait_for(pilot, lambda: "✖ CRITICAL" in screen_text(app))
        assert "web" not in app.engine.transitions

        await confirm(pilot, app, "s")  # now it is down, so s starts it
        await wait_for(pilot, lambda: rpc.supervisor.getProcessInfo("web")["statename"] == "RUNNING")
        await wait_for(pilot, lambda: "● OK" in screen_text(app) and "web" not in app.engine.transitions)

        before = rpc.supervisor.getProcessInfo("web")["pid"]
        await confirm(pilot, app, "r")
        await wait_for(pilot, lambda: rpc.supervisor.getProcessInfo("web")["pid"] not in (before, 0))
        await wait_for(pilot, lambda: "web" not in app.engine.transitions and "● OK" in screen_text(app))
        assert rpc.supervisor.getProcessInfo("web")["pid"] != first_pid

    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["event"], e["action"]) for e in entries] == [
        ("requested", "stop"), ("confirmed", "stop"), ("succeeded", "stop"),
        ("requested", "start"), ("confirmed", "start"), ("succeeded", "start"),
        ("requested", "restart"), ("confirmed", "restart"), ("succeeded", "restart"),
    ]
    assert entries[1]["command"] == "supervisor.stopProcess('web', True)"


async def test_l_on_a_supervisord_program_follows_its_output_and_esc_stops_it(tmp_path, supervisord):
    """`l` builds the program's log source (supervisord's own tail), follows it live, and stops it on esc."""
    from tui.log_screen import LogScreen

    app = make_app(tmp_path, supervisord)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: "web" in app.engine.readings)
        app.refresh_view()
        await pilot.pause()
        app.dashboard.query_one("#services-table").focus()
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.view.line_count >= 2)
        first = screen.view.lines[-1].text
        assert first.startswith("web line ")
        await wait_for(pilot, lambda: screen.view.lines[-1].text != first)  # it prints every 0.2 s: live
        assert "Logs · web" in screen_text(app)
        [attached] = screen.attached
        assert attached in app.engine.sources
        await pilot.press("escape")
        await wait_for(pilot, lambda: attached not in app.engine.sources)
        assert app.screen is app.dashboard
