"""The ``supervisor`` log kind against a real supervisord (tests/conftest_supervisor.py), over HTTP and a socket."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from conftest_supervisor import PASSWORD, USERNAME
from helpers import source_for
from log_polling import poll_once, poll_until, texts

from backends.model import State

pytestmark = pytest.mark.integration

LINE = re.compile(r"web line (\d+)")


def log_of(server, program: str = "web", **options):
    return source_for("logs", "supervisor", name=f"{program} log", url=server.http_url, program=program,
                      username=USERNAME, password=PASSWORD, refresh="10s", timeout="5s", **options)


def numbers(lines: list[str]) -> list[int]:
    found = [LINE.fullmatch(text) for text in lines]
    assert all(found), lines
    return [int(match.group(1)) for match in found]


async def wait_for_text(path, text: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not (path.exists() and text in path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{path} never held {text!r}"
        await asyncio.sleep(0.05)


async def test_backlog_then_only_new_lines(supervisord):
    await wait_for_text(supervisord.dir / "web.out.log", "web line 3\n")
    source = log_of(supervisord, lines=3)
    first = await poll_once(source)
    backlog = numbers(texts([first]))
    assert len(backlog) == 3 and backlog == list(range(backlog[0], backlog[0] + 3))  # the newest 3, whole lines
    assert first.state is State.OK and first.reason == "following, 3 new lines"
    assert source.hurry()
    readings = await poll_until(source, lambda rs: len(texts(rs)) >= 3)
    later = numbers(texts(readings))
    assert later[:3] == [backlog[-1] + 1, backlog[-1] + 2, backlog[-1] + 3]  # nothing repeated, nothing missed
    assert all(r.state is State.OK for r in readings)
    assert source.describe() == f"stdout of web on {supervisord.http_url}"


async def test_stderr_over_the_unix_socket(supervisord):
    with supervisord.rpc() as rpc:
        rpc.supervisor.startProcess("chatty", True)
    await wait_for_text(supervisord.dir / "chatty.err.log", "on stderr\n")
    source = source_for("logs", "supervisor", name="chatty errors", url=supervisord.socket_url, program="chatty",
                        stream="stderr", refresh="10s", timeout="5s")
    reading = await poll_once(source)
    assert texts([reading]) == ["warning: on stderr"]
    assert reading.lines[0].level == "warn"


async def test_colour_codes_arrive_as_they_were_written(supervisord):
    """supervisord puts ESC into its XML as it is, which XML cannot hold: the client shelters it for the parse."""
    with supervisord.rpc() as rpc:
        rpc.supervisor.startProcess("chatty", True)
    await wait_for_text(supervisord.dir / "chatty.out.log", "naïve\n")
    source = log_of(supervisord, "chatty")
    first = await poll_once(source)
    assert texts([first]) == ["plain line", "café naïve"]
    coloured = await poll_until(source, lambda rs: bool(texts(rs)))
    assert texts(coloured) == ["\x1b[31mred\x1b[0m colour codes"] and coloured[-1].state is State.OK
    after = await poll_until(source, lambda rs: bool(texts(rs)))
    assert texts(after) == ["after the colours"]


async def test_unknown_program_and_wrong_password(supervisord):
    reading = await poll_once(log_of(supervisord, "nope"))
    assert (reading.state, reading.reason) == (State.UNKNOWN, "no program nope in supervisord (check program:)")
    source = source_for("logs", "supervisor", name="web log", url=supervisord.http_url, program="web",
                        username=USERNAME, password="wrong")
    reading = await poll_once(source)
    assert (reading.state, reading.reason) == (State.UNKNOWN, "supervisord refused the credentials")
