"""SupervisorProgram against a real supervisord, over HTTP with basic auth and over its unix socket."""

from __future__ import annotations

import asyncio
import re

import pytest
from conftest_supervisor import PASSWORD, USERNAME, free_port
from helpers import source_for

from backends.actions import ActionResult, Tier
from backends.adapters.service_base import PollFailed
from backends.model import CheckReading, State

pytestmark = pytest.mark.integration


def program(url: str, name: str = "web", **options):
    return source_for("services", "supervisor", url=url, program=name, refresh="10s", timeout="5s", **options)


def over_http(server, name: str = "web", **options):
    return program(server.http_url, name, username=USERNAME, password=PASSWORD, **options)


async def poll(source) -> CheckReading:
    [reading] = await source.poll()
    assert "\n" not in reading.reason and reading.kind == "supervisor" and reading.key == source.name
    return reading


async def act(source, action_id: str) -> tuple[ActionResult, list[str]]:
    lines: list[str] = []
    action = next(a for a in source.actions() if a.id == action_id)
    return await source.run(action, lines.append), lines


async def test_running_program_over_http(supervisord):
    source = over_http(supervisord)
    reading = await poll(source)
    assert reading.state is State.OK
    assert re.fullmatch(r"running, pid \d+, up <1m", reading.reason), reading.reason
    details = dict(reading.details)
    assert details["state"] == "RUNNING" and details["stdout log"] == f"{supervisord.dir}/web.out.log"
    assert reading.target == f"web on {supervisord.http_url}"


async def test_credentials_in_the_url_and_never_shown(supervisord):
    source = program(f"http://{USERNAME}:{PASSWORD}@127.0.0.1:{supervisord.port}")  # /RPC2 is implied
    reading = await poll(source)
    assert reading.state is State.OK
    assert reading.target == f"web on http://127.0.0.1:{supervisord.port}/RPC2"


async def test_unix_socket(supervisord):
    reading = await poll(program(supervisord.socket_url))
    assert reading.state is State.OK and reading.reason.startswith("running, pid ")
    assert reading.target == f"web on {supervisord.socket_url}"


async def test_stopped_and_unknown_programs(supervisord):
    reading = await poll(over_http(supervisord, "batch"))
    assert (reading.state, reading.reason) == (State.CRITICAL, "stopped (not started)")
    reading = await poll(over_http(supervisord, "nope"))
    assert (reading.state, reading.reason) == (State.UNKNOWN, "no program nope in supervisord")


async def test_wrong_or_missing_credentials(supervisord):
    reading = await poll(program(supervisord.http_url, username=USERNAME, password="wrong"))
    assert (reading.state, reading.reason) == (State.UNKNOWN, "supervisord refused the credentials")
    reading = await poll(program(supervisord.http_url))
    assert (reading.state, reading.reason) == (
        State.UNKNOWN, "supervisord refused the credentials (none given: set username and password)")


async def test_nothing_listening(tmp_path):
    port = free_port()
    reading = await poll(program(f"http://127.0.0.1:{port}/RPC2"))
    assert (reading.state, reading.reason) == (
        State.CRITICAL, f"connection refused on 127.0.0.1:{port} — is supervisord running?")
    reading = await poll(program(f"unix://{tmp_path}/none.sock"))
    assert (reading.state, reading.reason) == (
        State.CRITICAL, f"no socket at {tmp_path}/none.sock — is supervisord running?")


def test_actions_declared():
    source = program("unix:///run/supervisor.sock")
    actions = {a.id: a for a in source.actions()}
    assert {k: (a.tier, a.expect, a.call) for k, a in actions.items()} == {
        "start": (Tier.DISRUPTIVE, "starting", "supervisor.startProcess('web', True)"),
        "stop": (Tier.DISRUPTIVE, "stopping", "supervisor.stopProcess('web', True)"),
        "restart": (Tier.DISRUPTIVE, "restarting",
                    "supervisor.stopProcess('web', True); supervisor.startProcess('web', True)"),
        "tail": (Tier.READ, "", "supervisor.tailProcessStdoutLog('web', 0, 16384)"),
    }
    assert all(not a.argv and a.request is None and a.target == "t" for a in actions.values())
    assert actions["stop"].describe() == "supervisor.stopProcess('web', True)"


def test_a_bad_url_is_refused_when_built():
    with pytest.raises(ValueError, match="is not http://HOST:PORT/RPC2 nor unix:///path"):
        program("ftp://127.0.0.1/RPC2")


async def test_stop_then_start_seen_by_the_next_poll(supervisord):
    source = over_http(supervisord)
    result, lines = await act(source, "stop")
    assert result.ok and lines == ["stopProcess web: ok"]
    reading = await poll(source)
    assert reading.state is State.CRITICAL and reading.reason.startswith("stopped at ")

    result, lines = await act(source, "stop")  # already stopped: reported, not hidden
    assert not result.ok and result.error == "web was not running: nothing to stop"
    assert lines == ["stopProcess web: NOT_RUNNING: web"]

    result, lines = await act(source, "start")
    assert result.ok and lines == ["startProcess web: ok"]
    assert (await poll(source)).state is State.OK
    result, _ = await act(source, "start")
    assert not result.ok and result.error == "web is already running"


async def test_restart_over_the_socket_gives_a_new_pid(supervisord):
    source = program(supervisord.socket_url)
    before = dict((await poll(source)).details)["pid"]
    result, lines = await act(source, "restart")
    assert result.ok and lines == ["stopProcess web: ok", "startProcess web: ok"]
    after = await poll(source)
    assert after.state is State.OK and dict(after.details)["pid"] != before


async def test_restart_of_a_stopped_program_just_starts_it(supervisord):
    source = over_http(supervisord, "batch")
    result, lines = await act(source, "restart")
    assert result.ok and lines == ["stopProcess batch: NOT_RUNNING: batch", "startProcess batch: ok"]
    assert (await poll(source)).state is State.OK


async def test_a_program_that_dies_at_start(supervisord):
    source = over_http(supervisord, "crash")
    result, lines = await act(source, "start")
    assert not result.ok and lines == ["startProcess crash: SPAWN_ERROR: crash"]
    assert result.error == "crash did not start: Exited too quickly (process log may have details) — see its log (tail)"
    reading = await poll(source)
    for _ in range(100):  # supervisord moves BACKOFF to FATAL on its next loop turn
        if not reading.reason.startswith("backoff"):
            break
        await asyncio.sleep(0.05)
        reading = await poll(source)
    assert reading.state is State.CRITICAL and reading.reason.startswith("fatal: Exited too quickly")


async def test_tail_action_and_method(supervisord):
    source = program(supervisord.socket_url)
    result, lines = await act(source, "tail")
    assert result.ok and lines and lines[0] == "web line 0"
    assert all(re.fullmatch(r"web line \d+", line) for line in lines)
    text, offset, overflow = await source.tail("stdout", 0, 1024)
    assert text.startswith("web line 0\n") and offset == len(text.encode()) and not overflow
    more, next_offset, _ = await source.tail("stdout", offset, 1024)
    assert next_offset == offset + len(more.encode())
    err, _, _ = await source.tail("stderr")
    assert err == ""


async def test_tail_of_a_program_never_started_and_of_an_unknown_one(supervisord):
    source = over_http(supervisord, "batch")
    assert await source.tail() == ("", 0, False)
    result, lines = await act(source, "tail")
    assert result.ok and lines == []
    with pytest.raises(PollFailed, match="^no program nope in supervisord$"):
        await over_http(supervisord, "nope").tail()
