"""Lines of 1 MiB and more: every reading (following, paging back and forth, the whole-file scan, `lakedeck
logs`, `lakedeck tail`, the Logs pane, streams) shows every line in order, each long one cut and marked ✂.

One reading does it (log_reading: Piece, Splitter, lines_backward): these tests hold each of its users to it.
"""

from __future__ import annotations

import gzip
import sys
import threading

import pytest
import yaml

from backends import config as cfg
from backends.adapters import log_file
from backends.config import tail_config
from backends.log_filter import LineFilter
from backends.log_pager import FilePager
from backends.log_reading import CUT_MARK, MAX_LINE
from backends.model import LogReading, State
from helpers import source_for
from test_cli import run
from tui.app import LakedeckApp
from tui.log_screen import LogScreen
from ui_support import screen_text, until

MIB = 1024 * 1024
TEXTS = ["first", "second", "L1 " + "x" * (MIB + MIB // 2), "middle", "L3 " + "y" * (3 * MIB), "last"]
LONG = {2, 4}


def write(path, texts=TEXTS, end: str = "\n") -> None:
    path.write_bytes(("\n".join(texts) + end).encode())


def expected(texts=TEXTS) -> list[tuple[str, int]]:
    """(text, cut) of every line as read: the first MAX_LINE bytes, the rest counted."""
    return [(text[:MAX_LINE], max(0, len(text) - MAX_LINE)) for text in texts]


def seen(lines) -> list[tuple[str, int]]:
    return [(line.text, line.cut) for line in lines]


def offsets(texts=TEXTS) -> list[int]:
    return [sum(len(t) + 1 for t in texts[:n]) for n in range(len(texts))]


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "app.log"
    write(path)
    return path


def test_paging_back_from_the_end_shows_every_line_in_order(big):
    pager = FilePager(str(big), "app")
    lines = pager.tail(100)
    assert seen(lines) == expected() and [line.offset for line in lines] == offsets()
    # and a page at a time, as `g` pages back: one line per read, across the long ones
    page = pager.tail(1)
    found = list(page)
    while page:
        page = pager.before(page[0], 1)
        found = page + found
    assert seen(found) == expected()


def test_paging_forwards_from_the_start_shows_every_line_in_order(big):
    pager = FilePager(str(big), "app")
    assert seen(pager.head(100)) == expected()
    page = pager.head(1)
    found = list(page)
    while page:
        page = pager.after(page[-1], 1)
        found += page
    assert seen(found) == expected()


def test_a_cut_line_is_read_whole_on_demand(big):
    pager = FilePager(str(big), "app")
    lines = pager.tail(100)
    assert pager.whole(lines[2], limit=4 * MIB) == (TEXTS[2], 0)
    assert pager.whole(lines[4], limit=MIB) == (TEXTS[4][:MIB], len(TEXTS[4]) - MIB)


def test_the_whole_file_scan_keeps_every_line_and_finds_the_long_ones(big):
    pager = FilePager(str(big), "app")

    def scan(pattern):
        return [line for batch in pager.scan(LineFilter(pattern), threading.Event()) for line in batch]

    assert seen(scan("!zzz")) == expected()
    assert seen(scan("^L")) == [expected()[n] for n in sorted(LONG)]
    assert seen(scan("^(middle|last)$")) == [expected()[3], expected()[5]]


def test_rotated_gzip_history_reads_the_same(tmp_path):
    path = tmp_path / "app.log"
    with gzip.open(tmp_path / "app.log.1.gz", "wb") as handle:
        handle.write(("\n".join(TEXTS) + "\n").encode())
    path.write_text("after rotation\n")
    pager = FilePager(str(path), "app")
    assert seen(pager.tail(100)) == expected() + [("after rotation", 0)]
    found = [line for batch in pager.scan(LineFilter("!zzz"), threading.Event(), include_history=True)
             for line in batch]
    assert seen(found) == expected() + [("after rotation", 0)]


def follower(path, lines: int = 100):
    return source_for("logs", "file", name="app", path=str(path), lines=lines)


async def polled(check, polls: int) -> list:
    lines = []
    for _ in range(polls):
        [reading] = await check.poll()
        assert isinstance(reading, LogReading) and reading.state is State.OK, reading.reason
        lines += reading.lines
    return lines


async def test_the_follower_shows_the_backlog_before_and_after_a_long_line(big):
    assert seen(await polled(follower(big), 1)) == expected()


@pytest.mark.parametrize("backlog", [1, 2, 3, 6])
async def test_the_followers_backlog_counts_a_long_line_as_one(big, backlog):
    assert seen(await polled(follower(big, backlog), 1)) == expected()[-backlog:]


async def test_the_follower_shows_long_lines_appended_after_it_started(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("")
    check = follower(path)
    assert await polled(check, 1) == []
    write(path)  # more than one poll reads (log_file.MAX_READ): the long lines arrive in parts
    lines = await polled(check, 8)
    assert seen(lines) == expected() and [line.offset for line in lines] == offsets()


async def test_an_unfinished_long_last_line_is_shown_cut_once_it_waited(tmp_path):
    path = tmp_path / "app.log"
    write(path, TEXTS[:5], end="")  # the 3 MiB line has no newline yet
    check = follower(path)
    lines = await polled(check, 1 + log_file.PARTIAL_POLLS)
    assert seen(lines) == expected(TEXTS[:5])


async def test_a_file_of_one_huge_line_is_shown_cut(tmp_path):
    path = tmp_path / "app.log"
    write(path, [TEXTS[4]])
    assert seen(await polled(follower(path), 1)) == expected([TEXTS[4]])
    assert seen(FilePager(str(path), "app").tail(10)) == expected([TEXTS[4]])


def printed(texts=TEXTS) -> list[str]:
    return [f"{CUT_MARK}{text} …+{'1.5' if len(full) < 2 * MIB else '3.0'} MB" if cut else text
            for (text, cut), full in zip(expected(texts), texts)]


def test_lakedeck_logs_prints_every_line_the_long_ones_cut_and_marked(big, tmp_path):
    config = tmp_path / "lakedeck.yaml"
    config.write_text(yaml.safe_dump({"logs": [{"name": "app", "path": str(big)}]}))
    out = run("logs", "-c", str(config))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == printed()
    out = run("logs", "-c", str(config), "--grep", "^L")
    assert out.stdout.splitlines() == [printed()[n] for n in sorted(LONG)]


def test_lakedeck_logs_of_a_command_stream_cuts_the_long_lines_too(tmp_path):
    script = tmp_path / "emit.py"
    script.write_text(f"import sys, time\nsys.stdout.write({TEXTS!r}[0] + '\\n')\n"
                      f"for text in {TEXTS!r}[1:]:\n    sys.stdout.write(text + '\\n')\n"
                      "sys.stdout.flush()\ntime.sleep(30)\n")
    config = tmp_path / "lakedeck.yaml"
    config.write_text(yaml.safe_dump({"logs": [{"name": "cmd", "kind": "command",
                                                "command": [sys.executable, str(script)]}]}))
    out = run("logs", "-c", str(config), "-n", "10")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == printed()


async def test_the_logs_pane_shows_every_line_and_marks_the_long_ones(big):
    text = yaml.safe_dump({"logs": [{"name": "app", "path": str(big), "lines": 100}]})
    app = LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1")
    async with app.run_test(size=(120, 30)) as pilot:
        view = app.dashboard.log_view
        assert await until(pilot, lambda: view.line_count == len(TEXTS), 20)
        assert seen(view.lines) == expected()
        await pilot.press("4")
        assert await until(pilot, lambda: f"{CUT_MARK}L3 yyy" in screen_text(app))
        shown = screen_text(app)
        assert all(word in shown for word in ("first", "second", f"{CUT_MARK}L1 xxx", "middle", "last"))


async def test_lakedeck_tail_shows_every_line_and_marks_the_long_ones(big):
    app = LakedeckApp(tail_config([str(big)], 100), hostname="bastion-1", tail=True, tail_lines=100)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.line_count == 6, 20)
        assert seen(app.screen.view.lines) == expected()
        shown = screen_text(app)
        assert f"{CUT_MARK}L1 xxx" in shown and f"{CUT_MARK}L3 yyy" in shown and "first" in shown
