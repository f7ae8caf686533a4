"""Making untrusted text safe to show: one line, no control characters, bounded length."""

from __future__ import annotations

import re

# C0 controls (but tab), DEL and C1 controls become visible symbols: ESC shows as ␛, so an escape
# sequence in a log line or an error message can never reach the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x80-\x9f]")
_SYMBOLS = {i: chr(0x2400 + i) for i in range(0x20)}
_SYMBOLS[0x7F] = "\u2421"


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return _SYMBOLS.get(code, "\ufffd")


def visible(text: str) -> str:
    """``text`` with every control character replaced by a visible symbol (tabs become spaces)."""
    return _CONTROL.sub(_visible, text.replace("\t", "    "))


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
