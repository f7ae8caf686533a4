"""CommandCheck running real commands."""

from __future__ import annotations

import asyncio
import os

from backends.model import CheckReading, State
from helpers import source_for


async def run(command, **options) -> CheckReading:
    options.setdefault("refresh", "2s")
    options.setdefault("timeout", "1s")
    check = source_for("services", "command", command=command, **options)
    [reading] = await asyncio.wait_for(check.poll(), check.timeout)
    assert "\n" not in reading.reason and len(reading.reason) <= 200
    return reading


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init (which reaps lazily here)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


async def test_exit_codes_map_to_states():
    ok = await run(["true"])
    assert ok.state is State.OK and ok.reason == "no output (exit 0)"
    assert ok.kind == "command" and ok.target == "true" and ("exit", "0") in ok.details
    warn = await run(["sh", "-c", "exit 1"])
    assert warn.state is State.WARN and warn.reason == "no output (exit 1)"
    critical = await run(["false"], warn_codes=[])
    assert critical.state is State.CRITICAL
    assert (await run(["sh", "-c", "exit 3"], ok_codes=[0, 3])).state is State.OK
    assert (await run(["sh", "-c", "exit 2"])).state is State.CRITICAL


async def test_reason_is_the_first_line_of_output():
    reading = await run(["sh", "-c", "printf '\\n  accepting connections  \\nsecond line\\n'"])
    assert reading.reason == "accepting connections (exit 0)"
    reading = await run(["sh", "-c", "echo 'no response' >&2; exit 2"])
    assert reading.state is State.CRITICAL and reading.reason == "no response (exit 2)"


async def test_markup_like_output_is_kept_literally():
    reading = await run(["sh", "-c", "echo 'missing [/usr/lib/x] near [/'; exit 1"])
    assert reading.reason == "missing [/usr/lib/x] near [/ (exit 1)"


async def test_long_and_huge_output_is_bounded():
    reading = await run(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo; exit 0"])
    assert reading.state is State.OK
    assert len(reading.reason) <= 200 and reading.reason.endswith("(exit 0)")


async def test_env_and_cwd(tmp_path):
    reading = await run(["sh", "-c", 'echo "$GREETING from $(pwd)"'], env={"GREETING": "hello"}, cwd=str(tmp_path))
    assert reading.reason == f"hello from {tmp_path} (exit 0)"
    reading = await run(["sh", "-c", 'echo "$PATH"'])
    assert reading.reason.startswith(os.environ["PATH"][:20])  # merged over our environment


async def test_missing_command_and_directory_are_unknown(tmp_path):
    reading = await run(["no-such-command-lakedeck", "--x"])
    assert reading.state is State.UNKNOWN and reading.reason == "command not found: no-such-command-lakedeck"
    reading = await run(["true"], cwd=str(tmp_path / "nope"))
    assert reading.state is State.UNKNOWN and reading.reason == f"cannot run in {tmp_path / 'nope'}: no such directory"
    reading = await run([str(tmp_path)])
    assert reading.state is State.UNKNOWN and reading.reason == f"cannot run {tmp_path}: permission denied"


async def test_hung_command_is_killed_with_its_whole_group(tmp_path):
    pids = tmp_path / "pids"
    reading = await run(["sh", "-c", f"sleep 60 & echo $! > {pids}; sleep 60"], refresh="1s", timeout="500ms")
    assert reading.state is State.CRITICAL
    assert reading.reason == "still running after 450ms; killed"
    background = int(pids.read_text())
    for _ in range(50):
        if gone(background):
            break
        await asyncio.sleep(0.02)
    assert gone(background), "the background sleep survived"


async def test_background_child_holding_the_pipe_does_not_hang_the_check():
    # had it waited for the pipe to close, it would have timed out: CRITICAL "still running after ..."
    reading = await run(["sh", "-c", "echo started; sleep 60 & exit 0"], refresh="3s", timeout="2s")
    assert reading.state is State.OK and reading.reason == "started (exit 0)"


async def test_killed_by_a_signal():
    reading = await run(["sh", "-c", "kill -TERM $$$$"])
    assert reading.state is State.CRITICAL and reading.reason == "no output (killed by SIGTERM)"


async def test_cancelled_poll_leaves_nothing_running(tmp_path):
    pids = tmp_path / "pids"
    check = source_for("services", "command", command=["sh", "-c", f"echo $$$$ > {pids}; sleep 60"],
                       refresh="10s", timeout="5s")
    task = asyncio.create_task(check.poll())
    for _ in range(100):
        if pids.exists() and pids.read_text().strip():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation was swallowed")
    leader = int(pids.read_text())
    for _ in range(50):
        if gone(leader):
            break
        await asyncio.sleep(0.02)
    assert gone(leader)
