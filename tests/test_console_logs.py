"""The Logs pane and log screens through the Pilot: keys in, what a person reads out."""

from __future__ import annotations

import json
from dataclasses import replace

from backends.config import SourceSpec
from backends.model import LogLine
from tui.line_modal import LineModal
from tui.log_screen import LogScreen
from ui_support import NOW, load, make_app, screen_text, until
from widgets.log_view import LogView


def lines_at(texts, start=NOW - 3600, step=60.0, source="app-log"):
    return [LogLine(source, text, start + i * step) for i, text in enumerate(texts)]


async def log_view_app(pilot, app, lines) -> LogView:
    await load(app, pilot)
    view = app.dashboard.log_view
    view.clear()
    app.dashboard.write_logs(lines)
    await pilot.press("4")  # the Logs pane, full screen, focused
    await pilot.pause()
    assert app.focused is view
    return view


def shown(app) -> str:
    return screen_text(app)


def notified(app, text: str) -> bool:
    """Toasts are not drawn under run_test; the app still keeps them."""
    return any(text in str(note.message) for note in app._notifications)


async def test_filter_hides_what_does_not_match_and_a_bang_inverts():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await log_view_app(pilot, app, lines_at(["INFO one", "WARN two", "ERROR three", "DEBUG four"]))
        await pilot.press("slash", *"warn|error", "enter")
        text = shown(app)
        assert "WARN two" in text and "ERROR three" in text and "INFO one" not in text
        assert "filter warn|error: 2 of 4" in text
        await pilot.press("slash", "ctrl+u", *"!debug", "enter")
        text = shown(app)
        assert "INFO one" in text and "ERROR three" in text and "DEBUG four" not in text
        await pilot.press("slash", "escape")
        assert view.line_count == 4 and "DEBUG four" in shown(app)


async def test_find_moves_between_matches_and_highlights_them():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await log_view_app(pilot, app, lines_at([f"line {i}" + (" batch failed" if i % 10 == 3 else "")
                                                         for i in range(60)]))
        await pilot.press("ctrl+f", *"batch", "enter")
        assert view.selected_line.text == "line 53 batch failed" and not view.following
        await pilot.press("N")
        assert view.selected_line.text == "line 43 batch failed"
        await pilot.press("n", "n")
        assert view.selected_line.text == "line 3 batch failed"  # wrapped around
        row = view.render_line(view._cursor_index() - view.scroll_offset.y)
        marked = [seg.text for seg in row if seg.style and seg.style.reverse and seg.style.bold]
        assert marked == ["batch"]
        assert "find batch (n/N)" in shown(app)


async def test_follow_off_keeps_buffering_and_G_catches_up():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await log_view_app(pilot, app, lines_at([f"old {i}" for i in range(100)], step=1.0))
        await pilot.press("f")
        assert not view.following
        app.dashboard.write_logs(lines_at([f"new {i}" for i in range(50)], start=NOW))
        await pilot.pause()
        text = shown(app)
        assert "new 49" not in text and "old 99" in text and "50 new below" in text
        assert view.line_count == 150  # buffered while paused
        await pilot.press("G")
        assert "new 49" in shown(app) and view.following


async def test_top_and_bottom_and_cursor_keys():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await log_view_app(pilot, app, lines_at([f"row {i}" for i in range(500)]))
        await pilot.press("g")
        assert "row 0" in shown(app) and view.selected_line.text == "row 0"
        await pilot.press("down", "down", "pagedown")
        assert view.selected_line.text.startswith("row ") and int(view.selected_line.text[4:]) > 2
        await pilot.press("end")
        assert "row 499" in shown(app) and view.following


async def test_wrap_shows_a_long_line_whole_across_rows():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        long = "start " + "x" * 200 + " finish"
        await log_view_app(pilot, app, lines_at([long, "short"]))
        assert "finish" not in shown(app)
        await pilot.press("w")
        assert "finish" in shown(app) and "wrap" in shown(app)
        await pilot.press("w")
        assert "finish" not in shown(app)


async def test_timestamps_toggle():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        import time

        await log_view_app(pilot, app, [LogLine("app-log", "hello", NOW + 0.25)])
        stamp = time.strftime("%H:%M:%S", time.localtime(NOW)) + ".250"
        assert stamp not in shown(app)
        await pilot.press("t")
        assert f"{stamp} hello" in shown(app)


async def test_jump_to_a_time():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await log_view_app(pilot, app, lines_at([f"minute {i}" for i in range(60)]))
        await pilot.press("T", *"30m", "enter")
        assert view.selected_line.text == "minute 30" and "minute 30" in shown(app)
        await pilot.press("T", *"soon", "enter")
        assert await until(pilot, lambda: notified(app, "expected a time such as 14:05"))


async def test_save_writes_the_shown_lines_and_never_overwrites(tmp_path):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await log_view_app(pilot, app, lines_at(["keep 1", "drop", "keep 2"]))
        await pilot.press("slash", *"keep", "enter")
        target = tmp_path / "saved.log"
        await pilot.press("S", "ctrl+u", *str(target), "enter")
        assert await until(pilot, target.exists)
        assert target.read_text() == "keep 1\nkeep 2\n"
        await pilot.press("S", "ctrl+u", *str(target), "enter")
        assert await until(pilot, lambda: notified(app, "lakedeck never overwrites"))
        assert target.read_text() == "keep 1\nkeep 2\n"


