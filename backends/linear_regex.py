"""A pattern an operator types, compiled for RE2: matching runs in time linear in the text, so no pattern can
hang the console (Python's ``re`` backtracks: ``(a+)+$`` on 34 ``a``s and a ``!`` takes minutes, holding the GIL).

What RE2 cannot run (backreferences, lookaround, atomic groups, possessive quantifiers...) and what is not a
regular expression at all are refused with a one-line reason, never matched some other way.
"""

from __future__ import annotations

import re

import re2

LINEAR = "patterns run in linear time (RE2)"
MAX_PATTERN = 4096  # characters: far more than anyone types, and RE2's memory for a pattern stays small

# RE2's complaint (its text after the colon) about something Python's re accepts → what that something is
_OPERATORS = {
    "(?=": "lookaround is", "(?!": "lookaround is", "(?<=": "lookaround is", "(?<!": "lookaround is",
    "(?P": "backreferences are", "(?>": "atomic groups are", "(?(": "conditional groups are",
    "(?#": "comments (?#...) are",
}
_ESCAPES = {"\\Z": "write \\z or $ for the end", "\\u": "write \\x{00e9}", "\\U": "write \\x{1F600}",
            "\\N": "write \\x{...}"}


class PatternError(ValueError):
    """A typed pattern that cannot be run; its text is the one-line reason."""


def compile_pattern(pattern: str, ignore_case: bool = False, multiline: bool = False):
    """``pattern`` compiled by RE2; the result searches ``str`` (spans in characters) and ``bytes`` (read as
    UTF-8) alike. Raises PatternError with the reason when it cannot run."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"the pattern is {len(pattern):,} characters long: at most {MAX_PATTERN:,}")
    try:
        pattern.encode("utf-8")
    except UnicodeEncodeError as exc:  # bytes that were not UTF-8 on the command line (surrogate escapes)
        raise PatternError(f"the pattern is not valid UTF-8 (at position {exc.start})") from None
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refusal on stderr
    options.case_sensitive = not ignore_case
    # only whole matches are used: without captures a search's memory does not grow with the square of the
    # number of groups (10,000 nested groups took 3 GB)
    options.never_capture = True
    try:
        return re2.compile(("(?m)" if multiline else "") + pattern, options)
    except re2.error as exc:
        raise PatternError(_reason(pattern, _text(exc))) from None


def _text(exc: re2.error) -> str:
    reason = exc.args[0] if exc.args else ""
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def _reason(pattern: str, complaint: str) -> str:
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        position = getattr(exc, "pos", None)
        return f"not a regular expression: {getattr(exc, 'msg', None) or exc}" + (
            f" at position {position}" if position is not None else "")
    kind, _, what = complaint.partition(": ")
    hint = ""
    if kind == "invalid perl operator":
        feature = _OPERATORS.get(what) or f"the inline flag {what}) is"
    elif kind == "invalid escape sequence":
        feature = "backreferences are" if what[1:2].isdigit() else f"{what} is"
        hint = _ESCAPES.get(what, "")
    elif kind == "bad repetition operator":
        feature = "possessive quantifiers are" if what.endswith("+") else f"the repetition {what} is"
    elif kind == "invalid repetition size":
        feature = f"a repetition over 1000 times ({what}; nested counts multiply) is"
    elif complaint.startswith("pattern too large"):
        return "the pattern is too large to run in linear time (RE2): use fewer or smaller repetitions"
    else:
        return f"cannot run this pattern ({complaint}): {LINEAR}"
    return f"{feature} not supported: {LINEAR}" + (f"; {hint}" if hint else "")
