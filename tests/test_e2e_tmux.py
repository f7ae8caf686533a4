"""End to end: the real `lakedeck` command in a real terminal (tmux), read as a person reads it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from tmux_support import ROOT, TmuxServer, lakedeck_shell

BOUND = 10.0  # how long a test waits for the console to be gone


@pytest.fixture
def config(tmp_path, port):
    path = tmp_path / "lakedeck.yaml"
    path.write_text(f"services:\n  - {{name: e2e-db, kind: tcp, port: {port}}}\nhosts:\n  - name: local\n")
    return path


@pytest.mark.integration
def test_console_in_a_real_terminal(config):
    tmux = TmuxServer(lakedeck_shell(f"-c {shlex.quote(str(config))}"), size=(80, 24))
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
def test_signals_end_the_console_and_leave_the_terminal_sane(config, signum):
    tmux = TmuxServer(lakedeck_shell(f"-c {shlex.quote(str(config))}", after="stty -a | tr ';' '\\n' | grep -o -- '-\\?icanon\\|-\\?echo '; echo STTY-DONE;"))
    try:
        tmux.wait_for("e2e-db")
        process = tmux.lakedeck()
        started = time.monotonic()
        os.kill(process.pid, signum)
        process.wait(timeout=BOUND)  # it takes well under 2 s (README); the figure is printed, not asserted
        print(f"\n{signum.name}: the console was gone {time.monotonic() - started:.2f}s after it")
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
    tmux = TmuxServer(lakedeck_shell(f"tail {shlex.quote(str(log))}"), size=(80, 24))
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
