"""End to end: the real `lakedeck` command in a real terminal (tmux), read as a person reads it."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from integration import need_binary

ROOT = Path(__file__).parent.parent


class Tmux:
    def __init__(self, command: str, size: tuple[int, int] = (120, 40), env: dict[str, str] | None = None) -> None:
        need_binary("tmux", "apt-get install -y tmux")
        self.name = f"lakedeck-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]),
                        f"cd {shlex.quote(str(ROOT))} && env {exports} {command}"], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.3)

    def lakedeck_pid(self) -> int:
        pane = subprocess.run(["tmux", "list-panes", "-t", self.name, "-F", "#{pane_pid}"],
                              capture_output=True, text=True, check=True).stdout.split()[0]
        for child in psutil.Process(int(pane)).children(recursive=True):
            if "tui.cli" in " ".join(child.cmdline()):
                return child.pid
        raise AssertionError("lakedeck is not running in the pane")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def config(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    path = tmp_path / "lakedeck.yaml"
    path.write_text(f"services:\n  - {{name: e2e-db, kind: tcp, port: {server.getsockname()[1]}}}\n"
                    "hosts:\n  - name: local\n")
    yield path
    server.close()


def lakedeck_command(config: Path, after: str = "") -> str:
    command = f"{shlex.quote(sys.executable)} -m tui.cli -c {shlex.quote(str(config))}"
    return f"sh -c {shlex.quote(command + '; echo EXIT=$?; ' + after + ' sleep 60')}"


@pytest.mark.integration
def test_console_in_a_real_terminal(config):
    tmux = Tmux(lakedeck_command(config), size=(80, 24))
    try:
        screen = tmux.wait_for("e2e-db")
        assert "1 Services" in screen and "2 Resources" in screen and "● OK" in screen
        tmux.keys("2")
        screen = tmux.wait_for("memory")
        assert "1 Services" not in screen
        tmux.keys("?")
        tmux.wait_for("Keys (rebind by id")
        tmux.keys("Escape", "q")
        screen = tmux.wait_for("EXIT=0")
    finally:
        tmux.close()


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signals_end_the_console_within_a_second_and_leave_the_terminal_sane(config, signum):
    tmux = Tmux(lakedeck_command(config, after="stty -a | tr ';' '\\n' | grep -o -- '-\\?icanon\\|-\\?echo '; echo STTY-DONE;"))
    try:
        tmux.wait_for("e2e-db")
        pid = tmux.lakedeck_pid()
        process = psutil.Process(pid)
        started = time.monotonic()
        os.kill(pid, signum)
        process.wait(timeout=5)
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"took {elapsed:.2f}s to exit after {signum.name}"
        screen = tmux.wait_for("STTY-DONE")
        assert "EXIT=0" in screen
        assert "-icanon" not in screen and "icanon" in screen
        assert "-echo " not in screen
    finally:
        tmux.close()


@pytest.mark.integration
def test_tail_follows_a_file_across_rotation_in_a_real_terminal(tmp_path):
    """`lakedeck tail FILE`: the end of the file at once, appended lines, and the new file after a rename."""
    log = tmp_path / "app.log"
    log.write_text("".join(f"2026-11-22T10:00:{i % 60:02d}Z INFO start line {i}\n" for i in range(5000)))
    command = f"{shlex.quote(sys.executable)} -m tui.cli tail {shlex.quote(str(log))}"
    tmux = Tmux(f"sh -c {shlex.quote(command + '; echo EXIT=$?; sleep 60')}", size=(80, 24))
    try:
        screen = tmux.wait_for("start line 4999")
        assert "following" in screen
        with open(log, "a") as handle:
            handle.write("2026-11-22T10:01:00Z ERROR appended after start\n")
        tmux.wait_for("appended after start")
        log.rename(tmp_path / "app.log.1")
        log.write_text("2026-11-22T10:02:00Z INFO written to the new file\n")
        tmux.wait_for("written to the new file")
        tmux.keys("q")
        tmux.wait_for("EXIT=0")
    finally:
        tmux.close()


@pytest.mark.integration
def test_tail_refuses_a_missing_file_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tui.cli", "tail", str(tmp_path / "nope.log")], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"lakedeck tail: cannot follow {tmp_path / 'nope.log'}: no such file"]
