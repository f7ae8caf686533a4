"""The ``journald`` log kind, through a stand-in ``journalctl`` that prints recorded ``journalctl -o json`` output.

There is no systemd here. The stand-in (tests/stand_ins.py) logs its argument list and prints entries
recorded by the elastic/beats developers (filebeat/input/journald/pkg/journalctl/testdata/, see
tests/fixtures/journald/README.md): a systemd-coredump entry with a multi-line MESSAGE, a pulseaudio entry
whose MESSAGE journalctl wrote as a list of byte values, and a plain one. It then keeps running, as
``journalctl -f`` does, until the source closes it.
"""

from __future__ import annotations

import pytest
from helpers import source_for
from log_polling import ended, line_count, poll_once, poll_until, texts
from stand_ins import fixture_text

from backends.model import State

ARGV = ["journalctl", "-f", "-o", "json", "-u", "trino.service"]
PULSE_CURSOR = ("s=e82795fad4ce42b79fb3da0866d91f7e;i=4b454d;b=62c460d8931346bf85d24dfe22d2d2fb;m=39c3b04e4;"
                "t=61c33f69f4665;x=8dd4baba5585d42b")


@pytest.fixture
async def journal():
    made = []

    def make(**options):
        options.setdefault("unit", "trino.service")
        source = source_for("logs", "journald", name="trino", refresh="10s", timeout="5s", **options)
        made.append(source)
        return source

    yield make
    for source in made:
        await source.close()


async def test_backlog_entries_with_their_time_level_and_binary_message(stand_ins, journal):
    stand_ins.add("journalctl", fixture_text("journald", "backlog.jsonl"), when=("-n",), sleep=60)
    source = journal(lines=50)
    readings = await poll_until(source, lambda rs: any("AT+BIA" in t for t in texts(rs)))
    assert stand_ins.calls("journalctl") == [[*ARGV, "-n", "50"]]
    lines = [line for reading in readings for line in reading.lines]
    coredump, pulse = lines[:-1], lines[-1]
    # the coredump's MESSAGE is one entry of many lines: each keeps the entry's time and PRIORITY 2
    assert coredump[0].text == "Process 3717 (kdeconnectd) of user 1000 dumped core."
    assert coredump[1].text == "" and coredump[2].text == "Stack trace of thread 3717:"
    assert coredump[-1].text == "ELF object binary architecture: AMD x86-64"  # the trailing newline adds no line
    assert len(coredump) == 30  # 14 frames of one thread, 10 of the other, their headings, blank lines
    assert {line.ts for line in coredump} == {1719834246.841951}
    assert {line.level for line in coredump} == {"critical"}
    # MESSAGE as byte values (it holds a carriage return): decoded, kept raw for the view to show
    assert pulse.text == "Unable to parse indicator of AT+BIA command: AT+BIA=1,1,0,0,0\rAT+BCS=2"
    assert (pulse.ts, pulse.level) == (1719859366.807141, "error")
    assert source.cursor == PULSE_CURSOR
    assert readings[-1].state is State.OK


async def test_a_restart_resumes_after_the_last_cursor(stand_ins, journal):
    stand_ins.add("journalctl", fixture_text("journald", "backlog.jsonl"), when=("-n",),
                  stderr="Error was encountered while opening journal files: Input/output error\n", code=1)
    stand_ins.add("journalctl", fixture_text("journald", "after-cursor.jsonl"), when=("--after-cursor",), sleep=60)
    source = journal()
    readings = await poll_until(source, ended)
    assert readings[-1].reason == ("journalctl exited with status 1: Error was encountered while opening journal "
                                   "files: Input/output error")
    restarted = await poll_once(source)
    assert restarted.state is State.UNKNOWN and restarted.reason.startswith("restarted journalctl; it exited")
    after = await poll_until(source, line_count(1))
    assert stand_ins.calls("journalctl") == [[*ARGV, "-n", "200"], [*ARGV, "--after-cursor", PULSE_CURSOR]]
    [line] = [line for reading in after for line in reading.lines]
    assert (line.text, line.ts, line.level) == ("Count: 0000000001", 1724080855.230058, "info")
    assert after[-1].state is State.OK and after[-1].reason == "following, 1 new line"


async def test_user_units_and_other_lines(stand_ins, journal):
    stand_ins.add("journalctl", 'not json at all\n{"MESSAGE":null,"PRIORITY":"4"}\n', sleep=60)
    source = journal(user=True, journalctl="journalctl", lines=0)
    readings = await poll_until(source, line_count(2))
    assert stand_ins.calls("journalctl") == [[*ARGV, "--user", "-n", "0"]]
    lines = [line for reading in readings for line in reading.lines]
    assert lines[0].text == "not json at all"
    assert (lines[1].text, lines[1].level) == ("[message over 4 KiB left out by journalctl -o json]", "warn")
    assert source.describe() == "journalctl --user -u trino.service"


async def test_journalctl_missing(only_stand_ins, journal):
    reading = await poll_once(journal())
    assert (reading.state, reading.reason) == (
        State.UNKNOWN, "cannot run journalctl: not found (install systemd or set journalctl:)")
