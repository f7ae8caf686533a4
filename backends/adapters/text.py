"""Small wording helpers shared by the adapters, so every reason reads the same way."""

from __future__ import annotations

import errno
import socket
import ssl

from ..durations import format_duration
from ..text import human_bytes  # noqa: F401  (re-exported for the adapters)
from ..text import one_line as _one_line

MAX_REASON = 200


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """``text`` on one line: runs of blanks and newlines collapsed, controls made visible, cut to ``limit``."""
    return _one_line(" ".join(str(text).split()), limit)


def seconds(value: float) -> str:
    """A duration short enough for a reason, keeping one decimal below 10 s: ``1.4s``, ``250ms``, ``3m05s``."""
    if 1 <= value < 10:
        return f"{value:.1f}".rstrip("0").rstrip(".") + "s"
    return format_duration(value)


def os_error_text(exc: BaseException) -> str:
    """The lower-case cause of an OSError (``permission denied``), without the ``[Errno 13]`` noise."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return one_line(str(exc)) or type(exc).__name__


def connect_error_reason(exc: BaseException, host: str, port: int | str) -> str:
    """Why a connection to ``host:port`` failed, worded so the operator knows where to look.

    Walks the exception chain because httpx wraps the socket error it got from the OS.
    """
    where = f"{host}:{port}"
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = getattr(cause, "verify_message", None) or cause
            return one_line(f"TLS certificate of {where} not trusted: {detail}")
        if isinstance(cause, ssl.SSLError):
            detail = getattr(cause, "reason", None) or cause
            return one_line(f"TLS handshake with {where} failed: {detail}")
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host {host!r} — check the name or DNS"
        if _refused(cause):
            return f"connection refused on {where} — is the service running?"
        if isinstance(cause, ConnectionResetError):
            return f"connection reset by {where}"
        if getattr(cause, "errno", None) in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"{where} unreachable: {os_error_text(cause)} — check routing or firewall"
    text = one_line(str(exc))
    # httpx and asyncio sometimes give an empty message; the class name still says what happened
    return one_line(f"cannot connect to {where}: {text or type(exc).__name__}")


def _refused(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return True
    # asyncio tried several addresses (::1 and 127.0.0.1) and only says so in the text
    return isinstance(exc, OSError) and str(exc).startswith("Multiple exceptions") and "[Errno 111]" in str(exc)


def _chain(exc: BaseException):
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
