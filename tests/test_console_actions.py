"""Actions through the console, keys in: the menu, confirmation by tier, output, transitions, read-only, audit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
import pytest
import yaml

from backends import config as cfg
from tui.app import LakedeckApp
from ui_support import screen_text, until
from widgets.action_panel import ActionPanel
from widgets.choice_modal import ChoiceModal
from widgets import confirm
from widgets.confirm import ARM_DELAY, ConfirmModal
from tui.modals import TextModal


def make_app(tmp_path: Path, port: int, read_only: bool = False, **service) -> LakedeckApp:
    marker = tmp_path / "ran"
    api = {"name": "api", "kind": "tcp", "port": port, "actions": [
        {"id": "status", "tier": "read", "command": ["echo", "all good"]},
        {"id": "restart", "command": ["sh", "-c", f"echo restarting; sleep 0.4; echo done; touch {marker}"],
         "expect": "restarting"},
        {"id": "stop", "command": ["sh", "-c", "echo no such unit >&2; exit 5"]},
        {"id": "wipe", "tier": "destructive", "command": ["touch", str(tmp_path / "wiped")]},
    ], **service}
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "refresh": "1s", "services": [api]})
    return LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1", read_only=read_only)


def events(tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / "audit.jsonl"
    if not path.exists():
        return []
    return [(e["event"], e["action"]) for e in map(json.loads, path.read_text().splitlines())]


async def ready(app, pilot) -> None:
    for _ in range(50):
        if "api" in app.engine.readings:
            break
        await pilot.pause(0.05)
    app.refresh_view()
    await pilot.pause()


async def test_menu_lists_actions_with_tiers_and_escape_closes(tmp_path, port):
    app = make_app(tmp_path, port)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("a")
        assert isinstance(app.screen, ChoiceModal)
        text = screen_text(app)
        assert "Status" in text and "read" in text and "Restart" in text and "disruptive" in text
        assert "Wipe" in text and "destructive" in text and "touch" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, ChoiceModal)
    assert events(tmp_path) == []


async def test_cancel_is_focused_so_enter_cancels(tmp_path, port):
    app = make_app(tmp_path, port)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert isinstance(app.screen, ConfirmModal)
        assert app.screen.focused.id == "cancel"
        assert "sh -c 'echo restarting; sleep 0.4; echo done; touch" in screen_text(app)
        await pilot.press("enter", "enter", "enter")  # a held enter: cancels, never confirms
        await until(pilot, lambda: len(events(tmp_path)) == 2)
        assert not isinstance(app.screen, ConfirmModal)
    assert not (tmp_path / "ran").exists()
    assert events(tmp_path) == [("requested", "restart"), ("cancelled", "restart")]


async def test_run_cannot_be_pressed_before_the_arm_delay(tmp_path, port, monkeypatch):
    monkeypatch.setattr(confirm, "ARM_DELAY", 60.0)  # however slow the machine, the press comes too early
    app = make_app(tmp_path, port)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("tab", "enter")  # straight to Run: too quick
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("escape")
        await until(pilot, lambda: len(events(tmp_path)) == 2)
    assert not (tmp_path / "ran").exists()
    assert events(tmp_path) == [("requested", "restart"), ("cancelled", "restart")]


async def test_confirmed_restart_streams_output_shows_the_transition_and_is_audited(tmp_path, port):
    app = make_app(tmp_path, port)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.pause(ARM_DELAY + 0.1)
        await pilot.press("tab", "enter")
        assert await until(pilot, lambda: "⟳ restarting" in screen_text(app), 2.0)  # the action sleeps 0.4 s
        assert app.query_one(ActionPanel).has_class("-open")
        for _ in range(40):
            if (tmp_path / "ran").exists() and "api" not in app.engine.transitions:
                break
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "Restart api · done" in text and "restarting" in text and "done" in text
        assert "⟳ restarting" not in text and "● OK" in text  # the next poll confirmed the state
        await pilot.press("escape")
        assert not app.query_one(ActionPanel).has_class("-open")
    assert events(tmp_path) == [("requested", "restart"), ("confirmed", "restart"), ("succeeded", "restart")]


async def test_a_failed_action_opens_a_modal_with_exit_code_and_output(tmp_path, port):
    app = make_app(tmp_path, port)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("s")  # the service is up, so s means stop
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.pause(ARM_DELAY + 0.1)
        await pilot.press("tab", "enter")
        for _ in range(30):
            if isinstance(app.screen, TextModal):
                break
            await pilot.pause(0.1)
        text = screen_text(app)
        assert "FAILED · Stop api" in text and "exit code" in text and "5" in text and "no such unit" in text
    assert events(tmp_path)[-1] == ("failed", "stop")


async def test_destructive_needs_the_exact_name_typed(tmp_path, port):
    app = make_app(tmp_path, port)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("a")
        menu = app.screen
        await pilot.press(*["down"] * 3, "enter")  # status, restart, stop are listed before wipe
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert isinstance(app.screen, ConfirmModal) and menu is not app.screen
        assert "Type api to confirm" in screen_text(app)
        assert "This action has no dry run" in screen_text(app)  # a config command cannot preview itself
        run = app.screen.query_one("#run")
        app.screen.query_one("#confirm-name").focus()
        await pilot.press(*"Api")
        assert run.disabled
        await pilot.press("backspace", "backspace", "backspace", *"api ")
        assert run.disabled
        await pilot.press("backspace")
        assert not run.disabled
        await pilot.pause(ARM_DELAY)
        await pilot.press("enter")
        for _ in range(20):
            if (tmp_path / "wiped").exists():
                break
            await pilot.pause(0.1)
    assert (tmp_path / "wiped").exists()
    assert events(tmp_path)[:2] == [("requested", "wipe"), ("confirmed", "wipe")]


async def test_read_only_refuses_on_every_key_path_and_says_so(tmp_path, port):
    app = make_app(tmp_path, port, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        assert "READ-ONLY" in screen_text(app).splitlines()[0]
        await pilot.press("a")
        text = screen_text(app)
        assert "READ-ONLY" in text and "Status" in text and "Restart" not in text
        await pilot.press("escape", "r")
        await until(pilot, lambda: len(events(tmp_path)) == 1)
        assert not isinstance(app.screen, ConfirmModal)
        await pilot.press("s")
        await until(pilot, lambda: len(events(tmp_path)) == 2)
        await pilot.press("colon", *"restart")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: len(events(tmp_path)) == 3)
        assert not isinstance(app.screen, ConfirmModal)
    assert events(tmp_path) == [("refused", "restart"), ("refused", "stop"), ("refused", "restart")]
    assert not (tmp_path / "ran").exists()


async def test_a_read_action_runs_without_confirmation(tmp_path, port):
    app = make_app(tmp_path, port, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("a", "enter")
        for _ in range(20):
            if "all good" in screen_text(app):
                break
            await pilot.pause(0.1)
        assert "all good" in screen_text(app)
    assert events(tmp_path) == [("confirmed", "status"), ("succeeded", "status")]


async def test_audit_view_shows_the_entries(tmp_path, port):
    app = make_app(tmp_path, port, read_only=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("r")
        await until(pilot, lambda: len(events(tmp_path)) == 1)
        await pilot.press("A")
        await until(pilot, lambda: "Audit log" in screen_text(app))
        assert "Audit log" in screen_text(app) and "refused" in screen_text(app)


async def test_quitting_while_an_action_runs_ends_it_and_audits_it(tmp_path, port):
    """`q` with an action under way: its process group is killed and the log says so, not `confirmed` alone."""
    pid_file = tmp_path / "pid"
    app = make_app(tmp_path, port, actions=[
        {"id": "long", "command": ["sh", "-c", f'echo $$$$ > {pid_file}; echo "$$0 is up"; sleep 60', "the-action"]}])
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        app.actions.request(app.engine.find_action("api", "long"))
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.pause(ARM_DELAY + 0.1)
        await pilot.press("tab", "enter")
        assert await until(pilot, lambda: "the-action is up" in screen_text(app), 5.0)
        await pilot.press("q")
    shell = int(pid_file.read_text())
    group = [p for p in psutil.process_iter(["status"]) if _group_of(p.pid) == shell]
    assert all(p.info["status"] == psutil.STATUS_ZOMBIE for p in group), group  # the shell and its sleep ended
    last = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert (last["event"], last["action"], last["error"]) == ("failed", "long",
                                                              "interrupted: lakedeck was closed while it ran")
    assert last["output"] == ["the-action is up"]


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
