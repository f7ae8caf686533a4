"""A log file on its own screen through the Pilot: opened at its end, paged back from disk, filtered whole,
a cut line read whole. Real files and the real engine; the reading itself is tested in test_log_pager.py."""

from __future__ import annotations

import yaml

from backends import config as cfg
from backends.config import tail_config
from tui.app import LakedeckApp
from tui.line_modal import LineModal
from tui.log_screen import LogScreen
from ui_support import screen_text, until


def write_lines(path, count: int, needle_every: int = 0) -> None:
    with open(path, "w") as handle:
        for number in range(count):
            mark = " needle" if needle_every and number % needle_every == needle_every - 1 else ""
            handle.write(f"2026-11-22T10:00:00Z INFO line {number}{mark}\n")


async def wait_for(pilot, condition, seconds: float = 10.0) -> None:
    assert await until(pilot, condition, seconds), "condition never became true"
    await pilot.pause()  # and drawn


def tail_app(path, lines: int = 2000) -> LakedeckApp:
    return LakedeckApp(tail_config([str(path)], lines), hostname="bastion-1", tail=True, tail_lines=lines)


async def test_a_file_opens_at_its_end_and_g_pages_older_lines_in_from_disk(tmp_path):
    path = tmp_path / "app.log"
    write_lines(path, 50_000)
    app = tail_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.line_count == 2000)
        screen = app.screen
        assert "line 49999" in screen_text(app) and screen.view.lines[0].text.endswith("line 48000")
        await pilot.press("g")
        await wait_for(pilot, lambda: screen.view.lines[0].text.endswith("line 47500"))
        assert screen.view.selected_line.text.endswith("line 48000")  # the cursor stays on its line
        await pilot.press("g")
        await wait_for(pilot, lambda: screen.view.lines[0].text.endswith("line 47000"))
        with open(path, "a") as handle:
            handle.write("2026-11-22T10:00:01Z ERROR while paged back\n")
        await pilot.press("G")
        await wait_for(pilot, lambda: "while paged back" in screen_text(app))
        assert screen.view.following


async def test_enter_filter_covers_the_whole_file_and_esc_returns_to_the_end(tmp_path):
    path = tmp_path / "app.log"
    write_lines(path, 50_000, needle_every=1000)
    app = tail_app(path, lines=100)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.line_count == 100)
        screen = app.screen
        await pilot.press("slash", *"needle", "enter")
        await wait_for(pilot, lambda: "50 matches" in screen.scan_note and not screen.scanning)
        assert screen.view.line_count == 50 and screen.view.lines[0].text.endswith("line 999 needle")
        assert "50 matches" in screen_text(app)
        await pilot.press("slash", "escape")
        await wait_for(pilot, lambda: screen.view.line_count == 100 and not screen.scan_note)
        assert "line 49999" in screen_text(app)


async def test_a_huge_line_is_cut_on_screen_and_shown_whole_on_enter(tmp_path):
    path = tmp_path / "app.log"
    huge = "2026-11-22T10:00:00Z INFO " + "x" * 1_000_000 + " END"
    path.write_text(f"before\n{huge}\nafter\n")
    app = tail_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.line_count == 3)
        text = screen_text(app)
        assert "│✂ 2026-11-22T10:00:00Z INFO xxx" in text and "END" not in text
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LineModal))
        modal = app.screen
        assert modal.text == huge and "length  1,000,030 bytes" in screen_text(app)
        await pilot.press("end")
        await wait_for(pilot, lambda: "END" in screen_text(app))


async def test_l_on_a_log_line_opens_its_file_on_its_own(tmp_path):
    path = tmp_path / "app.log"
    write_lines(path, 3000)
    text = yaml.safe_dump({"logs": [{"name": "app", "path": str(path), "lines": 10}]})
    app = LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.log_view.line_count == 10)
        app.dashboard.log_view.focus()
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.line_count > 10)
        assert app.screen.pager is not None and f"Logs · app · {path}" in screen_text(app)
        await pilot.press("escape")
        assert app.screen is app.dashboard
