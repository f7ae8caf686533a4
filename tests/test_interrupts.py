"""The exit after SIGTERM/SIGHUP cannot stall: the watchdog ends a process whose shutdown is stuck (and the
child groups with it), and the alarm ends one whose main thread holds the interpreter lock. Each in a process
of its own: these end the process they run in."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).parent.parent


def run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_the_watchdog_ends_a_stuck_exit_and_kills_the_child_groups(tmp_path):
    pid_file = tmp_path / "child"
    out = run(f"""
        import queue, subprocess
        from backends import interrupts
        child = subprocess.Popen(["sleep", "60"], start_new_session=True)
        open({str(pid_file)!r}, "w").write(str(child.pid))
        groups = interrupts.terminate_children()  # what the signal handler does first
        assert groups == [child.pid], groups
        interrupts.start_watchdog(groups, code=0, after=0.2)
        stuck = queue.Queue(1)
        stuck.put(1)
        print("stuck", flush=True)
        stuck.put(2)  # what Textual's writer does on a terminal that is gone: blocks for good
    """)
    assert out.returncode == 0 and out.stdout == "stuck\n", out.stderr
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the child group outlived the process"
        time.sleep(0.05)


def test_the_alarm_ends_a_process_whose_main_thread_holds_the_interpreter(tmp_path):
    out = run("""
        import re
        from backends import interrupts
        interrupts.start_watchdog([], code=0, after=60)  # too late: the alarm comes first
        print("matching", flush=True)
        re.match(r"(a+)+$", "a" * 40 + "!")  # backtracks for minutes, holding the interpreter lock
    """)
    assert out.stdout == "matching\n"
    assert out.returncode == -14  # SIGALRM: the kernel ended it, no Python code needed


def test_only_own_child_groups_are_signalled_never_this_process_group():
    out = run("""
        import os, subprocess
        from backends import interrupts
        own = subprocess.Popen(["sleep", "60"], start_new_session=True)
        shared = subprocess.Popen(["sleep", "60"])  # in this process's group: signalled alone, never the group
        groups = interrupts.terminate_children()
        print(groups == [own.pid], own.wait(10), shared.wait(10), flush=True)
    """)
    assert out.stdout.split() == ["True", "-15", "-15"], out.stderr
