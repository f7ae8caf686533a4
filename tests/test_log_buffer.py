"""The lines a log view holds: merge by time, bounds, filter, find, time jumps; and what lines say of themselves."""

from __future__ import annotations

import calendar
import time

import pytest

from backends.durations import parse_when
from backends.log_buffer import LogBuffer
from backends.log_filter import LineFilter
from backends.logtext import Stamper, parse_level, parse_time, pretty_json
from backends.model import LogLine


def line(text: str, ts: float, source: str = "app") -> LogLine:
    return LogLine(source, text, ts)


def texts(lines) -> list[str]:
    return [entry.text for entry in lines]


def test_sources_merge_by_time_and_late_lines_go_in_their_place():
    buffer = LogBuffer()
    buffer.add([line("a1", 1), line("a3", 3), line("a5", 5)])
    added = buffer.add([line("b2", 2, "db"), line("b6", 6, "db")])
    assert texts(buffer.shown) == ["a1", "b2", "a3", "a5", "b6"]
    assert (added.appended, added.inserted, added.first_inserted) == (1, 1, 1)


def test_equal_times_keep_arrival_order():
    buffer = LogBuffer()
    buffer.add([line("first", 5), line("second", 5)])
    buffer.add([line("third", 5)])
    assert texts(buffer.shown) == ["first", "second", "third"]


def test_memory_stays_bounded_and_the_newest_lines_stay():
    buffer = LogBuffer(capacity=1000)
    for start in range(0, 50_000, 2500):
        buffer.add(line(f"n{i}", i) for i in range(start, start + 2500))
        assert len(buffer.lines) <= 1000
    assert buffer.lines[-1].text == "n49999"
    assert buffer.dropped == 50_000 - len(buffer.lines)


def test_filter_is_a_regex_with_smart_case_and_bang_inverts():
    buffer = LogBuffer()
    buffer.add([line("ERROR disk full", 1), line("error: timeout", 2), line("INFO ok", 3), line("debug x", 4)])
    assert texts(buffer.shown) == ["ERROR disk full", "error: timeout", "INFO ok", "debug x"]
    buffer.set_filter("error|fail")
    assert texts(buffer.shown) == ["ERROR disk full", "error: timeout"]  # lower case: any case
    buffer.set_filter("ERROR")
    assert texts(buffer.shown) == ["ERROR disk full"]  # a capital: exact case
    buffer.set_filter("!error")
    assert texts(buffer.shown) == ["INFO ok", "debug x"]
    buffer.add([line("error again", 5), line("fine", 6)])
    assert texts(buffer.shown) == ["INFO ok", "debug x", "fine"]
    buffer.set_filter("")
    assert len(buffer.shown) == 6


def test_a_filter_that_is_not_a_regex_keeps_nothing_and_says_why():
    buffer = LogBuffer()
    buffer.add([line("missing near [/ here", 1), line("near", 2)])
    for text in ("near [/", "!near [/"):  # never taken as plain text, inverted or not
        matcher = buffer.set_filter(text)
        assert matcher is not None and matcher.error == ("not a regular expression: unterminated character set "
                                                         "at position 5")
        assert buffer.shown == [] and matcher.spans("near [/") == []
    assert buffer.find(LineFilter("near [/", invertible=False), 0) is None


def test_filtered_view_stays_bounded_with_the_lines():
    buffer = LogBuffer(capacity=100)
    buffer.set_filter("keep")
    for i in range(1000):
        buffer.add([line(f"keep {i}" if i % 2 else f"drop {i}", i)])
    assert all(entry in buffer.lines for entry in buffer.shown)
    assert texts(buffer.shown)[-1] == "keep 999" and len(buffer.shown) <= 50


def test_find_wraps_around_and_goes_both_ways():
    buffer = LogBuffer()
    buffer.add(line(text, i) for i, text in enumerate(["a", "match 1", "b", "match 2", "c"]))
    finder = LineFilter("match", invertible=False)
    assert buffer.find(finder, 0) == 1
    assert buffer.find(finder, 1) == 3
    assert buffer.find(finder, 3) == 1  # wraps
    assert buffer.find(finder, 3, forward=False) == 1
    assert buffer.find(LineFilter("zzz"), 0) is None


def test_index_at_a_time():
    buffer = LogBuffer()
    buffer.add(line(f"t{i}", i * 10) for i in range(10))
    assert buffer.index_at(35) == 4 and buffer.index_at(0) == 0 and buffer.index_at(1000) == 10


