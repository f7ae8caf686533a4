"""Making untrusted text safe to show: one line, no control characters, bounded length."""

from __future__ import annotations

import re

# What never reaches a terminal as it came: C0 controls (ESC among them, so no CSI, OSC, DCS, APC or PM sequence can
# start), DEL and the C1 controls (8-bit CSI, OSC, ST...); line and paragraph separators; the bidi embeddings,
# overrides and isolates and every other format character (Unicode category Cf: zero-width space and joiners,
# word joiner, BOM, invisible operators, tag characters...); invisible fillers that pass for letters; and lone
# surrogates (undecodable bytes in a file name). And tabs, which become spaces. A test checks this set against
# unicodedata.
_UNSAFE_BMP = ("\x00-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
               "\u17b4\u17b5\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0"
               "\ufff9-\ufffb\ud800-\udfff")
_UNSAFE_ASTRAL = ("\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
                  "\U000e0001\U000e0020-\U000e007f")
_UNSAFE = re.compile(f"[{_UNSAFE_BMP}{_UNSAFE_ASTRAL}]")
# The same set searched fast (this runs on every log line drawn): ASCII text only for its controls (\xff, never in
# ASCII text, makes three runs, which re checks as one bitmap: faster than two ranges); other text with the BMP part
# as one bitmap and the astral part as two ranges around it (each range is checked for every character), whose
# harmless characters (rare scripts, not emoji nor CJK) come back unchanged.
_SEARCH_ASCII = re.compile("[\x00-\x1f\x7f\xff]")
_SEARCH = re.compile(f"[{_UNSAFE_BMP}\U000110bd-\U0001d17a\U000e0001-\U000e007f]")
_SYMBOLS = {**{chr(code): chr(0x2400 + code) for code in range(0x20)}, "\t": "    ", "\x7f": "\u2421"}


def _symbol(match: re.Match[str]) -> str:
    """An unsafe character's visible stand-in: a C0 control's control picture (ESC is ␛), spaces for a tab, ␡ for
    DEL, and the code point of anything else (``⟨U+202E⟩``)."""
    char = match.group()
    symbol = _SYMBOLS.get(char)
    if symbol is None:
        if not _UNSAFE.match(char):
            return char
        symbol = _SYMBOLS[char] = f"\u27e8U+{ord(char):04X}\u27e9"  # a few thousand at most: the set is finite
    return symbol


def visible(text: str) -> str:
    """``text`` made inert for a terminal: THE function every piece of untrusted text goes through before it is
    shown (on screen, in `check`, `logs` and the other headless verbs). Control characters, escape sequences,
    bidi controls and invisible format characters become visible symbols, so nothing in ``text`` can move the
    cursor, set the clipboard (OSC 52), make a link (OSC 8), reorder what is shown or hide part of it. Tabs
    become spaces. Visible text is left as it is, so calling this twice changes nothing more."""
    return (_SEARCH_ASCII if text.isascii() else _SEARCH).sub(_symbol, text)


def one_line(text: str, limit: int = 200) -> str:
    """The first line's worth of ``text``: newlines folded, controls made visible, cut to ``limit``."""
    flat = " ".join(text.split("\n")).replace("\r", " ")
    flat = visible(flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def human_bytes(count: float) -> str:
    """``512 B``, ``1.2 KB``, ``120 MB``, ``3.4 GB`` (powers of 1024, short units operators read fast)."""
    amount = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(amount) < 1024 or unit == "TB":
            if unit == "B":
                return f"{amount:.0f} B"
            return f"{amount:.1f} {unit}" if abs(amount) < 10 else f"{amount:.0f} {unit}"
        amount /= 1024
    return f"{amount:.0f} PB"  # pragma: no cover - unreachable


class InertLines:
    """A text stream whose every line goes out through ``visible``: the headless commands' messages (a file name,
    an argument, a path from the config) can never carry an escape sequence to the terminal."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write("\n".join(visible(line) for line in text.split("\n")))
        return len(text)

    def __getattr__(self, name: str):  # flush, fileno, isatty, encoding...: the wrapped stream's
        return getattr(self.stream, name)
