"""`lakedeck logs`: the configured logs merged by time, filtered, printed safely; the real command on real files."""

from __future__ import annotations

import select
import subprocess
import time

from test_cli import LAKEDECK, run


def config_for(tmp_path) -> str:
    (tmp_path / "api.log").write_text("2026-11-22T10:00:01Z INFO api up\n2026-11-22T10:00:03Z ERROR api \x1b[2J boom\n")
    (tmp_path / "db.log").write_text("2026-11-22T10:00:02Z WARN db slow\n2026-11-22T10:00:04Z INFO db ok\n")
    path = tmp_path / "lakedeck.yaml"
    path.write_text("logs:\n"
                    f"  - {{name: api, path: {tmp_path / 'api.log'}}}\n"
                    f"  - {{name: db, path: {tmp_path / 'db.log'}}}\n"
                    "  - {name: cmd, kind: command, command: [sh, -c, 'echo 2026-11-22T10:00:05Z INFO from cmd; sleep 30']}\n")
    return str(path)


def test_logs_merge_every_log_by_time_with_their_names(tmp_path):
    out = run("logs", "-c", config_for(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "api\t2026-11-22T10:00:01Z INFO api up",
        "db\t2026-11-22T10:00:02Z WARN db slow",
        "api\t2026-11-22T10:00:03Z ERROR api ␛[2J boom",  # never an escape sequence on the terminal
        "db\t2026-11-22T10:00:04Z INFO db ok",
        "cmd\t2026-11-22T10:00:05Z INFO from cmd",
    ]


def test_logs_by_name_with_a_filter_and_a_count(tmp_path):
    config = config_for(tmp_path)
    assert run("logs", "-c", config, "db", "--grep", "!slow").stdout == "2026-11-22T10:00:04Z INFO db ok\n"
    assert run("logs", "-c", config, "-n", "1", "api", "db").stdout == "db\t2026-11-22T10:00:04Z INFO db ok\n"


def test_an_unknown_log_name_is_one_line_and_exit_2(tmp_path):
    out = run("logs", "-c", config_for(tmp_path), "nope")
    assert out.returncode == 2
    assert out.stderr.splitlines() == ["lakedeck logs: no log named 'nope' (the logs are: api, db, cmd)"]


def test_follow_prints_lines_as_they_are_appended(tmp_path):
    config = config_for(tmp_path)
    with subprocess.Popen([*LAKEDECK, "logs", "-c", config, "-f", "-n", "0", "db"], stdout=subprocess.PIPE,
                          text=True, cwd=tmp_path) as process:
        try:
            time.sleep(1.5)
            with open(tmp_path / "db.log", "a") as handle:
                handle.write("2026-11-22T10:00:09Z ERROR db appended\n")
            ready, _, _ = select.select([process.stdout], [], [], 10)
            assert ready, "nothing printed within 10 s"
            assert process.stdout.readline() == "2026-11-22T10:00:09Z ERROR db appended\n"
        finally:
            process.terminate()
