"""Wording helpers shared by the adapters."""

from __future__ import annotations

import socket
import ssl

from backends.adapters.text import connect_error_reason, human_bytes, one_line, os_error_text, seconds


def test_one_line_collapses_and_cuts():
    assert one_line("a\nb\r\n  c\td") == "a b c d"
    assert one_line("x" * 500) == "x" * 199 + "…"
    assert len(one_line("word " * 100)) == 200
    assert one_line("missing [/usr/lib/x] near [/") == "missing [/usr/lib/x] near [/"


def test_seconds_keeps_a_decimal_below_ten():
    assert seconds(0.45) == "450ms"
    assert seconds(1.35) == "1.4s"
    assert seconds(1.0) == "1s"
    assert seconds(4.5) == "4.5s"
    assert seconds(42) == "42s"
    assert seconds(185) == "3m05s"


def test_human_bytes():
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KB"
    assert human_bytes(120 * 1024 * 1024) == "120 MB"
    assert human_bytes(3.4 * 1024 ** 3) == "3.4 GB"


def test_os_error_text_drops_errno_noise():
    assert os_error_text(PermissionError(13, "Permission denied")) == "permission denied"
    assert os_error_text(ValueError("odd")) == "odd"


def test_connect_error_reasons_walk_the_cause_chain():
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert connect_error_reason(wrapped, "127.0.0.1", 80) == \
        "connection refused on 127.0.0.1:80 — is the service running?"
    unknown_host = socket.gaierror(-2, "Name or service not known")
    assert "cannot resolve host 'db'" in connect_error_reason(unknown_host, "db", 5432)
    multiple = OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 80), "
                       "[Errno 111] Connect call failed ('127.0.0.1', 80)")
    assert connect_error_reason(multiple, "localhost", 80).startswith("connection refused on localhost:80")
    assert connect_error_reason(ssl.SSLError(1, "bad"), "h", 443).startswith("TLS handshake with h:443 failed")
    assert connect_error_reason(TimeoutError(), "h", 1) == "cannot connect to h:1: TimeoutError"


def test_one_line_makes_escape_sequences_visible():
    assert one_line("red \x1b[31mtext") == "red \u241b[31mtext"
