"""ProcessCheck against real processes started by the test."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest

from backends.model import CheckReading, State
from helpers import source_for


async def poll_one(check) -> CheckReading:
    [reading] = await check.poll()
    assert "\n" not in reading.reason
    return reading


@pytest.fixture
def sleeper():
    """A real ``sleep`` whose command line carries a marker no other process has; killed and reaped at the end."""
    marker = f"lakedeck-test-{uuid.uuid4().hex[:12]}"
    # the marker is argv[0]; the program (and so the process name) is still sleep
    proc = subprocess.Popen([marker, "30"], executable="sleep")
    deadline = time.monotonic() + 5
    while marker.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():  # until exec is done
        assert time.monotonic() < deadline, "sleep did not start"
        time.sleep(0.005)
    yield proc, marker
    proc.kill()
    proc.wait()


async def test_match_by_cmdline_reports_pid_uptime_and_rss(sleeper):
    proc, marker = sleeper
    check = source_for("services", "process", cmdline=marker)
    reading = await poll_one(check)
    assert reading.state is State.OK, reading.reason
    assert reading.reason.startswith(f"pid {proc.pid} up ")
    assert "rss " in reading.reason and "cpu" not in reading.reason  # no CPU figure before a second sample
    details = dict(reading.details)
    assert details["pid"] == str(proc.pid) and details["count"] == "1"
    reading = await poll_one(check)
    assert "cpu " in reading.reason and dict(reading.details)["cpu"].endswith("%")
    assert reading.kind == "process" and reading.target == f"cmdline ~ {marker}"


async def test_cmdline_never_matches_our_own_process():
    own = " ".join(psutil.Process().cmdline())
    others = [p for p in psutil.process_iter(["cmdline"])
              if p.pid != os.getpid() and own in " ".join(p.info["cmdline"] or [])]
    reading = await poll_one(source_for("services", "process", cmdline=own))
    details = dict(reading.details)
    assert details["count"] == str(len(others))  # a wrapper such as `timeout ... pytest` may match; we never do
    assert details.get("pid") != str(os.getpid())


async def test_match_by_exact_name_counts_processes(sleeper):
    proc, _ = sleeper
    reading = await poll_one(source_for("services", "process", process="sleep"))
    assert reading.state is State.OK
    assert int(dict(reading.details)["count"]) >= 1
    reading = await poll_one(source_for("services", "process", process="sleep", min_count=1000))
    assert reading.state is State.CRITICAL
    assert "processes named 'sleep' (expected at least 1000)" in reading.reason or \
        "process named 'sleep' (expected at least 1000)" in reading.reason


async def test_no_match_is_critical():
    marker = f"nothing-{uuid.uuid4().hex}"
    reading = await poll_one(source_for("services", "process", cmdline=marker))
    assert reading.state is State.CRITICAL
    assert reading.reason == f"no process with '{marker}' in its command line is running"


async def test_pidfile_of_a_running_process(sleeper, tmp_path):
    proc, _ = sleeper
    pidfile = tmp_path / "svc.pid"
    pidfile.write_text(f"{proc.pid}\n")
    reading = await poll_one(source_for("services", "process", pidfile=str(pidfile)))
    assert reading.state is State.OK
    assert reading.reason.startswith(f"pid {proc.pid} up ")


async def test_stale_missing_and_garbage_pidfiles(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: the pid no longer exists
    pidfile = tmp_path / "svc.pid"
    pidfile.write_text(str(gone.pid))
    reading = await poll_one(source_for("services", "process", pidfile=str(pidfile)))
    assert reading.state is State.CRITICAL
    assert reading.reason == f"pid {gone.pid} from {pidfile} is not running (stale pidfile)"

    missing = tmp_path / "missing.pid"
    reading = await poll_one(source_for("services", "process", pidfile=str(missing)))
    assert reading.state is State.CRITICAL
    assert reading.reason == f"pidfile {missing} missing — is the service running?"

    pidfile.write_text("hello")
    reading = await poll_one(source_for("services", "process", pidfile=str(pidfile)))
    assert reading.state is State.UNKNOWN
    assert reading.reason == f"pidfile {pidfile} holds 'hello', not a pid"

    reading = await poll_one(source_for("services", "process", pidfile=str(tmp_path)))
    assert reading.state is State.UNKNOWN
    assert reading.reason == f"cannot read pidfile {tmp_path}: is a directory"


async def test_a_zombie_is_not_running(tmp_path):
    child = subprocess.Popen(["true"])
    try:
        for _ in range(100):  # wait until it has exited but is not reaped
            with open(f"/proc/{child.pid}/stat") as handle:
                if handle.read().split(") ")[1].startswith("Z"):
                    break
            time.sleep(0.01)
        pidfile = tmp_path / "z.pid"
        pidfile.write_text(str(child.pid))
        reading = await poll_one(source_for("services", "process", pidfile=str(pidfile)))
        assert reading.state is State.CRITICAL
        assert "zombie" in reading.reason
    finally:
        child.wait()


async def test_process_that_exits_between_polls(sleeper):
    proc, marker = sleeper
    check = source_for("services", "process", cmdline=marker)
    assert (await poll_one(check)).state is State.OK
    proc.kill()
    proc.wait()
    reading = await poll_one(check)
    assert reading.state is State.CRITICAL
    assert check._known == {}
