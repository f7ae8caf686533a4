"""A real terminal for end-to-end tests: a tmux server of the test's own, on its own socket, so that killing it
touches no other session and its paste buffers are the test's alone."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

from integration import need_binary

ROOT = Path(__file__).parent.parent


def lakedeck_shell(arguments: str, after: str = "") -> str:
    """``sh -c`` running ``python -m tui.cli ARGUMENTS``, then printing its exit status and staying open."""
    command = f"{shlex.quote(sys.executable)} -m tui.cli {arguments}; echo EXIT=$?; {after} sleep 60"
    return f"sh -c {shlex.quote(command)}"


class TmuxServer:
    """One session running ``command`` in the repository, at ``size``, with ``env`` added. With ``record`` the
    pane's raw output is appended to that file from its first byte on (``pipe-pane -O``); ``clipboard`` turns
    tmux's ``set-clipboard`` on, so an OSC 52 the program writes lands in a paste buffer."""

    def __init__(self, command: str, size: tuple[int, int] = (120, 40), env: dict[str, str] | None = None,
                 record: Path | None = None, clipboard: bool = False) -> None:
        need_binary("tmux", "apt-get install -y tmux")
        self.socket = f"lakedeck-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        # COLUMNS and LINES (set under pytest) would override the pane's size
        script = f"cd {shlex.quote(str(ROOT))} && env -u COLUMNS -u LINES {exports} {command}"
        if record is not None:  # wait until the recording runs, so that not one byte goes unrecorded
            go = record.with_suffix(".go")
            script = f"while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.05; done; {script}"
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(size[0]), "-y", str(size[1]),
                  script, check=True)
        if clipboard:
            self.tmux("set-option", "-g", "set-clipboard", "on", check=True)
        if record is not None:
            self.tmux("pipe-pane", "-O", "-t", "t", f"cat >> {shlex.quote(str(record))}", check=True)
            record.with_suffix(".go").touch()

    def tmux(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t").stdout

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{self.screen()}")

    def wait_gone(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text in self.screen():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never went; the screen was:\n{self.screen()}")
            time.sleep(0.1)

    def keys(self, *keys: str, between: float = 0.2) -> None:
        """Type ``keys`` one by one, ``between`` seconds apart: an escape followed at once by a key reads as alt+key."""
        for key in keys:
            self.tmux("send-keys", "-t", "t", key, check=True)
            time.sleep(between)

    def pane_pid(self) -> int:
        return int(self.tmux("list-panes", "-t", "t", "-F", "#{pane_pid}", check=True).stdout.split()[0])

    def lakedeck(self) -> psutil.Process:
        """The lakedeck process running in the pane."""
        for child in psutil.Process(self.pane_pid()).children(recursive=True):
            if "tui.cli" in " ".join(child.cmdline()):
                return child
        raise AssertionError("lakedeck is not running in the pane")

    def buffers(self) -> str:
        return self.tmux("list-buffers").stdout

    def close(self) -> None:
        self.tmux("kill-server")
