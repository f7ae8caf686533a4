"""The pattern typed after `/` (filter) or for find: a regular expression, smart case, `!` inverts."""

from __future__ import annotations

from .linear_regex import PatternError, compile_pattern
from .model import LogLine

SPECIAL = frozenset(".^$*+?{}[]\\|()")  # a pattern without these is plain text


class LineFilter:
    """``error|fail`` keeps matching lines; ``!debug`` keeps the others.

    Smart case: case-insensitive unless the pattern has a capital letter. Patterns run in linear time (RE2,
    see linear_regex); one that cannot run keeps no line, and ``error`` says why in one line.
    """

    def __init__(self, text: str, invertible: bool = True) -> None:
        self.text = text
        self.inverted = invertible and text.startswith("!")
        self.pattern = text[1:] if self.inverted else text
        self.ignore_case = not any(char.isupper() for char in self.pattern)
        self.error = ""
        self.regex = None
        try:
            self.regex = compile_pattern(self.pattern, self.ignore_case)
        except PatternError as exc:
            self.error = str(exc)
        self.literal = not self.error and not any(char in SPECIAL for char in self.pattern)
        self._sources: dict[str, bool] = {}
        # a plain ASCII word (the common case) is found with `in`, several times faster than through RE2
        self._needle = (self.pattern.lower() if self.ignore_case else self.pattern) if (
            self.literal and self.pattern.isascii()) else None

    @property
    def empty(self) -> bool:
        return not self.pattern

    def search(self, text: str) -> bool:
        """Whether the pattern occurs in ``text`` (never, when it cannot run)."""
        if self._needle is not None:
            return self._needle in (text.lower() if self.ignore_case else text)
        if self.regex is None:
            return False
        return self.regex.search(text.encode("utf-8", "surrogatepass")) is not None  # bytes: no offsets to map

    def matches(self, line: LogLine) -> bool:
        """The line's text or its source name matches (or, inverted, neither does); a pattern that cannot
        run keeps nothing, inverted or not."""
        if self.regex is None:
            return False
        source = self._sources.get(line.source)
        if source is None:  # a handful of names, each tested once
            source = self._sources[line.source] = self.search(line.source)
        return (source or self.search(line.text)) != self.inverted

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the pattern matches in ``text``, for highlighting (nothing for an inverted filter)."""
        if self.inverted or not self.pattern or self.regex is None:
            return []
        try:
            return [m.span() for m in self.regex.finditer(text) if m.end() > m.start()]
        except UnicodeEncodeError:  # a lone surrogate (JSON can carry one): no highlight rather than a crash
            return []

    def bytes_regex(self, multiline: bool = False):
        """The same pattern for raw bytes (read as UTF-8), for scanning a file without decoding it line by
        line; ``multiline``: ``^`` and ``$`` at every line. Raises PatternError when it cannot run."""
        if self.error:
            raise PatternError(self.error)
        return compile_pattern(self.pattern, self.ignore_case, multiline) if multiline else self.regex
