"""ComposeService against recorded ``docker compose ps --format json`` output.

There is no Docker engine here, so a stand-in executable named ``docker`` (and ``docker-compose`` for v1) is
put first on PATH: it prints output recorded with the real field names (tests/fixtures/compose/: Name,
Service, State, Health, Status, ExitCode, Publishers...), in both shapes compose v2 has used (a JSON array
before 2.21, one object per line since), plus the v1 table and the real error messages of this machine's
docker client, and logs its argument list, so the exact argv of the poll and of every action is asserted.
"""

from __future__ import annotations

import pytest
from helpers import source_for
from stand_ins import fixture_text

from backends.actions import Tier
from backends.model import CheckReading, State

FILE = "/srv/shop/compose.yaml"
PS = ["docker", "compose", "-f", FILE, "ps", "--all", "--format", "json", "web"]


def service(**options):
    options.setdefault("file", FILE)
    options.setdefault("service", "web")
    return source_for("services", "compose", refresh="10s", timeout="5s", **options)


def docker(stand_ins, ps_output: str = "", **reply) -> None:
    stand_ins.add("docker", fixture_text("compose", "version.txt"), when=("compose", "version"))
    stand_ins.add("docker", ps_output, when=("compose", "ps"), **reply)


async def poll(source) -> CheckReading:
    [reading] = await source.poll()
    assert "\n" not in reading.reason and reading.kind == "compose" and reading.key == source.name
    return reading


@pytest.mark.parametrize("fixture, state, reason", [
    ("ps-lines.json", State.OK, "2/2 running"),
    ("ps-array.json", State.WARN, "1/2 running; shop-web-2 exited (1) 5 minutes ago"),
    ("ps-array-exited-no-status.json", State.CRITICAL, "exited (137)"),
    ("ps-exited.json", State.CRITICAL, "exited (1) 5 minutes ago"),
    ("ps-restarting.json", State.CRITICAL, "restarting (1) 12 seconds ago"),
    ("ps-unhealthy.json", State.CRITICAL, "1/1 running, 1 unhealthy: shop-web-1"),
])
async def test_recorded_states(stand_ins, fixture, state, reason):
    docker(stand_ins, fixture_text("compose", fixture))
    reading = await poll(service())
    assert (reading.state, reading.reason) == (state, reason)
    assert reading.target == f"web in {FILE}"
    assert stand_ins.calls("docker") == [["docker", "compose", "version"], PS]


async def test_details_and_the_cli_is_probed_once(stand_ins):
    docker(stand_ins, fixture_text("compose", "ps-lines.json"))
    source = service(project="shop")
    await poll(source)
    details = dict((await poll(source)).details)
    assert details == {"containers": "shop-web-1 up 2 hours (healthy), shop-web-2 up 2 hours (healthy)",
                       "ports": "0.0.0.0:8080->80/tcp, :::8080->80/tcp", "project": "shop",
                       "compose": "docker compose"}
    ps = ["docker", "compose", "-f", FILE, "-p", "shop", "ps", "--all", "--format", "json", "web"]
    assert stand_ins.calls("docker") == [["docker", "compose", "version"], ps, ps]


async def test_no_container_yet(stand_ins):
    docker(stand_ins, "")
    reading = await poll(service())
    assert (reading.state, reading.reason) == (State.CRITICAL, "no container for web — not created yet (use up -d)")
    stand_ins.add("docker", "[]\n", when=("compose", "ps"))
    assert (await poll(service())).state is State.CRITICAL


async def test_no_engine_and_bad_json(stand_ins):
    docker(stand_ins, stderr=fixture_text("compose", "no-engine.stderr"), code=1)
    reading = await poll(service())
    assert (reading.state, reading.reason) == (
        State.UNKNOWN, ("docker compose ps failed: Cannot connect to the Docker daemon at "
                       "unix:///var/run/docker.sock. Is the docker daemon running?"))
    docker(stand_ins, "NAME  IMAGE  STATUS\n")
    reading = await poll(service())
    assert (reading.state, reading.reason) == (
        State.UNKNOWN, "docker compose ps printed something that is not JSON: 'NAME IMAGE STATUS'")  # blanks folded


