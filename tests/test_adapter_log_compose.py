"""The ``compose`` log kind, through a stand-in ``docker`` that prints recorded ``docker compose logs`` output.

There is no Docker engine here. The stand-in (tests/stand_ins.py) logs its argument list and prints
tests/fixtures/compose/logs-timestamps.txt, real ``docker compose logs --timestamps`` output of a Flask app
and Redis recorded by the lnav project (tstack/lnav, test/logfile_docker_compose_with_ts.0), and for v1
logs-v1.txt, ``docker-compose up`` output quoted in a public README (found with a code search that did not
name its repository). ``version.txt``/``version-v1.txt``/``no-plugin.stderr`` are the recorded answers the
service adapter's tests already use.
"""

from __future__ import annotations

import calendar

import pytest
from helpers import source_for
from log_polling import ended, line_count, poll_once, poll_until, texts
from stand_ins import fixture_text

from backends.log_reading import Piece
from backends.model import State

FILE = "/srv/shop/compose.yaml"
LOGS = ["docker", "compose", "-f", FILE, "logs", "-f", "--no-color", "--timestamps"]
RECORDED = fixture_text("compose", "logs-timestamps.txt").splitlines(keepends=True)


def utc(stamp: str, fraction: str) -> float:
    return calendar.timegm(tuple(int(x) for x in stamp.replace("T", "-").replace(":", "-").split("-")) + (0, 0, 0)) \
        + float("0." + fraction)


@pytest.fixture
async def compose_logs():
    made = []

    def make(**options):
        options.setdefault("file", FILE)
        options.setdefault("service", "web")
        source = source_for("logs", "compose", name="shop web", refresh="10s", timeout="5s", **options)
        made.append(source)
        return source

    yield make
    for source in made:
        await source.close()


def docker(stand_ins, logs: str, **reply) -> None:
    stand_ins.add("docker", fixture_text("compose", "version.txt"), when=("compose", "version"))
    stand_ins.add("docker", logs, when=("compose", "logs", "--tail"), **reply)


async def test_container_and_timestamp_come_off_the_text(stand_ins, compose_logs):
    docker(stand_ins, "".join(RECORDED), sleep=60)
    source = compose_logs(project="shop")
    readings = await poll_until(source, line_count(len(RECORDED)))
    assert stand_ins.calls("docker") == [
        ["docker", "compose", "version"],
        ["docker", "compose", "-f", FILE, "-p", "shop", "logs", "-f", "--no-color", "--timestamps", "--tail", "200",
         "web"]]
    lines = [line for reading in readings for line in reading.lines]
    # one container so far: no prefix, the message exactly as written (its leading space too)
    assert lines[0].text == " * Serving Flask app 'app.py'"
    assert lines[0].ts == pytest.approx(utc("2024-04-25T05:32:35", "584725130"), abs=1e-6)
    assert (lines[2].text[:8], lines[2].level) == ("WARNING:", "warn")
    # a second container: from then on each line says which one wrote it
    assert lines[10].text == "redis-1 | 1:C 25 Apr 2024 05:32:35.018 * oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo"
    assert lines[10].ts == pytest.approx(utc("2024-04-25T05:32:35", "019558005"), abs=1e-6)
    assert lines[-1].text == "redis-1 | 1:M 25 Apr 2024 05:54:43.948 # Redis is now ready to exit, bye bye..."
    assert source.last_stamp == "2024-04-25T05:54:43.948541926Z"
    assert source.describe() == f"logs of web in {FILE}"


async def test_a_restart_resumes_since_the_last_stamp_without_repeating_lines(stand_ins, compose_logs):
    docker(stand_ins, "".join(RECORDED[:20]), stderr="Error response from daemon: EOF\n", code=1)
    # --since is inclusive: Docker sends the last line seen again, then what came after it
    stand_ins.add("docker", "".join(RECORDED[19:]), when=("compose", "logs", "--since", "--tail"), sleep=60)
    source = compose_logs()
    first = await poll_until(source, ended)
    assert len(texts(first)) == 20
    assert first[-1].reason == "docker compose exited with status 1: Error response from daemon: EOF"
    restarted = await poll_once(source)
    assert restarted.reason == "restarted docker compose; it exited with status 1: Error response from daemon: EOF"
    after = await poll_until(source, line_count(2))
    assert stand_ins.calls("docker")[-1] == [*LOGS, "--since", "2024-04-25T05:54:43.946283801Z", "--tail", "all",
                                             "web"]
    assert texts(after) == ["redis-1 | 1:M 25 Apr 2024 05:54:43.948 * DB saved on disk",
                            "redis-1 | 1:M 25 Apr 2024 05:54:43.948 # Redis is now ready to exit, bye bye..."]


def test_lines_sharing_a_stamp_are_skipped_only_as_often_as_they_were_seen(compose_logs):
    """Synthetic lines (not recorded): two lines with one stamp, then a restart that sends both and a third."""
    source = compose_logs()

    def read(*raw: str) -> list[str]:
        return [line.text for text in raw for line in source.to_lines(Piece(text.encode(), -1), 0.0)]

    same = "web-1  | 2024-04-25T05:32:35.600000000Z"
    assert read(f"{same} a", f"{same} b") == ["a", "b"]
    source.started()  # a restart with --since that stamp
    assert read(f"{same} a", f"{same} b", f"{same} c", "web-1  | 2024-04-25T05:32:35.7Z d") == ["c", "d"]


async def test_falls_back_to_docker_compose_v1(stand_ins, compose_logs):
    stand_ins.add("docker", stderr=fixture_text("compose", "no-plugin.stderr"), code=1)
    stand_ins.add("docker-compose", fixture_text("compose", "version-v1.txt"), when=("version",))
    stand_ins.add("docker-compose", fixture_text("compose", "logs-v1.txt"), when=("logs",), sleep=60)
    source = compose_logs(service="redis", lines=10)
    readings = await poll_until(source, line_count(4))
    assert stand_ins.calls("docker-compose")[-1] == [
        "docker-compose", "-f", FILE, "logs", "-f", "--no-color", "--timestamps", "--tail", "10", "redis"]
    lines = [line for reading in readings for line in reading.lines]
    assert lines[0].text.startswith("1:M 26 Feb 04:55:05.037 # WARNING: The TCP backlog setting of 511")
    assert lines[2].text.startswith("mongodb_1 | 2017-02-26T04:59:31.807+0000 I STORAGE")
    assert lines[2].ts == calendar.timegm((2017, 2, 26, 4, 59, 31, 0, 0, 0)) + 0.807  # the line's own time
    assert readings[0].reason == "started docker-compose, following"


async def test_no_docker_at_all(only_stand_ins, compose_logs):
    reading = await poll_once(compose_logs())
    assert (reading.state, reading.reason) == (State.UNKNOWN, "docker is not installed here")
