"""End to end: SIGTERM, SIGHUP or a tmux server killed while the console runs an action. The console ends, the
action's whole process group is gone, and the audit log's last line for it is `failed` (interrupted) — and
`lakedeck action` (headless) the same way, with exit 128+N."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tmux_support import ROOT, TmuxServer, lakedeck_shell

UP = "the-action is up"  # the action's first line (the command shown holds "$0 is up", not this)
BOUND = 10.0  # how long the tests wait for the console to be gone: it takes under 2 s (see the README)


@pytest.fixture
def setup(tmp_path, port):
    path = tmp_path / "lakedeck.yaml"
    path.write_text(yaml.safe_dump({
        "audit_log": str(tmp_path / "audit.jsonl"), "locks": str(tmp_path / "locks"),
        "services": [{"name": "e2e-db", "kind": "tcp", "port": port, "actions": [
            # a shell with a child of its own: both must go
            {"id": "long", "command": ["sh", "-c", 'echo "$0 is up"; sleep 60; echo never', "the-action"],
             "timeout": "5m"}]}]}))
    return path


def audit(path: Path) -> list[dict]:
    log = path.parent / "audit.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait(condition, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def sleeper_of(pid: int) -> psutil.Process | None:
    try:
        return next((c for c in psutil.Process(pid).children(recursive=True) if c.name() == "sleep"), None)
    except psutil.NoSuchProcess:
        return None


def ended(process: psutil.Process) -> bool:
    """Gone, or a zombie (it has ended; whoever adopted it has not reaped it yet)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def assert_interrupted(path: Path, name: str) -> None:
    last = [e for e in audit(path) if e["action"] == "long"][-1]
    assert last["event"] == "failed" and last["error"] == f"interrupted by {name}", last
    assert last["output"] == [UP]
    assert [e["event"] for e in audit(path)] == ["requested", "confirmed", "failed"]


@pytest.mark.integration
@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "tmux kill-server"])
def test_a_signal_during_an_action_ends_the_console_its_group_and_audits_it(setup, how):
    tmux = TmuxServer(lakedeck_shell(f"-c {shlex.quote(str(setup))}"))
    try:
        tmux.wait_for("e2e-db")
        console = tmux.lakedeck()
        tmux.keys("a", "Enter")  # the action menu, its only action: the confirmation, Cancel focused
        tmux.wait_for("sleep 60")
        tmux.keys("Tab")
        while not audit(setup)[1:]:  # Run is armed a moment after the modal opens: enter until it runs
            tmux.keys("Enter")
        tmux.wait_for(UP)
        wait(lambda: sleeper_of(console.pid) is not None, what="the action's sleep started")
        shell, sleeper = sleeper_of(console.pid).parent(), sleeper_of(console.pid)
        started = time.monotonic()
        if how == "tmux kill-server":
            tmux.close()
        else:
            os.kill(console.pid, getattr(signal, how))
        wait(lambda: ended(console), BOUND, "the console ended")
        took = time.monotonic() - started
        wait(lambda: ended(shell) and ended(sleeper), BOUND, "the action's group ended")
        assert_interrupted(setup, "SIGTERM" if how == "SIGTERM" else "SIGHUP")
        if how != "tmux kill-server":
            assert "EXIT=0" in tmux.wait_for("EXIT=")
        print(f"\n{how}: the console was gone {took:.2f}s after it")
    finally:
        tmux.close()


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_a_headless_action_its_group_and_audits_it(setup, signum):
    env = {k: v for k, v in os.environ.items() if k != "LAKEDECK_CONFIG"}
    process = subprocess.Popen([sys.executable, "-m", "tui.cli", "action", "-c", str(setup), "e2e-db", "long", "--yes"],
                               cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        while process.stdout.readline().strip() != UP:
            pass
        wait(lambda: sleeper_of(process.pid) is not None, what="the action's sleep started")
        sleeper = sleeper_of(process.pid)
        process.send_signal(signum)
        assert process.wait(BOUND) == 128 + signum
        wait(lambda: ended(sleeper), BOUND, "the action's group ended")
        assert process.stderr.read() == f"lakedeck: interrupted by {signal.Signals(signum).name}\n"
        last = audit(setup)[-1]
        assert (last["event"], last["error"], last["output"]) == (
            "failed", f"interrupted by {signal.Signals(signum).name}", [UP])
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.mark.integration
def test_a_signal_ends_lakedeck_check_and_the_command_checks_it_started(tmp_path):
    marker = "lakedeck-check-probe"
    path = tmp_path / "lakedeck.yaml"
    path.write_text(yaml.safe_dump({"services": [{"name": "probe", "kind": "command", "refresh": "10m", "timeout": "5m",
                                                  "command": ["sh", "-c", 'echo "$0" > "$1"; sleep 300', marker,
                                                              str(tmp_path / "up")]}]}))
    env = {k: v for k, v in os.environ.items() if k != "LAKEDECK_CONFIG"}
    process = subprocess.Popen([sys.executable, "-m", "tui.cli", "check", "-c", str(path)], cwd=ROOT, env=env,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait(lambda: (tmp_path / "up").exists() and sleeper_of(process.pid) is not None, what="the check's command ran")
        sleeper = sleeper_of(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(BOUND) == 128 + signal.SIGTERM
        wait(lambda: ended(sleeper), BOUND, "the check's command ended")
        assert process.stderr.read() == "lakedeck: interrupted by SIGTERM\n"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_lakedeck_logs_follow_and_the_command_it_follows(tmp_path, signum):
    marker = "lakedeck-logs-probe"
    path = tmp_path / "lakedeck.yaml"
    path.write_text(yaml.safe_dump({"logs": [{"name": "app", "kind": "command",
                                              "command": ["sh", "-c", 'echo "$0 up"; sleep 300', marker]}]}))
    env = {k: v for k, v in os.environ.items() if k != "LAKEDECK_CONFIG"}
    process = subprocess.Popen([sys.executable, "-m", "tui.cli", "logs", "-c", str(path), "-f"], cwd=ROOT, env=env,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait(lambda: sleeper_of(process.pid) is not None, what="the followed command ran")
        sleeper = sleeper_of(process.pid)
        process.send_signal(signum)
        assert process.wait(BOUND) == 128 + signum
        wait(lambda: ended(sleeper), BOUND, "the followed command ended")
        assert process.stderr.read() == f"lakedeck: interrupted by {signal.Signals(signum).name}\n"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
