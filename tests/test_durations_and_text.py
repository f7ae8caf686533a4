from __future__ import annotations

import pytest

from backends.durations import format_duration, parse_duration
from backends.text import one_line, visible


@pytest.mark.parametrize("text, seconds", [
    ("500ms", 0.5), ("5s", 5), ("2m", 120), ("24h", 86400), ("7d", 604800), ("1.5s", 1.5), ("10", 10), (3, 3.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5 minutes", "-1s", "", True])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds, text", [(0.25, "250ms"), (42, "42s"), (192, "3m12s"), (18120, "5h02m"),
                                           (187200, "2d04h")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_escape_sequences_become_visible_symbols():
    assert visible("\x1b[2Jboom\x07") == "␛[2Jboom␇"
    assert "\x1b" not in one_line("a\x1b]0;title\x07b\nnext line")
    assert one_line("first\nsecond") == "first second"


def test_markup_like_text_is_untouched():
    assert one_line("[/usr/lib/x] near [/") == "[/usr/lib/x] near [/"


def test_one_line_cuts_long_text():
    assert one_line("x" * 500, 50) == "x" * 49 + "…"


def test_ages_stay_put_within_the_rhythm_and_uptimes_are_coarse():
    from backends.durations import format_age, format_uptime

    assert format_age(0.4) == "just now" and format_age(2.5, fresh_within=3) == "just now"
    assert format_age(7) == "7s ago"
    assert [format_uptime(s) for s in (5, 61, 119, 3700, 200000)] == ["<1m", "1m", "1m", "1h01m", "2d07h"]
