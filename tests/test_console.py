"""The console through the Pilot: keys in, screens and state out."""

from __future__ import annotations

from textual.app import App
from textual.command import CommandPalette

from backends.keymap import KEYS
from themes import THEMES
from ui_support import NOW, load, make_app, screen_text
from tui.modals import TextModal
from backends.model import LogLine
from widgets.log_view import LogView
from widgets.status_table import StatusTable


async def test_dashboard_shows_every_pane_and_the_data():
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await load(app, pilot)
        text = screen_text(app)
        for title in ("1 Services", "2 Resources", "4 Logs"):
            assert title in text
        for title in ("3 Pipelines", "5 Backups", "6 Tables", "7 Alerts"):  # not configured: out of the grid,
            assert title not in text
        for key, hint in (("3", "add sources under pipelines:"), ("5", "add jobs under backups:"),
                          ("6", "add Iceberg catalogs under tables:"), ("7", "add rules: or sources under alerts:")):
            await pilot.press(key)  # but their number says what would fill them
            assert hint in screen_text(app)
            await pilot.press("escape")
        assert "spring-api" in text and "analytics" in text and "connection refused" in text
        assert "memory" in text and "84%" in text and "java" in text
        assert "ERROR batch 17 failed" in text
        header = text.splitlines()[0]
        assert "bastion-1" in header and "2 critical" in header and "2 warn" in header and "4 ok" in header


async def test_failures_come_first_in_services():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        table = app.query_one("#services-table", StatusTable)
        assert table.keys == ["analytics", "minio", "spring-api"]


async def test_number_keys_open_a_pane_full_screen_and_escape_returns():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        await pilot.press("2")
        assert app.screen.maximized is app.dashboard.pane("resources")
        assert "Services" not in screen_text(app)
        await pilot.press("4")
        assert app.screen.maximized is app.dashboard.pane("logs")
        await pilot.press("escape")
        assert app.screen.maximized is None
        await pilot.press("1", "1")
        assert app.screen.maximized is None


async def test_tab_cycles_panes():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        seen = []
        for _ in range(3):
            await pilot.press("tab")
            seen.append(app.dashboard.pane_of(app.focused))
        assert seen == ["resources", "logs", "services"]
        await pilot.press("3", "tab")
        assert app.screen.maximized is app.dashboard.pane("logs")
        await pilot.press("tab")
        assert app.screen.maximized is app.dashboard.pane("backups")


async def test_filter_hides_rows_that_do_not_match_and_escape_clears():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        table = app.query_one("#services-table", StatusTable)
        await pilot.press("slash", *"mini")
        assert table.row_count == 1 and table.selected_key == "minio"
        assert "filter: mini" in screen_text(app)
        await pilot.press("enter")
        assert app.focused is table and table.row_count == 1
        await pilot.press("slash", "escape")
        assert table.row_count == 3


async def test_filter_in_logs_hides_lines():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        await pilot.press("4", "slash", *"error", "enter")
        log = app.query_one("#log-view", LogView)
        assert log.line_count == 1
        assert "ERROR batch 17" in screen_text(app) and "INFO pipeline" not in screen_text(app)


async def test_enter_shows_details_of_the_row():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, TextModal)
        text = screen_text(app)
        assert "Details · analytics" in text and "connection refused on 127.0.0.1:8081" in text
        assert "failures in a row" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, TextModal)


async def test_details_of_a_process():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        app.query_one("#processes-table").focus()
        await pilot.press("enter")
        assert "Process 4242" in screen_text(app) and "nifi" in screen_text(app)


async def test_help_lists_every_key():
    app = make_app(keys={"help": "h"})
    async with app.run_test(size=(120, 50)) as pilot:
        await load(app, pilot)
        await pilot.press("h")
        assert isinstance(app.screen, TextModal)
        text = screen_text(app)
        for spec in KEYS:
            assert f"[{spec.id}]" in text


