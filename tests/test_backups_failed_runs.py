"""A failed backup leaves nothing half-made and says so (issue 13, item 5): its ``.partial-*`` directory is
removed, the row says ``last run failed: <why>`` (WARN, CRITICAL once the RPO has passed), the failure is
kept on disk in DEST/JOB/last-run.json so a restarted console and `lakedeck check` say it too, and the next
run that succeeds clears it."""

from __future__ import annotations

import json
import sys

from test_backups import Clock, act, config_file, engine_for, lakedeck, list_sets, reading

from backends.backup_sets import LAST_RUN, PARTIAL_PREFIX
from backends.model import State

FLAKY = ("import os, sys; d = sys.argv[1]; "
         "fail = os.path.exists(sys.argv[2]); print('disk quota exceeded' if fail else 'ok'); "
         "open(os.path.join(d, 'out'), 'w').write('x' * 100); sys.exit(3 if fail else 0)")


def leftovers(tmp_path) -> list[str]:
    job = tmp_path / "dest" / "job"
    return sorted(p.name for p in job.iterdir() if p.name.startswith(PARTIAL_PREFIX)) if job.exists() else []


async def test_paths_that_do_not_exist_leave_no_partial_directory_and_the_row_says_why(tmp_path):
    missing = tmp_path / "srv" / "warehouse"
    engine = engine_for(tmp_path, "files", paths=[str(missing)])
    result, _, _ = await act(engine, "run")
    assert not result.ok and result.error == f"{missing} does not exist"
    assert leftovers(tmp_path) == [] and list_sets(tmp_path / "dest" / "job").sets == ()
    now = await reading(engine)
    assert now.state is State.CRITICAL and now.reason.startswith(f"last run failed: {missing} does not exist · ")
    assert "unfinished" not in now.reason

    missing.mkdir(parents=True)
    (missing / "a.txt").write_text("a")
    assert (await act(engine, "run"))[0].ok
    now = await reading(engine)
    assert now.state is State.OK and "failed" not in now.reason
    assert not (tmp_path / "dest" / "job" / LAST_RUN).exists()


async def test_a_failed_run_warns_then_is_critical_past_the_rpo_and_survives_a_restart(tmp_path):
    flag = tmp_path / "fail-now"
    options = {"command": [sys.executable, "-c", FLAKY, "{dir}", str(flag)], "rpo": "1h"}
    clock = Clock()
    engine = engine_for(tmp_path, "command", clock, **options)
    assert (await act(engine, "run"))[0].ok
    clock.now += 600
    flag.touch()
    result, _, _ = await act(engine, "run")
    assert not result.ok and "exited 3: disk quota exceeded" in result.error
    assert leftovers(tmp_path) == [] and len(list_sets(tmp_path / "dest" / "job").sets) == 1

    now = await reading(engine)
    assert now.state is State.WARN  # the last good set is 10 minutes old: within the RPO
    assert now.reason.startswith("last run failed: python")
    assert "exited 3: disk quota exceeded · last good 10m00s ago (rpo 1h00m)" in now.reason
    record = json.loads((tmp_path / "dest" / "job" / LAST_RUN).read_text())
    assert record["result"].startswith("failed: ") and record["at"] == clock.now

    restarted = engine_for(tmp_path, "command", clock, **options)  # a new console: only the disk remembers
    assert (await reading(restarted)).state is State.WARN
    clock.now += 3600
    now = await reading(restarted)
    assert now.state is State.CRITICAL and "last run failed" in now.reason  # past the RPO, below twice it

    done = lakedeck(config_file(tmp_path, "command", **options), "check", "--json")
    (row,) = json.loads(done.stdout)["readings"]
    assert done.returncode == 2 and row["state"] == "CRITICAL" and row["reason"].startswith("last run failed: ")

    flag.unlink()
    assert (await act(restarted, "run"))[0].ok
    now = await reading(restarted)
    assert now.state is State.OK and "last run failed" not in now.reason


async def test_a_run_that_failed_before_the_last_good_set_is_not_reported(tmp_path):
    """A record older than the newest set (left by a process that could not clear it) says nothing."""
    flag = tmp_path / "fail-now"
    clock = Clock()
    engine = engine_for(tmp_path, "command", clock, command=[sys.executable, "-c", FLAKY, "{dir}", str(flag)])
    (tmp_path / "dest" / "job").mkdir(parents=True)
    (tmp_path / "dest" / "job" / LAST_RUN).write_text(json.dumps({"result": "failed: old news", "at": clock.now - 60}))
    assert (await act(engine, "run"))[0].ok
    (tmp_path / "dest" / "job" / LAST_RUN).write_text(json.dumps({"result": "failed: old news", "at": clock.now - 60}))
    now = await reading(engine)
    assert now.state is State.OK and "old news" not in now.reason
