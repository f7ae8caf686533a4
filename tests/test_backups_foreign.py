"""What is under DEST/JOB is evidence, not truth (issue 13, item 1): only a directory named for a real UTC time
not in the future is a set; anything else is foreign, listed and never counted, kept, deleted or restored. A
prune counts only sets it found undamaged itself, and deletes exactly what its preview listed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from test_backups import DAY, Clock, act, config_file, engine_for, lakedeck, make_sets, reading, tree

from backends.backup_prune import prune_plan, protected
from backends.backup_sets import FUTURE_SKEW, FORMAT, LAST_RUN, MANIFEST, list_sets, set_name
from backends.model import BackupSet, State


def digest_tree(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def plant_copy(job: Path, of: str, name: str, same_size: bool = False) -> str:
    """A copy of set ``of`` under ``name``, its archive overwritten with garbage; the copy's digest."""
    shutil.copytree(job / of, job / name)
    archive = job / name / "files.tar.gz"
    archive.write_bytes(os.urandom(archive.stat().st_size if same_size else 5000))
    return digest_tree(job / name)


async def test_the_issue_case_planted_bad_and_future_names_are_foreign_and_the_real_sets_stay(tmp_path):
    """keep_last 2, three runs, copies of the newest set at 20991231T235959Z and 99999999T999999Z with garbage
    archives: verify takes the real newest, prune deletes only the oldest real set, the planted ones are
    untouched and reported foreign, restore of the newest works, and check's last good is the real newest."""
    tree(tmp_path / "src")
    clock = Clock()
    options = {"paths": [str(tmp_path / "src")], "keep_last": 2}
    engine = engine_for(tmp_path, "files", clock, **options)
    config = config_file(tmp_path, "files", **options)
    names = await make_sets(engine, clock, 3)  # newest first
    job = tmp_path / "dest" / "job"
    planted = {name: plant_copy(job, names[0], name) for name in ("20991231T235959Z", "99999999T999999Z")}

    await engine.sources["job"].poll()
    assert engine.find_action("job", "verify").ref == (names[0],)
    done = lakedeck(config, "action", "job", "verify")
    assert done.returncode == 0, done.stderr
    assert f"set {names[0]} verified" in done.stdout

    done = lakedeck(config, "action", "job", "prune", "--yes")
    assert done.returncode == 0, done.stderr
    affected = done.stdout.split("it would affect:")[1]
    assert f"delete set {names[2]}" in affected
    assert "left alone: 2 foreign entries (20991231T235959Z, 99999999T999999Z)" in affected
    assert not any(f"delete set {name}" in affected for name in (*planted, names[0], names[1]))

    listing = list_sets(job)
    assert [s.name for s in listing.sets] == names[:2]
    assert {f.name: f.why for f in listing.foreign} == {"20991231T235959Z": "in the future",
                                                          "99999999T999999Z": "not a set name"}
    assert {name: digest_tree(job / name) for name in planted} == planted  # untouched

    now = await reading(engine)
    assert now.state is State.WARN and "2 foreign entries in DEST" in now.reason
    assert [s.name for s in now.sets] == names[:2] and now.last_good == listing.sets[0].finished
    drill = await engine.sources["job"].open(())
    foreign = {i.name: (i.status, i.note) for i in drill.items if i.ref[0] == "foreign"}
    assert foreign == {"20991231T235959Z": ("foreign", "in the future: not a set, never pruned or restored"),
                       "99999999T999999Z": ("foreign", "not a set name: not a set, never pruned or restored")}
    assert engine.sources["job"].item_actions(next(i for i in drill.items if i.ref[0] == "foreign")) == []

    done = lakedeck(config, "action", "job", "restore", "--value", str(tmp_path / "back"), "--yes")
    assert done.returncode == 0, done.stderr
    assert f"restore set {names[0]}" in done.stdout
    assert (tmp_path / "back" / "src" / "keep.txt").read_text() == "keep me"

    done = lakedeck(config, "check", "--json")
    (row,) = json.loads(done.stdout)["readings"]
    assert done.returncode == 1 and row["state"] == "WARN"
    assert row["reason"].startswith("last good ") and "2 sets" in row["reason"] and "newest verified" in row["reason"]
    assert "2 foreign entries in DEST" in row["reason"]


@pytest.mark.parametrize("same_size", [True, False], ids=["garbage-of-the-same-size", "garbage-of-another-size"])
async def test_a_damaged_set_with_a_good_name_is_not_counted_and_the_plan_is_made_again(tmp_path, same_size):
    """A planted copy named like the newest set (a real, past time) with a garbage archive: the action's
    first plan counts it; the prune's own check (sizes, then a re-hash of each set it keeps) finds it,
    records it as a failed verify, refuses to delete anything, and the next plan keeps two good sets."""
    tree(tmp_path / "src")
    clock = Clock()
    engine = engine_for(tmp_path, "files", clock, paths=[str(tmp_path / "src")], keep_last=2)
    names = await make_sets(engine, clock, 3)
    job = tmp_path / "dest" / "job"
    fake = set_name(clock.now - 60)
    plant_copy(job, names[0], fake, same_size=same_size)
    source = engine.sources["job"]

    await source.poll()
    action = engine.find_action("job", "prune")
    assert action.ref == ("plan", names[2], names[1])  # what the listing alone suggests
    preview = await source.preview(action)
    why = "sha256 mismatch in files.tar.gz" if same_size else "size mismatch in files.tar.gz"
    assert any(line.startswith(f"set {fake} is damaged ({why}") for line in preview)
    assert preview[-1] == "the sets to prune changed since this was planned: open the action again"
    result = await engine.run_action(action, lambda line: None)
    assert not result.ok and "changed since the preview" in result.error
    assert len(list_sets(job).sets) == 4  # nothing deleted

    now = await reading(engine)
    assert now.sets[0].name == fake and now.sets[0].verified.startswith(f"failed: {why}")
    assert "verify FAILED" in now.reason and now.last_good == now.sets[1].finished  # the real newest
    action = engine.find_action("job", "prune")
    assert action.ref == ("plan", names[2])
    assert engine.find_action("job", "restore").ref[0] == names[0]  # the newest undamaged set
    preview = await source.preview(action)
    assert [line.split(" · ")[0] for line in preview] == [f"delete set {names[2]}"]
    result = await engine.run_action(action, lambda line: None)
    assert result.ok, result.error
    assert [s.name for s in list_sets(job).sets] == [fake, names[0], names[1]]  # two good sets kept


