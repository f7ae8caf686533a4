"""StatusTable on its own: what it shows, what it redraws, and the keys."""

from __future__ import annotations

from textual.app import App, ComposeResult

from ui_support import screen_text
from widgets.cells import Cell, Row
from widgets.status_table import StatusTable


def row(key: str, value: str = "up", role: str = "ok") -> Row:
    return Row(key, (Cell(key, bold=True), Cell(value, role)))


ROWS = [row(f"svc-{i}") for i in range(8)]


class TableApp(App):
    def __init__(self, rows=ROWS) -> None:
        super().__init__()
        self.rows = list(rows)
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        yield StatusTable(("Name", "State"), id="table")

    def on_mount(self) -> None:
        table = self.query_one(StatusTable)
        table.set_rows(self.rows)
        table.focus()

    def on_status_table_row_selected(self, event: StatusTable.RowSelected) -> None:
        self.selected.append(event.key)


def spy_on_lines(table: StatusTable) -> list[int]:
    """The lines (0 is the header) that the table draws from now on."""
    drawn: list[int] = []
    render_line = table.render_line

    def spy(y: int):
        drawn.append(y)
        return render_line(y)

    table.render_line = spy  # type: ignore[method-assign]
    return drawn


async def test_rows_show_their_text_under_a_header():
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert lines[0].split() == ["Name", "State"]
        assert lines[1].split() == ["svc-0", "up"] and lines[8].split() == ["svc-7", "up"]
        table = app.query_one(StatusTable)
        assert table.keys == [r.key for r in ROWS] and table.row_count == 8 and table.selected_key == "svc-0"


async def test_one_changed_cell_redraws_only_its_line():
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        table = app.query_one(StatusTable)
        drawn, built = spy_on_lines(table), table.rows_rendered
        rows = list(ROWS)
        rows[3] = row("svc-3", "down", "critical")
        table.set_rows(rows)
        await pilot.pause()
        assert drawn == [4]  # svc-3, under the header; no other row was drawn again
        assert table.rows_rendered == built + 1
        assert "svc-3  down" in screen_text(app)

        drawn.clear()
        table.set_rows(list(rows))  # the same again: nothing to draw
        await pilot.pause()
        assert drawn == [] and table.rows_rendered == built + 1


async def test_filter_hides_rows_and_the_selection_follows():
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        table = app.query_one(StatusTable)
        table.move_cursor(row=5)
        table.set_filter("svc-5")
        assert table.row_count == 1 and table.keys == ["svc-5"] and table.selected_key == "svc-5"
        await pilot.pause()
        assert "svc-4" not in screen_text(app)
        table.set_filter("nothing")
        assert table.row_count == 0 and table.selected_key is None
        table.set_filter("")
        assert table.row_count == 8 and table.selected_key is not None
        table.set_filter("svc-")
        table.move_cursor(row=2)
        table.set_rows([ROWS[2], ROWS[0], ROWS[1]])  # rows move: the cursor stays on its key
        assert table.selected_key == "svc-2" and table.cursor_row == 0


async def test_cursor_keys_move_and_enter_posts_the_key():
    app = TableApp([row(f"svc-{i}") for i in range(30)])
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        table = app.query_one(StatusTable)
        await pilot.press("down", "down", "enter")
        assert table.cursor_row == 2 and app.selected == ["svc-2"]
        await pilot.press("up", "enter")
        assert app.selected == ["svc-2", "svc-1"]
        await pilot.press("end")
        assert table.selected_key == "svc-29"
        await pilot.pause()
        assert "svc-29" in screen_text(app)  # kept in view
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_offset.y == 0
        await pilot.press("pagedown")
        assert table.cursor_row == 9  # a page is 9 rows: 10 lines, one of them the header
        await pilot.press("pagedown")
        await pilot.pause()
        assert "svc-18" in screen_text(app) and "svc-9 " not in screen_text(app)
        await pilot.press("pageup")
        assert table.cursor_row == 9


async def test_click_selects_a_row():
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        table = app.query_one(StatusTable)
        await pilot.click(StatusTable, offset=(2, 3))
        assert table.selected_key == "svc-2" and app.selected == []
        await pilot.click(StatusTable, offset=(2, 3))
        assert app.selected == ["svc-2"]


async def test_markup_like_text_is_shown_literally():
    rows = [Row("[/usr/lib/x]", (Cell("[/usr/lib/x]", bold=True), Cell("near [/", "critical"))),
            Row("b", (Cell("[bold]x[/bold]"), Cell("[red]")))]
    app = TableApp(rows)
    async with app.run_test(size=(60, 8)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "[/usr/lib/x]    near [/" in text and "[bold]x[/bold]  [red]" in text


async def test_a_wider_cell_grows_its_column_and_it_does_not_shrink_back():
    app = TableApp([row("a"), row("b")])
    async with app.run_test(size=(60, 8)) as pilot:
        await pilot.pause()
        table = app.query_one(StatusTable)
        assert screen_text(app).splitlines()[1].startswith(" a     up")  # "Name" is the widest
        table.set_rows([row("a"), row("a-much-longer-name")])
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert lines[1].startswith(" a                   up") and lines[2].startswith(" a-much-longer-name  up")
        table.set_rows([row("a"), row("b")])
        await pilot.pause()
        assert screen_text(app).splitlines()[1].startswith(" a                   up")


async def test_columns_wider_than_the_widget_scroll_sideways():
    app = TableApp([row("x" * 50, "the-end")])
    async with app.run_test(size=(30, 6)) as pilot:
        await pilot.pause()
        table = app.query_one(StatusTable)
        assert table.virtual_size.width == 1 + 50 + 2 + 7 + 1
        assert "the-end" not in screen_text(app)
        table.scroll_to(x=table.max_scroll_x, animate=False)
        await pilot.pause()
        assert "the-end" in screen_text(app)


def test_role_styles_read_every_theme_including_ansi_colour_names():
    """The ansi theme names colours the Textual way (ansi_bright_red), which Rich does not parse."""
    from themes import THEMES
    from widgets.cells import role_styles

    for theme in THEMES.values():
        styles = role_styles({**theme.variables, "accent": theme.accent or ""})
        assert styles["critical"].color is not None, theme.name
    ansi = role_styles(THEMES["ansi"].variables)
    assert ansi["critical"].color.number == 9 and ansi["ok"].color.number == 2
