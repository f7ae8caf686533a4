"""The pure threshold logic behind every gauge's state."""

from __future__ import annotations

import math

import pytest

from backends.config import Thresholds
from backends.model import State
from backends.thresholds import classify, level_note, levels_for


@pytest.mark.parametrize("value, expected", [
    (0.0, State.OK), (79.99, State.OK), (80.0, State.WARN), (85, State.WARN), (89.999, State.WARN),
    (90.0, State.CRITICAL), (100.0, State.CRITICAL), (250.0, State.CRITICAL), (-5.0, State.OK),
])
def test_classify_edges_are_inclusive(value, expected):
    assert classify(value, 80, 90) is expected


def test_no_number_is_unknown():
    assert classify(None, 80, 90) is State.UNKNOWN
    assert classify(math.nan, 80, 90) is State.UNKNOWN


def test_missing_levels_are_not_checked():
    assert classify(99, None, None) is State.OK
    assert classify(99, 50, None) is State.WARN
    assert classify(60, None, 50) is State.CRITICAL
    assert classify(40, None, 50) is State.OK


def test_equal_levels_go_straight_to_critical():
    assert classify(79, 80, 80) is State.OK
    assert classify(80, 80, 80) is State.CRITICAL


def test_reversed_levels_never_understate():
    assert classify(85, 90, 80) is State.CRITICAL
    assert classify(95, 90, 80) is State.CRITICAL
    assert classify(70, 90, 80) is State.OK


def test_zero_levels_flag_everything():
    assert classify(0.0, 0, 0) is State.CRITICAL
    assert classify(0.0, 0, 100) is State.WARN


def test_levels_for_prefers_overrides_and_fills_gaps():
    defaults = Thresholds(80, 90)
    assert levels_for("cpu", {}, defaults) == (80, 90)
    assert levels_for("cpu", None, defaults) == (80, 90)
    assert levels_for("disk", {"disk": {"warn": 70, "critical": 95}}, defaults) == (70, 95)
    assert levels_for("disk", {"disk": {"warn": None, "critical": 95}}, defaults) == (80, 95)
    assert levels_for("disk", {"disk": {"warn": 0, "critical": None}}, defaults) == (0, 90)
    assert levels_for("memory", {"disk": {"warn": 1, "critical": 2}}, defaults) == (80, 90)


def test_level_note_says_which_level_was_crossed():
    assert level_note(State.CRITICAL, 80, 90) == " (critical at 90%)"
    assert level_note(State.WARN, 80, 90) == " (warn at 80%)"
    assert level_note(State.WARN, 75.5, 90) == " (warn at 75.5%)"
    assert level_note(State.OK, 80, 90) == ""
    assert level_note(State.UNKNOWN, 80, 90) == ""
    assert level_note(State.CRITICAL, 80, None) == ""
