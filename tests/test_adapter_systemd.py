"""SystemdUnit against recorded ``systemctl show`` output.

systemd cannot run on this machine (PID 1 is not systemd), so these tests put a stand-in executable named
``systemctl`` (and ``sudo``) first on PATH: it prints an output recorded in the exact format systemctl prints
(tests/fixtures/systemd/) and logs its argument list, so the exact argv of the poll and of every action is
asserted. One test runs the real systemctl, when installed, to prove its "no systemd here" answer is read.
"""

from __future__ import annotations

import os
import shutil

import pytest
from helpers import source_for
from stand_ins import fixture_text

from backends.actions import Tier
from backends.adapters.systemd import SUDO_PASSWORD_ERROR
from backends.model import CheckReading, State

SHOW = "--property=LoadState,ActiveState,SubState,MainPID,ExecMainStartTimestamp,NRestarts,Result,Description"


def unit(**options):
    options.setdefault("unit", "trino.service")
    return source_for("services", "systemd", refresh="10s", timeout="5s", **options)


async def poll(source) -> CheckReading:
    [reading] = await source.poll()
    assert "\n" not in reading.reason and reading.key == source.name and reading.kind == "systemd"
    return reading


@pytest.mark.parametrize("fixture, state, reason", [
    ("running.txt", State.OK, "active (running), pid 1234 since Sat 2026-11-21 10:00:00 UTC, 0 restarts"),
    ("oneshot-exited.txt", State.OK, "active (exited) since Sat 2026-11-21 03:00:02 UTC"),
    ("failed.txt", State.CRITICAL, "failed (Result=exit-code) — see journalctl -u trino.service"),
    ("inactive.txt", State.CRITICAL, "inactive (dead)"),
    ("activating.txt", State.WARN,
     "activating (auto-restart), 3 restarts (Result=exit-code) — see journalctl -u trino.service"),
    ("reloading.txt", State.WARN, "reloading (reload)"),
    ("not-found.txt", State.UNKNOWN,
     "unit trino.service not found (system units) — check the name with systemctl list-unit-files"),
])
async def test_recorded_states(stand_ins, fixture, state, reason):
    stand_ins.add("systemctl", fixture_text("systemd", fixture))
    reading = await poll(unit())
    assert (reading.state, reading.reason) == (state, reason)
    assert reading.target == "trino.service"
    assert stand_ins.calls("systemctl") == [["systemctl", "show", "trino.service", SHOW]]


async def test_details_of_a_running_unit(stand_ins):
    stand_ins.add("systemctl", fixture_text("systemd", "running.txt"))
    details = dict((await poll(unit())).details)
    assert details == {"state": "active/running", "pid": "1234", "since": "Sat 2026-11-21 10:00:00 UTC",
                       "restarts": "0", "result": "success", "load": "loaded", "description": "Trino coordinator"}


async def test_user_unit_polls_with_user_flag_and_points_at_the_user_journal(stand_ins):
    stand_ins.add("systemctl", fixture_text("systemd", "failed.txt"))
    reading = await poll(unit(user=True))
    assert reading.reason == "failed (Result=exit-code) — see journalctl --user -u trino.service"
    assert reading.target == "trino.service (user)"
    assert stand_ins.calls("systemctl") == [["systemctl", "--user", "show", "trino.service", SHOW]]


async def test_no_systemd_here(stand_ins):
    stand_ins.add("systemctl", stderr=fixture_text("systemd", "no-systemd.stderr"), code=1)
    reading = await poll(unit())
    assert reading.state is State.UNKNOWN
    assert reading.reason == "systemctl: System has not been booted with systemd (no systemd here)"


@pytest.mark.skipif(shutil.which("systemctl") is None, reason="systemctl is not installed here")
async def test_real_systemctl_without_systemd_says_so():
    if os.path.exists("/run/systemd/system"):
        pytest.skip("this machine runs systemd: the no-systemd answer cannot be seen")
    reading = await poll(unit())
    assert (reading.state, reading.reason) == (
        State.UNKNOWN, "systemctl: System has not been booted with systemd (no systemd here)")


async def test_user_bus_missing(stand_ins):
    stand_ins.add("systemctl", stderr=fixture_text("systemd", "no-user-bus.stderr"), code=1)
    reading = await poll(unit(user=True))
    assert reading.state is State.UNKNOWN
    assert reading.reason.startswith("systemctl --user cannot reach the user's systemd "
                                     "(Failed to connect to bus: No medium found)")


async def test_other_failure(stand_ins):
    stand_ins.add("systemctl", stderr="Unit name trino is not valid.\n", code=1)
    reading = await poll(unit())
    assert reading.reason == "systemctl show failed: Unit name trino is not valid. (exit 1)"


async def test_systemctl_not_installed(only_stand_ins):
    reading = await poll(unit())
    assert (reading.state, reading.reason) == (State.UNKNOWN, "systemctl is not installed here")


async def test_hung_systemctl_is_killed(stand_ins):
    stand_ins.add("systemctl", sleep=60)
    source = source_for("services", "systemd", unit="trino.service", refresh="2s", timeout="500ms")
    reading = await poll(source)
    assert (reading.state, reading.reason) == (State.UNKNOWN, "systemctl show gave no answer within 450ms; killed")


@pytest.mark.parametrize("options, prefix", [
    ({}, ["systemctl"]),
    ({"user": True}, ["systemctl", "--user"]),
    ({"sudo": True}, ["sudo", "-n", "systemctl"]),
    ({"sudo": True, "user": True}, ["sudo", "-n", "systemctl", "--user"]),
])
def test_actions_exact_argv(options, prefix):
    actions = {a.id: a for a in unit(**options).actions()}
    assert list(actions) == ["start", "stop", "restart", "reload"]
    for verb, expect in (("start", "starting"), ("stop", "stopping"), ("restart", "restarting"),
                         ("reload", "reloading")):
        action = actions[verb]
        assert list(action.argv) == [*prefix, verb, "trino.service"]
        assert (action.tier, action.expect, action.timeout, action.target) == (Tier.DISRUPTIVE, expect, 60.0, "t")


async def test_restart_runs_systemctl(stand_ins):
    stand_ins.add("systemctl")
    source = unit(user=True)
    restart = next(a for a in source.actions() if a.id == "restart")
    lines: list[str] = []
    result = await source.run(restart, lines.append)
    assert result.ok and result.exit_code == 0
    assert stand_ins.calls("systemctl") == [["systemctl", "--user", "restart", "trino.service"]]


async def test_sudo_wanting_a_password_is_a_clear_error(stand_ins):
    stand_ins.add("sudo", stderr="sudo: a password is required\n", code=1)
    source = unit(sudo=True)
    stop = next(a for a in source.actions() if a.id == "stop")
    lines: list[str] = []
    result = await source.run(stop, lines.append)
    assert not result.ok and result.exit_code == 1
    assert result.error == SUDO_PASSWORD_ERROR == ("sudo needs a password here: allow it with NOPASSWD for "
                                                   "systemctl, or run lakedeck as that user")
    assert lines == ["sudo: a password is required", SUDO_PASSWORD_ERROR]
    assert result.summary == f"Stop t failed: {SUDO_PASSWORD_ERROR}"
    assert stand_ins.calls("sudo") == [["sudo", "-n", "systemctl", "stop", "trino.service"]]