async def test_enter_on_a_json_line_shows_it_pretty():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        record = {"ts": "2026-11-22T02:18:33Z", "level": "warn", "msg": "lag", "partition": 7}
        await log_view_app(pilot, app, lines_at(["plain", json.dumps(record)]))
        await pilot.press("enter")
        assert await until(pilot, lambda: isinstance(app.screen, LineModal))
        await pilot.pause()
        text = shown(app)
        assert '"partition": 7' in text and '"level": "warn",' in text
        await pilot.press("escape")
        assert not isinstance(app.screen, LineModal)


async def test_log_text_is_never_markup_or_escape_sequences():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await log_view_app(pilot, app, lines_at(["path [/usr/lib/x] ok", "near [/", "clear \x1b[2J now",
                                                  "bell \x07 nul \x00 del \x7f", "[bold]not bold[/bold]"]))
        text = shown(app)
        assert "path [/usr/lib/x] ok" in text and "near [/" in text
        assert "clear ␛[2J now" in text and "bell ␇ nul ␀ del ␡" in text and "[bold]not bold[/bold]" in text


async def test_ten_thousand_lines_in_one_batch_keep_the_view_current():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await log_view_app(pilot, app, [])
        for batch in range(5):
            app.dashboard.write_logs(lines_at([f"fast {batch}-{i}" for i in range(10_000)], start=NOW + batch * 10))
            await pilot.pause()
            assert f"fast {batch}-9999" in shown(app)
        assert view.line_count <= view.buffer.capacity


async def test_lines_from_several_sources_merge_by_time_with_a_source_column():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await log_view_app(pilot, app, lines_at(["a first", "a third"], step=2.0, source="api"))
        app.dashboard.write_logs(lines_at(["b second"], start=NOW - 3600 + 1, source="db"))
        await pilot.pause()
        rows = [row for row in shown(app).splitlines() if "first" in row or "second" in row or "third" in row]
        assert [row.split("│")[1].split()[:2] for row in rows] == [["api", "a"], ["db", "b"], ["api", "a"]]


async def test_l_on_a_service_opens_its_logs_and_escape_comes_back():
    app = make_app(names=("web", "local", "app-log"))
    spec = app.engine.spec("web")
    app.config = replace(app.config, sources=tuple(
        replace(s, options={**s.options, "logs": "app-log"}) if s is spec else s for s in app.config.sources))
    app.engine.config = app.config
    async with app.run_test(size=(100, 30)) as pilot:
        await load(app, pilot)
        app.dashboard.write_logs(lines_at(["from the app log"]))
        app.dashboard.query_one("#services-table").focus()
        await pilot.press("l")
        assert await until(pilot, lambda: isinstance(app.screen, LogScreen))
        await pilot.pause()
        assert "from the app log" in shown(app) and "Logs · web (app-log)" in shown(app)
        await pilot.press("escape")
        assert app.screen is app.dashboard


async def test_l_on_a_service_without_logs_says_how_to_add_them():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await load(app, pilot)
        app.dashboard.query_one("#services-table").focus()
        await pilot.press("l")
        assert await until(pilot, lambda: notified(app, "No logs known for web"))
        assert app.screen is app.dashboard


def test_log_screen_takes_only_its_own_new_lines():
    screen = LogScreen("x", {"app"}, path="/var/log/a.log")
    screen.remember_read([LogLine("app", "old", 1, path="/var/log/a.log", offset=50),
                          LogLine("app", "older", 1, path="/var/log/a.log", offset=0)])
    lines = [LogLine("app", "old", 1, path="/var/log/a.log", offset=50),
             LogLine("app", "rotated, same offset", 1, path="/var/log/a.log", offset=50),
             LogLine("app", "other file", 2, path="/var/log/b.log", offset=150),
             LogLine("db", "other source", 2)]
    assert [line.text for line in screen.accept(lines)] == ["rotated, same offset"]
    assert screen.accept([LogLine("app", "new", 2, path="/var/log/a.log", offset=150)])
    assert screen.accept([LogLine("app", "old", 1, path="/var/log/a.log", offset=50)])  # a new file after rotation


def _spec(name: str) -> SourceSpec:
    return SourceSpec("logs", name, "file", 1.0, 0.75, {"path": "/dev/null", "lines": 0})


async def test_log_keys_are_rebindable_by_id():
    app = make_app(keys={"log.follow": "F", "log.wrap": "W"})
    async with app.run_test(size=(100, 30)) as pilot:
        view = await log_view_app(pilot, app, lines_at([f"row {i}" for i in range(100)]))
        await pilot.press("f", "w")
        assert view.following and not view.wrap  # the old keys no longer do it
        await pilot.press("F", "W")
        assert not view.following and view.wrap


async def test_a_filter_keeps_a_paused_view_at_the_same_moment():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await log_view_app(pilot, app, lines_at([f"{'error' if i % 10 == 0 else 'info'} at minute {i}"
                                                         for i in range(300)]))
        await pilot.press("T", *"0m", "enter")  # now: minute 60 of the lines, which start an hour back
        await pilot.pause()
        assert view.selected_line.text == "error at minute 60" and not view.following
        await pilot.press("down", "down", "down")  # minute 63
        await pilot.press("slash", *"error", "enter")
        assert view.selected_line.text == "error at minute 70"  # the first match at or after minute 63


async def test_log_keys_are_in_the_palette():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await log_view_app(pilot, app, lines_at(["one", "two"]))
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Wrap")
        await pilot.pause(0.3)
        await pilot.press("enter")
        assert await until(pilot, lambda: view.wrap)
