"""The pattern typed after `/` (filter) or for find: a regular expression, smart case, `!` inverts."""

from __future__ import annotations

import re

from .model import LogLine


class LineFilter:
    """``error|fail`` keeps matching lines; ``!debug`` keeps the others.

    Smart case: case-insensitive unless the pattern has a capital letter. Text that is not a valid
    regular expression is matched literally, and ``error`` says so.
    """

    def __init__(self, text: str, invertible: bool = True) -> None:
        self.text = text
        self.inverted = invertible and text.startswith("!")
        self.pattern = text[1:] if self.inverted else text
        self.flags = 0 if any(char.isupper() for char in self.pattern) else re.IGNORECASE
        self.error = ""
        try:
            self.regex = re.compile(self.pattern, self.flags)
        except re.error as exc:
            self.error = f"not a regular expression ({exc}): matching it as plain text"
            self.regex = re.compile(re.escape(self.pattern), self.flags)
        self.literal = self.error != "" or re.escape(self.pattern) == self.pattern

    @property
    def empty(self) -> bool:
        return not self.pattern

    def matches(self, line: LogLine) -> bool:
        """The line's text or its source name matches (or, inverted, neither does)."""
        found = self.regex.search(line.text) is not None or self.regex.search(line.source) is not None
        return found != self.inverted

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the pattern matches in ``text``, for highlighting (nothing for an inverted filter)."""
        if self.inverted or not self.pattern:
            return []
        return [m.span() for m in self.regex.finditer(text) if m.end() > m.start()]

    def bytes_regex(self) -> re.Pattern[bytes]:
        """The same pattern over raw bytes, for scanning a file without decoding it line by line."""
        pattern = re.escape(self.pattern) if self.error else self.pattern
        return re.compile(pattern.encode("utf-8"), self.flags)
