"""Typed patterns (the `/` filter, find, `lakedeck logs --grep`, the whole-file scan) run in linear time (RE2).

The issue's patterns backtrack for minutes to hours under Python's re, holding the GIL: each case here runs in
a subprocess with a generous timeout, so a regression fails the test instead of hanging the suite. The
assertions are on completion and on the lines kept, never on a time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from backends.linear_regex import PatternError
from backends.log_buffer import LogBuffer
from backends.log_filter import LineFilter
from backends.log_pager import FilePager
from backends.log_reading import CUT_MARK, MAX_LINE
from backends.model import LogLine
from backends.text import human_bytes
from test_cli import run

ROOT = Path(__file__).parent.parent
GUARD = 120  # seconds: RE2 needs well under one here; backtracking (2**34 steps) would need hours
STUCK = "a" * 34 + "!"  # `(a+)+$` fails on it only after trying every way to split the a's
WORDS = " ".join(["word"] * 3000)  # `(\w+\s?)+error` tries every split of these words before failing
LINES = [STUCK, "aaaa", WORDS, WORDS + " error", "plain"]
LINEAR = "patterns run in linear time (RE2)"


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=GUARD, cwd=ROOT, env=env)


def completed_json(code: str):
    done = run_python(code)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def short(text: str) -> str:
    return text if len(text) < 40 else f"{text[:10]}…{text[-10:]} ({len(text)})"


def test_the_issues_patterns_complete_in_the_filter_find_and_highlight():
    kept = completed_json(f"""
        import json
        from backends.log_buffer import LogBuffer
        from backends.log_filter import LineFilter
        from backends.model import LogLine
        buffer = LogBuffer()
        buffer.add([LogLine("app", text, i) for i, text in enumerate({LINES!r})])
        out = {{}}
        for pattern in ["(a+)+$", "!(a+)+$", r"(\\w+\\s?)+error", r"!(\\w+\\s?)+error"]:
            out[pattern] = [line.text for line in buffer.set_filter(pattern) and buffer.shown]
        finder = LineFilter(r"(\\w+\\s?)+error", invertible=False)
        out["find"] = buffer.find(finder, 0) if buffer.set_filter("") is None else None
        out["spans"] = LineFilter("(a+)+$").spans("{STUCK}") + LineFilter("(a+)+$").spans("aaaa")
        print(json.dumps(out))
    """)
    assert kept["(a+)+$"] == ["aaaa"]
    assert kept["!(a+)+$"] == [STUCK, WORDS, WORDS + " error", "plain"]
    assert [short(t) for t in kept[r"(\w+\s?)+error"]] == [short(WORDS + " error")]
    assert [short(t) for t in kept[r"!(\w+\s?)+error"]] == [short(t) for t in (STUCK, "aaaa", WORDS, "plain")]
    assert kept["find"] == 3
    assert kept["spans"] == [[0, 4]]


def test_the_issues_patterns_complete_over_a_whole_file(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("".join(f"{text}\n" for text in LINES))
    kept = completed_json(f"""
        import json, threading
        from backends.log_filter import LineFilter
        from backends.log_pager import FilePager
        pager = FilePager({str(path)!r}, "app")
        out = {{}}
        for pattern in ["(a+)+$", "!(a+)+$", r"(\\w+\\s?)+error"]:
            batches = pager.scan(LineFilter(pattern), threading.Event())
            out[pattern] = [[line.text[:20], line.offset] for batch in batches for line in batch]
        print(json.dumps(out))
    """)
    offsets = [sum(len(t) + 1 for t in LINES[:n]) for n in range(len(LINES))]
    assert kept["(a+)+$"] == [["aaaa", offsets[1]]]
    assert [offset for _, offset in kept["!(a+)+$"]] == [offsets[n] for n in (0, 2, 3, 4)]
    assert kept[r"(\w+\s?)+error"] == [[WORDS[:20], offsets[3]]]


def test_the_issues_patterns_complete_in_lakedeck_logs_grep(tmp_path):
    (tmp_path / "app.log").write_text("".join(f"{text}\n" for text in LINES))
    config = tmp_path / "lakedeck.yaml"
    config.write_text(f"logs:\n  - {{name: app, path: {tmp_path / 'app.log'}}}\n")
    def cut(text):  # longer than what is kept of a line: cut and marked
        return f"{CUT_MARK}{text[:MAX_LINE]} …+{human_bytes(len(text) - MAX_LINE)}"

    words, error = cut(WORDS), cut(WORDS + " error")
    for pattern, expected in [("(a+)+$", ["aaaa"]), ("!(a+)+$", [STUCK, words, error, "plain"]), ("^word", [words, error]),
                              (r"(\w+\s?)+error", [])]:  # matched in what is kept of each line, as on screen
        out = run("logs", "-c", str(config), "--grep", pattern, timeout=GUARD)
        assert out.returncode == 0 and out.stderr == "", out.stderr
        assert out.stdout.splitlines() == expected, pattern
    (tmp_path / "app.log").write_text(f"{STUCK}\n{WORDS[:5999]}\n{WORDS[:5999]} error\n")
    out = run("logs", "-c", str(config), "--grep", r"(\w+\s?)+error", timeout=GUARD)
    assert out.returncode == 0 and out.stdout == f"{WORDS[:5999]} error\n"


REFUSED = [
    ("(a)\\1", "backreferences are"), ("(?P<x>a)(?P=x)", "backreferences are"), ("(?=x)", "lookaround is"),
    ("(?!x)y", "lookaround is"), ("(?<=x)y", "lookaround is"), ("(?<!x)y", "lookaround is"),
    ("a*+", "possessive quantifiers are"), ("(?>a+)b", "atomic groups are"),
    ("(a)?(?(1)b|c)", "conditional groups are"),
]


@pytest.mark.parametrize(("pattern", "what"), REFUSED)
def test_what_re2_cannot_run_is_refused_with_its_reason(pattern, what):
    for typed in (pattern, "!" + pattern):
        matcher = LineFilter(typed)
        assert matcher.error == f"{what} not supported: {LINEAR}"
        line = LogLine("app", "x (?=x) a\\1 aa", 1)
        assert not matcher.matches(line) and matcher.spans(line.text) == []  # never taken as plain text
        with pytest.raises(PatternError, match=re.escape(matcher.error)):
            matcher.bytes_regex()


def test_a_pattern_that_is_not_a_regex_is_refused_too(tmp_path):
    (tmp_path / "app.log").write_text("near [/ here\n(a\n")
    buffer = LogBuffer()
    buffer.add([LogLine("app", "near [/ here", 1), LogLine("app", "(a", 2)])
    for typed, reason in [("near [/", "unterminated character set at position 5"),
                          ("(a", "missing ), unterminated subpattern at position 0"), ("*a", "nothing to repeat at position 0")]:
        matcher = buffer.set_filter(typed)
        assert matcher is not None and matcher.error == f"not a regular expression: {reason}"
        assert buffer.shown == []
        with pytest.raises(PatternError, match=re.escape(matcher.error)):
            list(FilePager(str(tmp_path / "app.log"), "app").scan(matcher, threading.Event()))


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=x)", "near [/"])
def test_lakedeck_logs_refuses_such_a_pattern_in_one_line(tmp_path, pattern):
    (tmp_path / "app.log").write_text("x\n")
    config = tmp_path / "lakedeck.yaml"
    config.write_text(f"logs:\n  - {{name: app, path: {tmp_path / 'app.log'}}}\n")
    out = run("logs", "-c", str(config), "--grep", pattern)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"lakedeck logs: --grep {pattern}: ") and LineFilter(pattern).error in out.stderr


def test_many_groups_run_in_small_memory_and_a_huge_pattern_is_refused():
    """Whole matches only: 2,000 nested groups (the most that fit in MAX_PATTERN) run without RE2's per-group
    memory (with captures, 10,000 groups took 3 GB and 50,000 the whole machine)."""
    nested = "(" * 2000 + "a" + ")" * 2000
    done = completed_json(f"""
        import json
        from backends.log_filter import LineFilter
        from backends.model import LogLine
        matcher = LineFilter({nested!r})
        kept = [matcher.matches(LogLine("svc", text, 1)) for text in ("xxa", "xxb")]
        print(json.dumps([matcher.error, kept, matcher.spans("xxa"),
                          # this process's peak (ru_maxrss would count the forking pytest's too)
                          next(int(line.split()[1]) for line in open("/proc/self/status")
                               if line.startswith("VmHWM:")) // 1024]))
    """)
    error, kept, spans, megabytes = done
    assert (error, kept, spans) == ("", [True, False], [[2, 3]])
    assert megabytes < 50, f"{megabytes} MB for one search"  # about 15 MB; with captures 74 MB
    for huge in ("(" * 10_000 + "a" + ")" * 10_000, "a" * 5000):
        assert LineFilter(huge).error == f"the pattern is {len(huge):,} characters long: at most 4,096"


def test_a_pattern_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    (tmp_path / "app.log").write_text("ab\n")
    config = tmp_path / "lakedeck.yaml"
    config.write_text(f"logs:\n  - {{name: app, path: {tmp_path / 'app.log'}}}\n")
    out = run("logs", "-c", str(config), "--grep", "a\udcff\udcfeb")  # the bytes ff fe on the command line
    assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "the pattern is not valid UTF-8 (at position 1)" in out.stderr


ORDINARY = ["error", "Error", "err.*time", "^2026", "ms$", r"id=\d+", r"\berror\b", "error|timeout", "(?i)Debug",
            "k[aeiou]y", "^$", "caf\u00e9", "CAF\u00c9", "x{3}", r"e\s+t", r"\[/usr", r"near \[/", "(?P<n>ke)y", "a*",
            r"\d{4}-\d\d", "[^a-z ]+", "!debug", "!^$", r"(?s)a.b", "(?m)^key"]
SAMPLES = ["2026-11-21 INFO started in 12ms", "ERROR timeout after 3s", "error: disk full", "debug key=abc id=42",
           "", "Debug mode", "café ok", "CAFÉ ok", "xxxx", "near [/usr/lib/x]", "errors timeout", "KEY kay kiy"]


@pytest.mark.parametrize("typed", ORDINARY)
def test_ordinary_patterns_keep_the_lines_and_spans_they_kept_under_python_re(typed):
    inverted = typed.startswith("!")
    pattern = typed[1:] if inverted else typed
    flags = 0 if any(char.isupper() for char in pattern) else re.IGNORECASE  # smart case, as before
    python = re.compile(pattern, flags)
    matcher = LineFilter(typed)
    assert matcher.error == ""
    for text in SAMPLES:
        line = LogLine("app", text, 1)
        assert matcher.matches(line) == ((python.search(text) is not None) != inverted), (typed, text)
        if not inverted:
            assert matcher.spans(text) == [m.span() for m in python.finditer(text) if m.end() > m.start()], text


CONSOLE = f"""
    import asyncio
    from backends.model import LogLine
    from ui_support import NOW, load, make_app, screen_text, until

    async def main():
        app = make_app()
        async with app.run_test(size=(170, 30)) as pilot:
            await load(app, pilot)
            view = app.dashboard.log_view
            view.clear()
            app.dashboard.write_logs([LogLine("app-log", text, NOW - 60 + i) for i, text in enumerate({LINES!r})])
            await pilot.press("4")
            await pilot.pause()
            await pilot.press("slash", *"(a+)+$", "enter")  # filtered on every key, then on enter
            assert await until(pilot, lambda: "filter (a+)+$: 1 of 5" in screen_text(app)), screen_text(app)
            assert [line.text for line in view.buffer.shown] == ["aaaa"]
            await pilot.press("slash", "ctrl+u", *"!(a+)+$", "enter")
            assert await until(pilot, lambda: "filter !(a+)+$: 4 of 5" in screen_text(app)), screen_text(app)
            await pilot.press("slash", "ctrl+u", *"(\\\\w+\\\\s?)+error", "enter")
            assert await until(pilot, lambda: "1 of 5" in screen_text(app)), screen_text(app)
            await pilot.press("slash", "ctrl+u", *"(?=x)", "enter")
            said = "lookaround is not supported: {LINEAR}"
            assert await until(pilot, lambda: said in screen_text(app)), screen_text(app)
            assert view.buffer.shown == []
            await pilot.press("q")
        print("done")

    asyncio.run(main())
"""


def test_the_console_filter_answers_after_the_issues_patterns_and_shows_a_refusal():
    done = run_python(CONSOLE)
    assert done.returncode == 0 and done.stdout.strip().endswith("done"), done.stderr[-3000:]
