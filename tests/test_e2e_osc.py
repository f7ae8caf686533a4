"""End to end, through a real terminal: text that others control never writes the operator's clipboard.

tmux takes OSC sequences in (with ``set-clipboard on`` an OSC 52 becomes a paste buffer and goes on to the
outer terminal's clipboard), so what the screen shows cannot tell: the raw bytes the console writes are recorded
with ``pipe-pane -O`` and searched, and the paste buffers must stay empty. A hostile name is shown in a title, a
modal heading, a notification and a log line, from a service's name in the config and a log file's name.
"""

from __future__ import annotations

import json
import shlex
import time

import pytest

from tmux_support import TmuxServer, lakedeck_shell

OSC52 = "\x1b]52;c;cHduZWQ=\x1b\\"  # "pwned", ST-terminated
OSC52_BEL = "\x1b]52;c;cHduZWQ=\x07"
OSC8 = "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\"
BIDI = "\u202eevil\u2066x\u2069\u200d"
FORBIDDEN = {  # what must never be among the bytes written, 7-bit and 8-bit forms
    "OSC 52": b"\x1b]52", "OSC 8": b"\x1b]8;", "8-bit OSC": "\x9d".encode(), "8-bit CSI": "\x9b".encode(),
    **{f"U+{ord(c):04X}": c.encode() for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
       "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u061c"},
}


@pytest.mark.integration
def test_a_hostile_name_in_titles_modals_notifications_and_log_lines_never_reaches_the_clipboard(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / f"app-{OSC52}.log").write_text(f"2026-11-22T10:00:01Z ERROR copy {OSC52_BEL} then {OSC8} {BIDI}\n")
    config = tmp_path / "lakedeck.yaml"
    config.write_text(json.dumps({
        "audit_log": str(tmp_path / "audit.jsonl"), "store": {"enabled": False}, "refresh": "1s",
        "services": [{"name": f"web{OSC52}{BIDI}", "kind": "tcp", "port": 1}],
        "logs": [{"name": f"app{OSC52_BEL}", "path": str(folder / "*.log")}],
    }))
    record = tmp_path / "written.bin"
    tmux = TmuxServer(lakedeck_shell(f"-c {shlex.quote(str(config))}"), size=(160, 40), record=record, clipboard=True)
    try:
        tmux.wait_for("web␛]52;c;cHduZWQ=␛\\⟨U+202E⟩evil")  # the Services row, and the header's counts
        tmux.wait_for("copy ␛]52;c;cHduZWQ=␇ then ␛]8;;http://evil.example/")  # the line in the Logs pane
        tmux.keys("Enter")  # the details of the service: its name in the modal's title
        tmux.wait_for("Details · web␛]52;c;cHduZWQ=␛\\")
        tmux.keys("Escape")  # alone: an escape followed at once by a key is read as alt+key
        tmux.wait_gone("Details ·")
        tmux.keys("l")  # a tcp check has no logs: a notification names it
        tmux.wait_for("No logs known for")
        tmux.keys("4")
        tmux.wait_for("following")
        tmux.keys("l")  # the line's file full screen: the file's name in the title
        tmux.wait_for(f"· {folder}/app-␛]52;c;cHduZWQ=␛\\.log")
        tmux.keys("Enter")  # the line in full: its file in the facts, the line itself
        tmux.wait_for("Log line")
        tmux.keys("Escape")
        tmux.wait_gone("Log line")
        tmux.keys("q")
        tmux.wait_for("EXIT=0")
        written = record.read_bytes()
        assert "␛]52;c;cHduZWQ=␛\\".encode() in written  # the record holds what was drawn, shown inert
        found = {name: written.count(sequence) for name, sequence in FORBIDDEN.items() if sequence in written}
        assert found == {}, f"the console wrote {found}"
        assert tmux.buffers() == ""  # nothing reached tmux's paste buffers, so nothing the outer clipboard

        # the check can fail: the same sequence written raw in this tmux sets a paste buffer at once
        tmux.tmux("new-window", "-t", "t", f"printf {shlex.quote(OSC52_BEL)}; sleep 60")
        deadline = time.monotonic() + 10
        while not tmux.buffers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "pwned" in tmux.tmux("show-buffer").stdout
    finally:
        tmux.close()
