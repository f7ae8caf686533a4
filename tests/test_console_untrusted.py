"""Text that others control never reaches the terminal as it came: an alert's name, a log file's name, a service's
name from the config, a notification, the host name. Keys in through the Pilot; what the screen would write out.

What is checked is what Textual would send to the terminal: the text of every segment of the whole screen
(the background screens under a modal too), and the same rendered to escape sequences.
"""

from __future__ import annotations

import re
import unicodedata

import yaml

from backends import config as cfg
from backends.model import AlertReading
from test_adapter_alertmanager import post_alerts
from tui.app import LakedeckApp
from tui.line_modal import LineModal
from tui.log_screen import LogScreen
from tui.modals import TextModal
from ui_support import choose, make_app, screen_text, until
from widgets.ask_modal import AskModal
from widgets.choice_modal import ChoiceModal
from widgets.confirm import ARM_DELAY, ConfirmModal
from widgets.status_table import StatusTable

OSC52 = "\x1b]52;c;cHduZWQ=\x1b\\"  # "pwned" to the clipboard, ST-terminated
OSC52_SHOWN = "␛]52;c;cHduZWQ=␛\\"
HOSTILE = f"Disk{OSC52}Full"
HOSTILE_SHOWN = f"Disk{OSC52_SHOWN}Full"
BIDI = "evil\u202etxt.exe\u2066x\u2069\u200d"  # an override, an isolate, a zero-width joiner
BIDI_SHOWN = "evil⟨U+202E⟩txt.exe⟨U+2066⟩x⟨U+2069⟩⟨U+200D⟩"
UNSAFE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")
# what an escape sequence that is not Textual's own colours and cursor moves starts with (7-bit and 8-bit)
FOREIGN_SEQUENCE = re.compile("\x1b[\\]P_^X]|[\x80-\x9f]")


def drawn_lines(app) -> list[str]:
    """The text of every segment Textual would write for the whole screen now, line by line."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return ["".join(segment.text for strip in line for segment in strip if not segment.control)
            for line in update.strips]


def assert_inert(app) -> str:
    """Nothing on screen is a control, format or bidi character, and the bytes written hold no OSC, DCS, APC or PM.
    Returns the screen's text for further checks."""
    lines = drawn_lines(app)
    found = {f"U+{ord(char):04X} on line {number}: {line.strip()[:80]!r}"
             for number, line in enumerate(lines) for char in line if unicodedata.category(char) in UNSAFE_CATEGORIES}
    assert not found, "\n".join(sorted(found))
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    written = update.render_segments(app.console)
    assert not FOREIGN_SEQUENCE.search(written), FOREIGN_SEQUENCE.search(written)
    assert "\x1b]" not in written and "\u202e" not in written
    return "\n".join(lines)


def toasts(app) -> str:
    """The notifications on screen, each on one line (a toast wraps its text to its width)."""
    return "\n".join(toast.render().plain.replace("\n", " ") for toast in app.screen.query("Toast"))


async def wait_for(pilot, condition, seconds: float = 20.0) -> None:
    assert await until(pilot, condition, seconds), "condition never became true"


# -- an alert from a real Alertmanager ---------------------------------------------------------------------------