async def test_a_set_damaged_between_preview_and_run_is_found_by_the_run(tmp_path):
    tree(tmp_path / "src")
    clock = Clock()
    engine = engine_for(tmp_path, "files", clock, paths=[str(tmp_path / "src")], keep_last=1)
    names = await make_sets(engine, clock, 2)
    source = engine.sources["job"]
    action = engine.find_action("job", "prune")
    assert action.ref == ("plan", names[1])
    assert (await source.preview(action)) and "changed" not in (await source.preview(action))[-1]
    archive = tmp_path / "dest" / "job" / names[0] / "files.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))  # same size: only a re-hash sees it (the preview's is not reused)
    result = await engine.run_action(action, lambda line: None)
    assert not result.ok and "changed since the preview" in result.error
    assert [s.name for s in list_sets(tmp_path / "dest" / "job").sets] == names  # the only good set stays


def manifest_set(job: Path, name: str) -> Path:
    (job / name).mkdir(parents=True)
    (job / name / MANIFEST).write_text(json.dumps({"format": FORMAT, "files": []}))
    return job / name


def test_only_real_times_not_in_the_future_are_set_names(tmp_path):
    job, now = tmp_path / "job", 1_700_000_000.0
    sets = [manifest_set(job, set_name(now - 3600)).name, manifest_set(job, set_name(now - 3600) + "-2").name,
            manifest_set(job, set_name(now + FUTURE_SKEW - 60)).name]  # clock skew: still a set
    future = manifest_set(job, set_name(now + FUTURE_SKEW + 60)).name
    bad = ["99999999T999999Z", "20231231T235960Z", "20230230T000000Z", "20230101T000000Z-0", "notaset",
           "20230101T000000", "20230101T000000Z-x"]
    for name in bad:
        manifest_set(job, name)
    (job / "20230102T000000Z").write_text("a file named like a set")
    (job / "20230103T000000Z").symlink_to(job / sets[0])  # a symlink to a good set is still no set
    (job / ".partial-20230104T000000Z-1").symlink_to(tmp_path)
    # lakedeck's own entries are neither sets nor foreign
    (job / LAST_RUN).write_text(json.dumps({"result": "failed: boom", "at": now}))
    (job / ".verify-1-abc").mkdir()
    (job / ".partial-20230105T000000Z-1").mkdir()

    listing = list_sets(job, now)
    assert sorted(s.name for s in listing.sets) == sorted(sets)
    assert {f.name: f.why for f in listing.foreign} == {
        future: "in the future", **{name: "not a set name" for name in bad},
        "20230102T000000Z": "not a directory", "20230103T000000Z": "a symlink (never followed)",
        ".partial-20230104T000000Z-1": "a symlink (never followed)"}
    assert [u.name for u in listing.unfinished] == [".partial-20230105T000000Z-1"]
    assert listing.last_run is not None and listing.last_run.failed == "boom"


async def test_one_foreign_entry_is_said_in_the_singular_and_warns(tmp_path):
    tree(tmp_path / "src")
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")])
    assert (await act(engine, "run"))[0].ok
    (tmp_path / "dest" / "job" / "README").write_text("someone's notes")
    now = await reading(engine)
    assert now.state is State.WARN and "1 foreign entry in DEST" in now.reason and "entries" not in now.reason


def backup(name: str, verified: str = "") -> BackupSet:
    from backends.backup_sets import name_time

    when = name_time(name)
    assert when is not None
    return BackupSet(name=name, path=f"/x/{name}", started=when, finished=when, size=1, files=1, verified=verified)


def test_a_failed_set_is_never_protected_nor_counted_toward_keep_last():
    now = 1_700_000_000.0
    names = [set_name(now - (n + 1) * DAY) for n in range(5)]  # newest first
    sets = [backup(names[0], "failed: sha256 mismatch"), backup(names[1]), backup(names[2], "failed: x"),
            backup(names[3], "ok"), backup(names[4])]
    assert protected(sets) == {names[1], names[3]}  # the newest undamaged, the newest verified
    # keep_last 2 keeps two undamaged sets (1 and 3) and every damaged one newer than the second of them
    assert [s.name for s in prune_plan(sets, None, 2, now)] == [names[4]]
    # a prune's own finding counts the same as a failed verify
    assert [s.name for s in prune_plan(sets, None, 2, now, known_damaged={names[1]})] == []
    assert protected(sets, {names[1]}) == {names[3]}
    # age alone: the newest undamaged set stays, a damaged newest one does not
    assert [s.name for s in prune_plan(sets, 3600.0, None, now)] == [names[4], names[2], names[0]]
    every_set_failed = [backup(n, "failed: x") for n in names]
    assert protected(every_set_failed) == set()