async def test_falls_back_to_docker_compose_v1(stand_ins):
    stand_ins.add("docker", stderr=fixture_text("compose", "no-plugin.stderr"), code=1)
    stand_ins.add("docker-compose", fixture_text("compose", "version-v1.txt"), when=("version",))
    stand_ins.add("docker-compose", fixture_text("compose", "ps-v1.txt"), when=("ps",))
    source = service(project="shop")
    reading = await poll(source)
    assert (reading.state, reading.reason) == (State.WARN, "1/2 running; shop_web_2 exited (137)")
    assert dict(reading.details)["ports"] == "0.0.0.0:8080->80/tcp,:::8080->80/tcp"
    assert stand_ins.calls("docker") == [["docker", "compose", "version"]]
    assert stand_ins.calls("docker-compose") == [["docker-compose", "version"],
                                                 ["docker-compose", "-f", FILE, "-p", "shop", "ps", "web"]]
    restart = next(a for a in source.actions() if a.id == "restart")
    assert list(restart.argv) == ["docker-compose", "-f", FILE, "-p", "shop", "restart", "web"]


async def test_no_compose_at_all(only_stand_ins):
    reading = await poll(service())
    assert (reading.state, reading.reason) == (State.UNKNOWN, "docker is not installed here")
    only_stand_ins.add("docker", stderr=fixture_text("compose", "no-plugin.stderr"), code=1)
    reading = await poll(service())
    assert (reading.state, reading.reason) == (
        State.UNKNOWN, ("docker compose is not available here: the docker client has no compose plugin and "
                       "docker-compose is not installed"))


async def test_actions_exact_argv(stand_ins):
    source = service(project="shop")
    prefix = ["docker", "compose", "-f", FILE, "-p", "shop"]
    assert [a.id for a in source.actions()] == ["start", "stop", "restart", "up"]  # no count to scale from yet
    docker(stand_ins, fixture_text("compose", "ps-lines.json"))
    await poll(source)
    actions = {a.id: a for a in source.actions()}
    expected = {
        "start": (["start", "web"], "starting"),
        "stop": (["stop", "web"], "stopping"),
        "restart": (["restart", "web"], "restarting"),
        "up": (["up", "-d", "web"], "starting"),
        "scale-up": (["up", "-d", "--no-recreate", "--scale", "web=3", "web"], "scaling"),
        "scale-down": (["up", "-d", "--no-recreate", "--scale", "web=1", "web"], "scaling"),
    }
    assert list(actions) == list(expected)
    for action_id, (args, expect) in expected.items():
        action = actions[action_id]
        assert list(action.argv) == prefix + args
        assert (action.tier, action.expect, action.timeout, action.target) == (Tier.DISRUPTIVE, expect, 60.0, "t")


async def test_no_scale_down_when_nothing_runs(stand_ins):
    docker(stand_ins, fixture_text("compose", "ps-exited.json"))
    source = service()
    await poll(source)
    actions = {a.id: a for a in source.actions()}
    assert "scale-down" not in actions
    assert list(actions["scale-up"].argv) == ["docker", "compose", "-f", FILE, "up", "-d", "--no-recreate",
                                              "--scale", "web=1", "web"]


async def test_restart_runs_docker_compose(stand_ins):
    docker(stand_ins, fixture_text("compose", "ps-lines.json"))
    stand_ins.add("docker", stderr=" Container shop-web-1  Restarting\n Container shop-web-1  Started\n",
                  when=("compose", "restart"))
    source = service()
    lines: list[str] = []
    result = await source.run(next(a for a in source.actions() if a.id == "restart"), lines.append)
    assert result.ok and lines == [" Container shop-web-1  Restarting", " Container shop-web-1  Started"]
    assert stand_ins.calls("docker") == [["docker", "compose", "-f", FILE, "restart", "web"]]