async def test_an_alert_named_with_osc_52_shows_it_inert_in_every_title_modal_and_notification(tmp_path, alertmanager):
    """Issue 13 item 10: alertname ``Disk\\e]52;c;cHduZWQ=\\e\\\\Full``, then 7, enter, a: the details' title, the
    action menu's title, the silence prompt's title, the confirmation's heading, the notification after cancelling
    and the action panel's title show the sequence as symbols; none sends it."""
    post_alerts(alertmanager.url, {"alertname": HOSTILE, "severity": "critical", "instance": BIDI})
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "refresh": "2s", "store": {"enabled": False},
                           "alerts": [{"name": "am", "kind": "alertmanager", "url": alertmanager.url}]})
    app = LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1")
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        table = app.dashboard.query_one("#alerts-table", StatusTable)

        def hostile_row() -> str | None:
            return next((key for key in table.keys if isinstance(app.engine.readings.get(key), AlertReading)
                         and app.engine.readings[key].name == HOSTILE), None)

        await wait_for(pilot, lambda: hostile_row() is not None)
        await pilot.press("7")
        table.move_cursor(row=table.keys.index(hostile_row()))
        await pilot.pause()
        shown = assert_inert(app)
        assert HOSTILE_SHOWN in shown and "evil⟨U+202E⟩txt" in shown  # the row: the name and the target

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TextModal))
        shown = assert_inert(app)
        assert f"Details · am:{HOSTILE_SHOWN}" in shown and BIDI_SHOWN in shown
        await pilot.press("escape")

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        assert f"Actions · am:{HOSTILE_SHOWN}" in assert_inert(app)
        await choose(pilot, app, "Silence")
        await wait_for(pilot, lambda: isinstance(app.screen, AskModal))
        assert f"Silence am:{HOSTILE_SHOWN}" in assert_inert(app)
        await pilot.press(*"1h disk", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        shown = assert_inert(app)
        assert re.search(f"Silence am:{re.escape(HOSTILE_SHOWN)}:[0-9a-f]{{8}}\\? \\(disruptive\\)", shown), shown
        await pilot.pause(ARM_DELAY)
        await pilot.press("enter")  # Cancel has the focus
        await wait_for(pilot, lambda: f"Cancelled: silence am:{HOSTILE_SHOWN}" in toasts(app))
        assert_inert(app)

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        for _ in range(4):
            if "Ack" in app.screen.query_one("OptionList").highlighted_option.prompt.plain:
                break
            await pilot.press("down")
        await pilot.press("enter")  # ack is a read action: it runs at once, in the action panel under the panes
        await wait_for(pilot, lambda: app.engine.readings[hostile_row()].acked)
        await pilot.press("7")  # the Alerts pane back in the dashboard: the action panel shows
        await wait_for(pilot, lambda: f"Ack am:{HOSTILE_SHOWN}" in screen_text(app))
        assert_inert(app)


# -- a log file whose name holds the sequence --------------------------------------------------------------------

async def test_a_log_file_named_with_osc_52_shows_it_inert_in_the_log_screen_and_the_line_view(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    hostile = folder / f"app-{OSC52}{BIDI}.log"
    hostile.write_text("2026-11-22T10:00:00Z INFO plain line\n"
                       f"2026-11-22T10:00:01Z ERROR a line with {OSC52} and \x1b]8;;http://evil/\x07link\x1b]8;;\x07"
                       f" and \x9b31m and {BIDI} in it\n")
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "refresh": "1s", "store": {"enabled": False},
                           "logs": [{"name": "app", "path": str(folder / "*.log")}]})
    app = LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1")
    async with app.run_test(size=(160, 40)) as pilot:
        view = app.dashboard.log_view
        await wait_for(pilot, lambda: view.line_count == 2)
        await pilot.press("4")
        await pilot.pause()
        shown = assert_inert(app)
        assert (f"a line with {OSC52_SHOWN} and ␛]8;;http://evil/␇link␛]8;;␇ and ⟨U+009B⟩31m and {BIDI_SHOWN}"
                in shown)

        view.focus()
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.line_count == 2)
        await pilot.pause()
        shown = assert_inert(app)
        assert f"Logs · app · {folder}/app-{OSC52_SHOWN}{BIDI_SHOWN}.log" in shown

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LineModal))
        await pilot.pause()
        shown = assert_inert(app)
        assert f"app-{OSC52_SHOWN}{BIDI_SHOWN}.log" in shown and "Log line" in shown


# -- the config's names, the host, notifications, the help and the palette ---------------------------------------

def hostile_service_app(tmp_path) -> LakedeckApp:
    name = f"web{OSC52}{BIDI}"
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "store": {"enabled": False},
                           "services": [{"name": name, "kind": "tcp", "port": 1}]}, allow_unicode=False)
    return LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname=f"bastion{OSC52}")