async def test_palette_opens_with_colon_and_switches_theme():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        await pilot.press("colon")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"theme light")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "light"
        critical = app.query_one("#services-table", StatusTable)._role_styles["critical"].color
        assert critical.triplet.hex.upper() == THEMES["light"].variables["status-critical"].upper()


async def test_pause_freezes_the_view_and_resume_catches_up():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        await pilot.press("p")
        assert "PAUSED" in screen_text(app).splitlines()[0]
        app.engine.readings.pop("spring-api")
        app._on_update(_fake_update())
        await pilot.pause(0.4)
        assert app.query_one("#services-table", StatusTable).row_count == 3
        await pilot.press("p")
        await pilot.pause()
        assert app.query_one("#services-table", StatusTable).row_count == 2
        assert "PAUSED" not in screen_text(app).splitlines()[0]


def _fake_update():
    from backends.model import SourceHealth, Update

    return Update("web", (), SourceHealth("web", "fixed", 2.0))


async def test_capital_r_polls_every_source_now():
    app = make_app(start_engine=True, refresh=30.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        before = app.engine.sources["web"].polls
        await pilot.press("R")
        await pilot.pause(0.3)
        assert app.engine.sources["web"].polls == before + 1


async def test_markup_and_escape_sequences_show_literally():
    app = make_app(names=("odd", "app-log"))
    async with app.run_test(size=(160, 40)) as pilot:
        await load(app, pilot)
        text = screen_text(app)
        assert "[/usr/lib/x]" in text
        assert "near [/ ␛[2J [bold]x[/bold]" in text
        await pilot.press("enter")
        details = screen_text(app)
        assert "near [/ ␛[2J [bold]x[/bold]" in details and "[/etc]" in details


async def test_stale_data_looks_stale():
    clock = [NOW]
    app = make_app(clock=lambda: clock[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        clock[0] += 7  # more than three 2 s intervals later
        app.refresh_view()
        await pilot.pause()
        text = screen_text(app)
        assert "STALE · updated 7s ago" in text
        assert "◌ OK" in text
        assert app.dashboard.pane("services").has_class("-stale")


async def test_quit_key_ends_the_app():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


class LogApp(App):
    def compose(self):
        yield LogView(capacity=100)


async def test_log_view_past_its_bound_still_shows_the_newest_line():
    app = LogApp()
    async with app.run_test(size=(60, 12)) as pilot:
        log = app.query_one(LogView)
        for batch in range(5):
            log.write_lines(LogLine("t", f"line {batch * 100 + i}", batch * 100 + i) for i in range(100))
            await pilot.pause()
        assert 90 <= log.line_count <= 100
        text = screen_text(app)
        assert "line 499" in text and "line 399" not in text
        log.focus()
        await pilot.press("home")
        assert f"line {500 - log.line_count} " in screen_text(app) + " "


async def test_log_view_hidden_while_lines_arrive_still_follows():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await load(app, pilot)
        await pilot.press("1")
        app.dashboard.write_logs([LogLine("t", f"late line {i}", NOW + i) for i in range(200)])
        await pilot.press("4")
        await pilot.pause()
        assert "late line 199" in screen_text(app)


def test_process_rows_are_top_cpu_then_as_many_more_by_memory():
    from backends.model import ProcessRow, ProcessTableReading, State
    from tui.dashboard import top_processes

    rows = [ProcessRow(pid, f"p{pid}", "u", cpu, rss, 0.0) for pid, cpu, rss in
            [(1, 50.0, 10), (2, 20.0, 900), (3, 0.0, 800), (4, 0.0, 700), (5, 0.0, 600)]]
    table = ProcessTableReading(key="h:processes", source="h", state=State.OK, reason="", ts=0.0,
                                by_cpu=(rows[0], rows[1]), by_memory=(rows[1], rows[2], rows[3], rows[4]))
    assert [p.pid for p in top_processes([table])] == [1, 2, 3, 4]
