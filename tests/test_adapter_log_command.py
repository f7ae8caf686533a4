"""The ``command`` log kind, following real subprocesses (this Python, running small scripts)."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest
from helpers import source_for
from log_polling import ended, line_count, poll_once, poll_until, texts

from backends.adapters import log_stream
from backends.log_reading import MAX_LINE
from backends.model import State

PROGRAM = os.path.basename(sys.executable)
FOREVER = "import time; time.sleep(60)"


def command(script: str, **options):
    return source_for("logs", "command", name="app", command=[sys.executable, "-c", script], refresh="10s",
                      timeout="5s", **options)


@pytest.fixture
async def closing():
    """Sources made by the test, closed at its end even when it fails."""
    made = []
    yield made.append
    for source in made:
        await source.close()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # a zombie still answers kill(0) until it is reaped
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


async def wait_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_lines_arrive_and_the_first_poll_starts_the_command(closing):
    source = command(f"print('one'); print('two [/usr/lib/x] near [/', flush=True); {FOREVER}")
    closing(source)
    first = await poll_once(source)
    assert (first.state, first.reason, first.lines) == (State.OK, f"started {PROGRAM}, following", ())
    readings = await poll_until(source, line_count(2))
    assert texts(readings) == ["one", "two [/usr/lib/x] near [/"]
    assert readings[-1].state is State.OK and readings[-1].reason.startswith("following, ")
    assert source.hurry()  # lines came: the engine polls again soon
    quiet = await poll_once(source)
    assert (quiet.reason, quiet.lines, source.hurry()) == ("following, 0 new lines", (), False)
    assert source.describe().startswith(f"{sys.executable} -c ")


async def test_long_lines_are_cut_and_bad_utf8_replaced(closing):
    script = ("import sys; out = sys.stdout.buffer; out.write(b'x' * 20000 + b'\\n'); "
              "out.write(b'caf\\xc3\\xa9 bad \\xff\\xfe bytes\\r\\n'); "
              "out.write(b'no newline at the end'); out.flush()")
    source = command(script)
    closing(source)
    readings = await poll_until(source, ended)
    lines = [line for reading in readings for line in reading.lines]
    assert [line.text for line in lines] == ["x" * MAX_LINE, "café bad \ufffd\ufffd bytes", "no newline at the end"]
    assert [line.cut for line in lines] == [20000 - MAX_LINE, 0, 0]


async def test_a_flood_keeps_the_queue_bounded_and_says_what_was_dropped(closing):
    source = command("import sys\nfor i in range(200_000): sys.stdout.write(f'line {i}\\n')")
    closing(source)
    wakes = []
    source.wake = lambda: wakes.append(1)
    await poll_once(source)  # starts it; no poll while it writes
    stream = source.stream
    assert await asyncio.to_thread(stream.ended.wait, 30)
    assert stream.queued() == log_stream.QUEUE_LINES
    # once when the queue stopped being empty, once when the command ended: never per line
    assert len(wakes) == 2
    first = await poll_once(source)
    dropped = 200_000 - log_stream.QUEUE_LINES
    assert first.state is State.OK
    assert first.reason == (f"following, {log_stream.BATCH} new lines; dropped {dropped:,} lines: "
                            "the source wrote faster than the console reads")
    assert first.lines[0].text == f"line {dropped}"  # the oldest went, the newest stayed
    rest = await poll_until(source, ended)
    assert len(first.lines) + len(texts(rest)) == log_stream.QUEUE_LINES
    assert texts(rest)[-1] == "line 199999"
    assert all("dropped" not in r.reason for r in rest)
    assert rest[-1].reason == f"{PROGRAM} exited with status 0"


async def test_an_exit_is_unknown_with_its_status_and_the_next_poll_restarts_it(closing):
    script = ("import sys; print('hello', flush=True); "
              "sys.stderr.write('first complaint\\nboom: it broke\\n'); sys.exit(3)")
    source = command(script)
    closing(source)
    readings = await poll_until(source, ended)
    assert texts(readings) == ["hello"]
    assert readings[-1].reason == f"{PROGRAM} exited with status 3: boom: it broke"
    assert source.stream is None
    restarted = await poll_once(source)
    assert restarted.state is State.UNKNOWN  # until the new run shows it works, so failures keep backing off
    assert restarted.reason == f"restarted {PROGRAM}; it exited with status 3: boom: it broke"
    assert source.stream is not None
    again = await poll_until(source, ended)
    assert texts(again) == ["hello"]


async def test_a_killed_command_says_by_which_signal(closing):
    source = command("import os, signal; print('up', flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    closing(source)
    readings = await poll_until(source, lambda rs: rs[-1].state is State.UNKNOWN and "killed" in rs[-1].reason)
    assert readings[-1].reason == f"{PROGRAM} was killed by SIGKILL"


async def test_missing_program_and_missing_directory(tmp_path):
    source = source_for("logs", "command", name="app", command=[str(tmp_path / "no-such-tool"), "-f"])
    reading = await poll_once(source)
    assert (reading.state, reading.reason) == (
        State.UNKNOWN, "cannot run no-such-tool: not found (check the command's first word, or give its full path)")
    source = command("print(1)", cwd=str(tmp_path / "gone"))
    reading = await poll_once(source)
    assert (reading.state, reading.reason) == (
        State.UNKNOWN, f"cannot run {PROGRAM}: no directory {tmp_path / 'gone'} (check cwd:)")
    tool = tmp_path / "not-executable"
    tool.write_text("#!/bin/sh\n")
    source = source_for("logs", "command", name="app", command=[str(tool)])
    reading = await poll_once(source)
    assert (reading.state, reading.reason) == (State.UNKNOWN, "cannot run not-executable: permission denied")


async def test_cwd_and_env(tmp_path, closing):
    source = command("import os; print(os.getcwd()); print(os.environ['LAKEDECK_X'])", cwd=str(tmp_path),
                     env={"LAKEDECK_X": "from the config"})
    closing(source)
    readings = await poll_until(source, ended)
    assert texts(readings) == [str(tmp_path), "from the config"]


async def test_close_ends_the_whole_process_group_and_reaps_it(closing):
    script = ("import subprocess, sys, time; "
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              "print(child.pid, flush=True); time.sleep(60)")
    source = command(script)
    closing(source)
    readings = await poll_until(source, line_count(1))
    grandchild = int(texts(readings)[0])
    pid = source.stream.process.pid
    await source.close()
    assert source.stream is None
    assert gone(pid)  # reaped by the time close() returns: no zombie left
    assert await wait_gone(grandchild)  # the group was signalled, not just the command


async def test_close_kills_a_command_that_ignores_sigterm(closing):
    script = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "print('stubborn', flush=True); time.sleep(60)")
    source = command(script)
    closing(source)
    await poll_until(source, line_count(1))
    pid = source.stream.process.pid
    started = time.monotonic()
    await source.close()
    assert gone(pid)
    assert time.monotonic() - started >= log_stream.KILL_GRACE * 0.9  # it was given its grace first


async def test_the_engine_is_woken_by_new_lines_long_before_the_interval(tmp_path):
    from backends.engine import Engine
    from helpers import config_for

    script = "import time; time.sleep(0.3); print('woke it', flush=True); time.sleep(60)"
    config = config_for("logs", "command", name="app", command=[sys.executable, "-c", script], refresh="60s",
                        timeout="5s", root={"audit_log": str(tmp_path / "audit.jsonl")})
    engine = Engine(config)
    arrived = asyncio.Event()
    engine.subscribe(lambda update: any(r.lines for r in update.readings) and arrived.set())
    await engine.start()
    try:
        await asyncio.wait_for(arrived.wait(), 10)  # the interval is 60 s: only a wake brings it this soon
        pid = engine.sources["app"].stream.process.pid
    finally:
        await engine.stop()
    assert [line.text for line in engine.readings["app"].lines] == ["woke it"]
    assert gone(pid)  # stopping the engine closed the stream


async def test_a_resumed_command_asks_since_the_newest_line_and_repeats_nothing(tmp_path, closing):
    """kubectl logs -f ends when its pod goes; the restart asks --since-time instead of --tail and skips what
    was shown (kubectl's --since-time includes the line at that time). A script plays kubectl here."""
    calls = tmp_path / "calls"
    script = ("import sys\n"
              f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
              "lines = ['2026-11-22T10:00:01.000000Z one', '2026-11-22T10:00:02.500000Z two']\n"
              "if any(a.startswith('--since-time=') for a in sys.argv):\n"
              "    lines = ['2026-11-22T10:00:02.500000Z two', '2026-11-22T10:00:03.000000Z three']\n"
              "print('\\n'.join(lines), flush=True)\n"
              "sys.exit(1)\n")
    source = source_for("logs", "command", name="pods", command=[sys.executable, "-c", script, "--tail=200", "-f"],
                        resume_since="--since-time")
    closing(source)
    first = await poll_until(source, ended)
    assert texts(first) == ["2026-11-22T10:00:01.000000Z one", "2026-11-22T10:00:02.500000Z two"]
    await poll_once(source)  # the restart
    second = await poll_until(source, ended)
    assert texts(second) == ["2026-11-22T10:00:03.000000Z three"]
    assert calls.read_text().splitlines() == ["--tail=200 -f", "-f --since-time=2026-11-22T10:00:02.500000Z"]