def test_prepended_history_keeps_file_order_and_pushes_the_newest_out_when_full():
    buffer = LogBuffer(capacity=5)
    buffer.add([line("now 1", 100), line("now 2", 101)])
    # paged-in lines without their own time carry the time they were read: later than what is shown
    shown = buffer.prepend([line("old 1", 500), line("old 2", 50), line("old 3", 500)])
    assert shown == 3 and texts(buffer.lines) == ["old 1", "old 2", "old 3", "now 1", "now 2"]
    assert buffer.shown_times == sorted(buffer.shown_times)  # ordered for jumps (bisect)
    assert buffer.index_at(101) == 4 and buffer.index_at(0) == 0
    buffer.prepend([line("older", 1)])
    assert texts(buffer.lines) == ["older", "old 1", "old 2", "old 3", "now 1"] and buffer.tail_dropped


@pytest.mark.parametrize("text, expected", [
    ("2026-11-22T02:18:33.123Z INFO started", calendar.timegm((2026, 11, 22, 2, 18, 33)) + 0.123),
    ("[2026-11-22 02:18:33,500+01:00] x", calendar.timegm((2026, 11, 22, 1, 18, 33)) + 0.5),
    ('{"level":"info","ts":1763777913.25,"msg":"m"}', 1763777913.25),
    ('{"time":1763777913250,"msg":"ms"}', 1763777913.25),
    ('{"@timestamp":"2026-11-22T02:18:33Z"}', calendar.timegm((2026, 11, 22, 2, 18, 33))),
    ("no time here", None),
])
def test_times_written_in_lines(text, expected):
    found = parse_time(text)
    assert (found is None and expected is None) or found == pytest.approx(expected)


def test_syslog_times_get_their_year_and_december_read_in_january_is_last_year():
    january = time.mktime((2027, 1, 2, 12, 0, 0, 0, 0, -1))
    assert time.localtime(parse_time("Dec 31 23:59:00 host cron[1]: x", january)).tm_year == 2026
    assert time.localtime(parse_time("Jan  2 11:00:00 host cron[1]: x", january)).tm_year == 2027


@pytest.mark.parametrize("text, level", [
    ("2026-11-22 ERROR boom", "error"), ("WARN low disk", "warn"), ("[warning] x", "warn"),
    ("FATAL: gone", "critical"), ("DEBUG noisy", "debug"), ("INFO fine", "info"), ("0 errors", ""),
    ('{"level":"warn","msg":"an ERROR word"}', "warn"), ('{"severity":"ERROR"}', "error"),
])
def test_levels(text, level):
    assert parse_level(text) == level


def test_pretty_json_only_for_json():
    assert pretty_json('{"a": [1, 2], "b": "ü"}') == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "ü"\n}'
    assert pretty_json("{not json") is None and pretty_json("plain") is None


def test_a_line_without_a_time_continues_the_line_before_it():
    clock = iter([100.0, 100.0, 100.1, 200.0])
    stamper = Stamper("app", clock=lambda: next(clock))
    first = stamper.line("2026-11-22T02:18:33Z ERROR boom")
    trace = stamper.line("  at Foo.bar(Foo.java:1)")
    assert trace.ts == first.ts and first.level == "error"
    assert stamper.line("  at more").ts == first.ts
    assert stamper.line("much later, no time").ts == 200.0


def test_times_typed_to_jump_to():
    now = time.mktime((2026, 11, 22, 14, 30, 0, 0, 0, -1))
    assert parse_when("14:05", now) == now - 25 * 60
    assert parse_when("14:05:30", now) == now - 24 * 60 - 30
    assert parse_when("15:00", now) == now + 30 * 60 - 86400  # still to come today: yesterday's
    assert parse_when("2026-11-21 09:00", now) == time.mktime((2026, 11, 21, 9, 0, 0, 0, 0, -1))
    assert parse_when("10m", now) == now - 600 == parse_when("-10m", now) == parse_when("10m ago", now)
    for bad in ("25:00", "yesterday", ""):
        with pytest.raises(ValueError, match="expected a time such as 14:05"):
            parse_when(bad, now)


def test_a_sources_own_lines_keep_their_order_even_when_their_times_do_not():
    """A log is not re-sorted: a line stamped earlier than the one before it in the same file stays after it."""
    buffer = LogBuffer()
    buffer.add([line("a 10", 10), line("a 5", 5), line("a 12", 12)])
    buffer.add([line("b 11", 11, "db"), line("b 6", 6, "db")])
    assert texts(buffer.shown) == ["a 10", "a 5", "b 11", "b 6", "a 12"]
    buffer.set_filter("5|6|12")
    assert texts(buffer.shown) == ["a 5", "b 6", "a 12"] and buffer.shown_times == sorted(buffer.shown_times)