async def test_a_service_named_with_osc_52_in_the_config_shows_it_inert_everywhere(tmp_path):
    app = hostile_service_app(tmp_path)
    name = app.config.sources[0].name
    shown_name = f"web{OSC52_SHOWN}{BIDI_SHOWN}"
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        table = app.dashboard.query_one("#services-table", StatusTable)
        await wait_for(pilot, lambda: table.keys == [name])  # a real tcp check, refused
        shown = assert_inert(app)
        assert f"web{OSC52_SHOWN}evil⟨U+202E⟩" in shown  # the row (its name cut at 40 characters)
        assert f"bastion{OSC52_SHOWN}" in shown.splitlines()[0]  # the header's host

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TextModal))
        assert f"Details · {shown_name}" in assert_inert(app)
        await pilot.press("escape")

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        assert f"Actions · {shown_name}" in assert_inert(app)
        await pilot.press("escape")

        await pilot.press("l")  # a tcp check has no logs: the notification names it
        await wait_for(pilot, lambda: f"No logs known for {shown_name}" in toasts(app))
        assert_inert(app)

        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, TextModal))
        assert_inert(app)


async def test_a_notification_is_inert_and_never_markup(tmp_path):
    """Every notification goes through one place: control characters shown, ``[`` shown, even in its title."""
    app = make_app()
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        app.notify(f"near [/ [bold]x[/] {OSC52} \x9d52;c;eA==\x9c {BIDI}", title=f"from {OSC52}", severity="error")
        app.dashboard.notify(f"\x1bP+q544e\x1b\\ and \x1b_Gi=1\x1b\\")  # a widget's notify goes to the same place
        await wait_for(pilot, lambda: "near [/ [bold]x[/]" in toasts(app) and "␛P+q544e" in toasts(app))
        assert_inert(app)
        shown = toasts(app)
        assert f"from {OSC52_SHOWN}" in shown and "⟨U+009D⟩52;c;eA==⟨U+009C⟩" in shown and BIDI_SHOWN in shown
        assert "␛_Gi=1␛\\" in shown


async def test_keys_from_the_config_show_as_text_in_the_palette_and_the_key_bar(tmp_path):
    """The palette reads a str entry as markup: a key bound to ``[/`` would crash it, one holding ESC would send it."""
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "store": {"enabled": False},
                           "keys": {"refresh": f"f5,{OSC52}", "help": "[/"}})
    app = LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1", start_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        assert "[/ Keys" in assert_inert(app)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: "Open pane: Services" in screen_text(app))
        assert_inert(app)
        await pilot.press(*"refresh")
        await wait_for(pilot, lambda: "· refresh" in screen_text(app))
        assert f"f5 or {OSC52_SHOWN} · refresh" in assert_inert(app)
        await pilot.press(*(["backspace"] * 7), *"keys")
        await wait_for(pilot, lambda: "· help" in screen_text(app))
        assert "[/ · help" in assert_inert(app)


async def test_lakedeck_tail_of_a_file_named_with_osc_52_shows_its_name_inert(tmp_path):
    from backends.config import tail_config

    hostile = tmp_path / f"tail-{OSC52}{BIDI}.log"
    hostile.write_text(f"2026-11-22T10:00:00Z INFO {OSC52} here\n")
    app = LakedeckApp(tail_config([str(hostile)], 100), hostname="bastion-1", tail=True, tail_lines=100)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.line_count == 1)
        await pilot.pause()
        shown = assert_inert(app)
        assert f"tail-{OSC52_SHOWN}{BIDI_SHOWN}.log" in shown and f"INFO {OSC52_SHOWN} here" in shown


async def test_a_wrapped_line_shows_all_of_itself_when_its_symbols_are_wider_than_what_they_replace():
    """A zero-width character takes 8 cells once shown (⟨U+200B⟩): the wrapped view counts rows for them all."""
    line = "start " + "\u200b" * 60 + "\x1b" * 30 + "\t" * 10 + " END"
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await app.push_screen(LineModal("Log line", [("source", "x")], [line], line))
        await wait_for(pilot, lambda: isinstance(app.screen, LineModal))
        await pilot.pause()
        shown = assert_inert(app)
        assert "start ⟨U+200B⟩" in shown and "␛␛␛" in shown and " END" in shown
