"""LogFile following real files written by the test."""

from __future__ import annotations

import os

import pytest

from backends.adapters import log_file
from backends.model import LogReading, Pane, State
from helpers import source_for


def follower(path, **options):
    return source_for("logs", "file", name="app", path=str(path), **options)


async def poll(check) -> list[LogReading]:
    readings = await check.poll()
    assert all(isinstance(r, LogReading) and r.pane is Pane.LOGS and "\n" not in r.reason for r in readings)
    return readings


async def texts(check) -> list[str]:
    [reading] = await poll(check)
    assert reading.state is State.OK, reading.reason
    return [line.text for line in reading.lines]


def append(path, data: bytes | str) -> None:
    with open(path, "ab") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


async def test_backlog_comes_from_the_end_of_a_big_file(tmp_path, monkeypatch):
    path = tmp_path / "big.log"
    with open(path, "wb") as handle:
        for number in range(200_000):  # ~3.4 MB
            handle.write(f"line {number:06d} of the big file\n".encode())
    reads = []
    real_open = os.fdopen

    def counting_fdopen(*args, **kwargs):
        handle = real_open(*args, **kwargs)
        original = handle.read
        handle.read = lambda size=-1: reads.append(size) or original(size)
        return handle

    monkeypatch.setattr(log_file.os, "fdopen", counting_fdopen)
    check = follower(path, lines=5)
    [reading] = await poll(check)
    assert [line.text for line in reading.lines] == [f"line {n:06d} of the big file" for n in range(199_995, 200_000)]
    assert reading.key == f"app:{path}" and reading.path == str(path) and reading.source == "app"
    assert all(line.source == "app" for line in reading.lines)
    assert reading.reason == "following, 5 new lines"
    assert sum(reads) <= 64 * 1024 and -1 not in reads  # one block from the end, never the whole file


async def test_follows_appended_lines_and_reports_none_when_quiet(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("old 1\nold 2\n")
    check = follower(path, lines=10)
    assert await texts(check) == ["old 1", "old 2"]
    append(path, "new 1\nnew 2\n")
    assert await texts(check) == ["new 1", "new 2"]
    [reading] = await poll(check)
    assert reading.lines == () and reading.reason == "following, 0 new lines"
    append(path, "new 3\r\n")
    assert await texts(check) == ["new 3"]


async def test_zero_backlog_starts_at_the_end(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("old\n")
    check = follower(path, lines=0)
    assert await texts(check) == []
    append(path, "new\n")
    assert await texts(check) == ["new"]


async def test_rotation_by_rename_reopens_the_new_file(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("before\n")
    check = follower(path)
    assert await texts(check) == ["before"]
    os.rename(path, tmp_path / "app.log.1")
    [reading] = await poll(check)
    assert reading.state is State.UNKNOWN and "no such file" in reading.reason  # rotated, not yet recreated
    path.write_text("after 1\nafter 2\n")
    [reading] = await poll(check)
    assert [line.text for line in reading.lines] == ["after 1", "after 2"]
    assert "reopened after rotation" in reading.reason


async def test_rotation_into_the_glob_does_not_repeat_lines(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("one\n")
    check = source_for("logs", "file", name="app", path=str(tmp_path / "app.log*"))
    [reading] = await poll(check)
    assert [line.text for line in reading.lines] == ["one"]
    append(path, "two\n")
    os.rename(path, tmp_path / "app.log.1")
    path.write_text("three\n")
    readings = {r.path: [line.text for line in r.lines] for r in await poll(check)}
    assert readings == {str(tmp_path / "app.log"): ["three"], str(tmp_path / "app.log.1"): ["two"]}


async def test_copytruncate_restarts_from_the_start(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("a long first line that makes the offset big\n")
    check = follower(path)
    await texts(check)
    with open(path, "r+b") as handle:
        handle.truncate(0)
    append(path, "fresh\n")
    [reading] = await poll(check)
    assert [line.text for line in reading.lines] == ["fresh"]
    assert "truncated" in reading.reason


async def test_partial_last_line_waits_for_its_newline(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("done\nhalf")
    check = follower(path)
    assert await texts(check) == ["done"]
    append(path, " and more")
    assert await texts(check) == []
    append(path, " end\n")
    assert await texts(check) == ["half and more end"]


async def test_partial_line_is_flushed_after_two_quiet_polls(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("")
    check = follower(path)
    await texts(check)
    append(path, "Password: ")
    assert await texts(check) == []
    assert await texts(check) == []
    assert await texts(check) == ["Password: "]
    append(path, "rest\n")
    assert await texts(check) == ["rest"]


async def test_invalid_utf8_is_replaced_and_markup_kept_literally(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"caf\xc3\xa9 ok\nbad \xff\xfe bytes\nmissing [/usr/lib/x] near [/\n")
    assert await texts(follower(path)) == ["café ok", "bad \ufffd\ufffd bytes", "missing [/usr/lib/x] near [/"]


async def test_a_huge_line_is_cut_for_the_screen(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("")
    check = follower(path)
    await texts(check)
    append(path, b"x" * 1_000_000 + b"\nnext\n")
    [reading] = await poll(check)
    first, second = reading.lines
    assert first.text == "x" * 8192 and first.cut == 1_000_000 - 8192 and first.offset == 0
    assert second.text == "next" and second.cut == 0 and second.offset == 1_000_001


async def test_a_huge_line_arriving_in_pieces_is_cut_once(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("")
    check = follower(path)
    await texts(check)
    append(path, "é" * 6000)  # 12,000 bytes, no newline yet
    assert await texts(check) == []
    append(path, "y" * 5000 + "\n")
    [reading] = await poll(check)
    [line] = reading.lines
    assert line.text == "é" * 4096 and line.cut == 12000 + 5000 - 8192 and line.offset == 0


async def test_every_line_knows_where_it_starts_in_the_file(tmp_path):
    """Offsets let the console read a cut line whole from disk, across backlog, partial lines and follow."""
    path = tmp_path / "app.log"
    path.write_bytes(b"one\ntwo\nthr")
    check = follower(path)
    seen = list((await poll(check))[0].lines)
    append(path, "ee\nfour\nfive\n")
    seen += (await poll(check))[0].lines
    data = path.read_bytes()
    assert [line.text for line in seen] == ["one", "two", "three", "four", "five"]
    for line in seen:
        assert line.path == str(path)
        assert data[line.offset:].split(b"\n")[0].decode() == line.text


async def test_at_most_one_mebibyte_per_poll(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("")
    check = follower(path)
    await texts(check)
    line = "z" * 99 + "\n"
    append(path, line * 25_000)  # 2.5 MB
    [reading] = await poll(check)
    assert len(reading.lines) == 1024 * 1024 // 100
    assert "catching up" in reading.reason and "behind" in reading.reason
    seen = len(reading.lines)
    while seen < 25_000:
        [reading] = await poll(check)
        assert reading.lines
        seen += len(reading.lines)
    assert seen == 25_000


async def test_glob_follows_every_match_and_new_files_from_their_start(tmp_path):
    (tmp_path / "a.log").write_text("a1\n")
    check = source_for("logs", "file", name="app", path=str(tmp_path / "*.log"))
    readings = await poll(check)
    assert [r.key for r in readings] == [f"app:{tmp_path / 'a.log'}"]
    (tmp_path / "b.log").write_text("b1\nb2\n")
    readings = {r.path: [line.text for line in r.lines] for r in await poll(check)}
    assert readings == {str(tmp_path / "a.log"): [], str(tmp_path / "b.log"): ["b1", "b2"]}


async def test_glob_matching_nothing_is_unknown(tmp_path):
    pattern = str(tmp_path / "*.log")
    [reading] = await poll(source_for("logs", "file", name="app", path=pattern))
    assert reading.state is State.UNKNOWN and reading.reason == f"no file matches {pattern}"
    assert reading.key == f"app:{pattern}"


@pytest.mark.parametrize("make, cause", [
    (lambda tmp: tmp / "missing.log", "no such file or directory"),
    (lambda tmp: tmp, "is a directory"),
])
async def test_unreadable_paths_are_unknown(tmp_path, make, cause):
    path = make(tmp_path)
    [reading] = await poll(follower(path))
    assert reading.state is State.UNKNOWN
    assert reading.reason == f"cannot read {path}: {cause}"


async def test_a_fifo_is_refused_without_hanging(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    [reading] = await poll(follower(path))
    assert reading.state is State.UNKNOWN and reading.reason == f"cannot follow {path}: not a regular file"


def test_tail_lines_handles_short_and_partial_files(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"a\nb\nc")
    with open(path, "rb") as handle:
        def tail(size, count):
            pieces, unfinished = log_file.tail_lines(handle.fileno(), size, count)
            return pieces, (unfinished.head, unfinished.start)
        assert tail(5, 10) == ([log_file.Piece(b"a", 0), log_file.Piece(b"b", 2)], (b"c", 4))
        assert tail(5, 1) == ([log_file.Piece(b"b", 2)], (b"c", 4))
        assert tail(5, 0) == ([], (b"c", 4))
        assert tail(4, 10) == ([log_file.Piece(b"a", 0), log_file.Piece(b"b", 2)], (b"", 4))
        assert tail(0, 10) == ([], (b"", 0))


async def test_a_file_created_after_start_is_read_from_its_start(tmp_path):
    path = tmp_path / "late.log"
    check = follower(path)
    [reading] = await poll(check)
    assert reading.state is State.UNKNOWN
    path.write_text("first\nsecond\n")
    assert await texts(check) == ["first", "second"]
