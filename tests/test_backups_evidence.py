"""What lakedeck reads back from DEST is evidence (issue 13, attack items 6–8): a manifest, a verify.json or a
last-run.json is read bounded and checked field by field, and a name is matched whole. A bad one makes that
one set unreadable (or unverified, or no failed run), with its reason; every other set is judged as before,
and no command prints a traceback."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from test_backups import Clock, act, config_file, engine_for, lakedeck, reading, tree

from backends.backup_records import MANIFEST_LIMIT, SMALL_LIMIT
from backends.backup_sets import (
    FORMAT,
    LAST_RUN,
    MANIFEST,
    VERIFY,
    ManifestError,
    list_sets,
    name_time,
    read_manifest,
    write_manifest,
    write_verify,
)
from backends.model import State

HOUR = 3600.0
GOOD_SHA = "0" * 64


async def three_runs(tmp_path: Path, **options) -> tuple[Path, list[str], Path]:
    """The attack's set-up: a files job ``keep_last: 2``, ``rpo: 1d``, run three times an hour apart, the
    last an hour ago (so the real ``lakedeck`` sees an OK job). Returns the job's directory, its set names
    newest first, and the config file."""
    tree(tmp_path / "src")
    options = {"paths": [str(tmp_path / "src")], "keep_last": 2, "rpo": "1d", **options}
    clock = Clock(time.time() - 3 * HOUR)
    engine = engine_for(tmp_path, "files", clock, **options)
    for _ in range(3):
        assert (await act(engine, "run"))[0].ok
        clock.now += HOUR
    job = tmp_path / "dest" / "job"
    return job, [s.name for s in list_sets(job).sets], config_file(tmp_path, "files", **options)


def no_traceback(done) -> None:
    assert "Traceback" not in done.stderr + done.stdout and "Error:" not in done.stderr, done.stderr


def check_row(config: Path) -> dict:
    done = lakedeck(config, "check", "--json")
    no_traceback(done)
    (row,) = json.loads(done.stdout)["readings"]
    return row


# -- item 6: a manifest nested too deeply ----------------------------------------------------------

async def test_the_issue_case_a_deeply_nested_manifest_makes_only_its_set_unreadable(tmp_path):
    job, names, config = await three_runs(tmp_path)
    planted = job / "20230101T000000Z"
    planted.mkdir()
    (planted / MANIFEST).write_text("[" * 200_000 + "]" * 200_000)

    row = check_row(config)
    assert row["state"] == "OK" and row["reason"].startswith("last good ") and "3 sets" in row["reason"]
    assert "1 set without a readable manifest" in row["reason"] and "poll failed" not in row["reason"]
    listing = list_sets(job)
    assert [s.name for s in listing.sets] == names
    assert [(u.name, u.why) for u in listing.unfinished] == [
        ("20230101T000000Z", "no readable manifest: manifest.json is nested too deeply")]

    done = lakedeck(config, "action", "job", "prune", "--dry-run")
    no_traceback(done)
    assert done.returncode == 0 and f"delete set {names[2]}" in done.stdout and "20230101T000000Z" not in done.stdout
    done = lakedeck(config, "action", "job", "verify")
    no_traceback(done)
    assert done.returncode == 0 and f"set {names[0]} verified" in done.stdout
    done = lakedeck(config, "action", "job", "restore", "--value", str(tmp_path / "back"), "--yes")
    no_traceback(done)
    assert done.returncode == 0 and (tmp_path / "back" / "src" / "keep.txt").read_text() == "keep me"
    done = lakedeck(config, "action", "job", "prune", "--yes")
    no_traceback(done)
    assert done.returncode == 0 and [s.name for s in list_sets(job).sets] == names[:2]
    assert (planted / MANIFEST).stat().st_size == 400_000  # an unreadable set is never pruned


def entry(**fields) -> dict:
    return {"path": "files.tar.gz", "size": 10, "sha256": GOOD_SHA, **fields}


def manifest(**fields) -> dict:
    return {"format": FORMAT, "kind": "files", "files": [entry()], **fields}


HUGE = 10**400
BAD_MANIFESTS = {  # case: (manifest.json's bytes, the reason after "no readable manifest: ")
    "nested-arrays": (b"[" * 100_000 + b"]" * 100_000, "manifest.json is nested too deeply"),
    "nested-objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "manifest.json is nested too deeply"),
    "nested-in-a-field": (json.dumps(manifest()).encode()[:-1] + b', "tools": ' + b"[" * 50_000 + b"]" * 50_000
                          + b"}", "manifest.json is nested too deeply"),
    "not-utf-8": (b'{"format": "\xff\xfe"}', "manifest.json is not JSON"),
    "truncated": (json.dumps(manifest()).encode()[:-3], "manifest.json is not JSON"),
    "nan": (json.dumps(manifest(finished=float("nan"))).encode(), "manifest.json is not JSON"),
    "infinity": (json.dumps(manifest(started=float("inf"))).encode(), "manifest.json is not JSON"),
    "1e400": (json.dumps(manifest()).encode()[:-1] + b', "finished": 1e400}',
              "manifest.json: finished is not a time (seconds from 1970 to 9999)"),
    "5000-digit-int": (json.dumps(manifest()).encode()[:-1] + b', "unpacked": ' + b"9" * 5000 + b"}",
                       "manifest.json is not JSON"),
    "a-list": (b"[]", "manifest.json is not a JSON object"),
    "a-string": (b'"lakedeck-backup/1"', "manifest.json is not a JSON object"),
    "no-format": (json.dumps({"files": []}).encode(), "manifest.json: not a lakedeck manifest (no format lakedeck-backup/1)"),
    "files-not-a-list": (json.dumps(manifest(files={"a": 1})).encode(), "manifest.json: files is not a list"),
    "entry-not-an-object": (json.dumps(manifest(files=["files.tar.gz"])).encode(), "manifest.json: files[0] is not an object"),
    "path-not-a-string": (json.dumps(manifest(files=[entry(), entry(path=7)])).encode(),
                          "manifest.json: files[1].path is not a string"),
}
SIZE_WHY = "is not a size (a whole number from 0 to 2**63-1)"
for name, value in {"the-issue-10**400": HUGE, "2**63": 2**63, "negative": -1, "float": 10.0, "bool": True,
                    "string": "10", "missing": None}.items():
    files = [entry(), {"path": "zz", "sha256": "x"} if value is None else entry(path="zz", size=value)]
    if name == "the-issue-10**400":
        files[1]["sha256"] = "x"  # the issue's entry, as it was planted
    BAD_MANIFESTS[f"size-{name}"] = (json.dumps(manifest(files=files)).encode(), f"manifest.json: files[1].size {SIZE_WHY}")
for name, value in {"short": "x", "upper": "A" * 64, "63": "0" * 63, "65": "0" * 65, "newline": GOOD_SHA + "\n",
                    "not-hex": "g" * 64, "int": 0}.items():
    BAD_MANIFESTS[f"sha256-{name}"] = (json.dumps(manifest(files=[entry(sha256=value)])).encode(),
                                       "manifest.json: files[0].sha256 is not 64 lowercase hex digits")
for key, value, why in [
        ("started", "yesterday", "started is not a time (seconds from 1970 to 9999)"),
        ("finished", -1, "finished is not a time (seconds from 1970 to 9999)"),
        ("finished", 1e300, "finished is not a time (seconds from 1970 to 9999)"),
        ("finished", True, "finished is not a time (seconds from 1970 to 9999)"),
        ("duration", "1s", "duration is not a number of seconds"),
        ("unpacked", HUGE, f"unpacked {SIZE_WHY}"),
        ("unpacked", -5, f"unpacked {SIZE_WHY}"),
        ("kind", 5, "kind is not a string"),
        ("name", ["x"], "name is not a string"),
        ("tools", ["tar"], "tools is not an object of strings"),
        ("tools", {"tar": 1}, "tools is not an object of strings"),
        ("top", "src", "top is not a list of names"),
        ("top", ["a/b"], "top is not a list of names"),
        ("top", [".."], "top is not a list of names"),
        ("top", [""], "top is not a list of names")]:
    BAD_MANIFESTS[f"{key}-{json.dumps(value)[:12]}"] = (json.dumps(manifest(**{key: value})).encode(), f"manifest.json: {why}")


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_a_manifest_that_fails_to_parse_or_check_makes_only_its_set_unreadable(tmp_path, case):
    raw, why = BAD_MANIFESTS[case]
    job, now = tmp_path / "job", 1_700_000_000.0
    (job / "20230101T000000Z").mkdir(parents=True)
    (job / "20230101T000000Z" / MANIFEST).write_text(json.dumps(manifest(finished=now - 2 * HOUR)))
    (job / "20230102T000000Z").mkdir()
    (job / "20230102T000000Z" / MANIFEST).write_bytes(raw)
    listing = list_sets(job, now)
    assert [s.name for s in listing.sets] == ["20230101T000000Z"] and listing.sets[0].size == 10
    assert [(u.name, u.why) for u in listing.unfinished] == [("20230102T000000Z", f"no readable manifest: {why}")]
    with pytest.raises(ManifestError) as raised:
        read_manifest(job / "20230102T000000Z")
    assert str(raised.value) == why and len(why) < 200


def test_a_good_manifest_with_every_field_lakedeck_writes_is_read(tmp_path):
    full = manifest(job="job", name="20230101T000000Z", started=1_700_000_000, finished=1_700_000_001.5,
                    duration=1.5, source="tar.gz of /srv", tools={"python tarfile": "gzip level 6"}, unpacked=0,
                    root="/srv", top=["a", "b c", "ü\n"], unpacked_note="", extra={"a future": ["field"]})
    (tmp_path / MANIFEST).write_text(json.dumps(full))
    assert read_manifest(tmp_path) == full


def test_a_manifest_over_the_limit_is_refused_without_reading_it_whole(tmp_path):
    """A sparse manifest of 64 GiB: read whole, it would take the machine's memory; it is refused from its
    first MANIFEST_LIMIT bytes. One byte over the limit, of valid JSON, is refused too; at the limit it is read."""
    job = tmp_path / "job"
    for name in ("20230101T000000Z", "20230102T000000Z", "20230103T000000Z"):
        (job / name).mkdir(parents=True)
    with open(job / "20230101T000000Z" / MANIFEST, "wb") as handle:
        handle.truncate(64 * 1024**3)
    body = json.dumps(manifest()).encode()
    (job / "20230102T000000Z" / MANIFEST).write_bytes(body + b" " * (MANIFEST_LIMIT - len(body) + 1))
    (job / "20230103T000000Z" / MANIFEST).write_bytes(body + b" " * (MANIFEST_LIMIT - len(body)))
    listing = list_sets(job, 1_700_000_000.0)
    assert [s.name for s in listing.sets] == ["20230103T000000Z"]
    assert {u.name: u.why for u in listing.unfinished} == {
        name: f"no readable manifest: manifest.json is larger than {MANIFEST_LIMIT} bytes"
        for name in ("20230101T000000Z", "20230102T000000Z")}


def test_a_run_never_writes_a_manifest_it_would_not_read_back(tmp_path):
    many = manifest(files=[entry(path=f"f{n:07d}") for n in range(MANIFEST_LIMIT // 60)])
    with pytest.raises(ManifestError, match=rf"would be \d+ bytes, over the {MANIFEST_LIMIT} lakedeck reads"):
        write_manifest(tmp_path, many)
    with pytest.raises(ManifestError, match=r"would be unreadable: files\[0\].size is not a size"):
        write_manifest(tmp_path, manifest(files=[entry(size=2**64)]))
    assert not (tmp_path / MANIFEST).exists()
    fine = manifest(files=[entry(path=f"f{n:07d}") for n in range(1000)], finished=1_700_000_000.25)
    write_manifest(tmp_path, fine)
    assert read_manifest(tmp_path) == fine


# -- item 7: a size too large for a float ----------------------------------------------------------

async def test_the_issue_case_a_huge_size_in_a_copied_set_leaves_the_others_judged(tmp_path):
    job, names, config = await three_runs(tmp_path)
    copy = job / "20230101T000000Z"
    shutil.copytree(job / names[0], copy)
    planted = json.loads((copy / MANIFEST).read_text())
    planted["files"].append({"path": "zz", "size": HUGE, "sha256": "x"})
    (copy / MANIFEST).write_text(json.dumps(planted))

    row = check_row(config)
    assert row["state"] == "OK" and "3 sets" in row["reason"] and "1 set without a readable manifest" in row["reason"]
    done = lakedeck(config, "action", "job", "prune", "--dry-run")
    no_traceback(done)
    assert done.returncode == 0 and f"delete set {names[2]}" in done.stdout and "20230101T000000Z" not in done.stdout
    (unreadable,) = list_sets(job).unfinished
    assert unreadable.why == f"no readable manifest: manifest.json: files[1].size {SIZE_WHY}"

    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")], keep_last=2, rpo="1d")
    listing = await engine.sources["job"].open(())
    item = next(i for i in listing.items if i.name == "20230101T000000Z")
    assert item.status == "unfinished" and engine.sources["job"].item_actions(item) == []


# -- verify.json and last-run.json -----------------------------------------------------------------

BAD_RECORDS = {
    "nested": b"[" * 60_000 + b"]" * 60_000,
    "nested-result": b'{"result": ' + b"[" * 30_000 + b"]" * 30_000 + b', "at": 1700000000}',
    "a-list": b'["ok", 1700000000]',
    "not-json": b"ok",
    "not-utf-8": b'{"result": "\xff", "at": 1}',
    "nan-at": b'{"result": "ok", "at": NaN}',
    "inf-at": b'{"result": "ok", "at": 1e400}',
    "huge-at": b'{"result": "ok", "at": ' + b"9" * 400 + b"}",
    "bool-at": b'{"result": "ok", "at": true}',
    "no-at": b'{"result": "ok"}',
    "result-not-a-string": b'{"result": ["ok"], "at": 1700000000}',
    "over-the-limit": b'{"result": "ok", "at": 1700000000}' + b" " * SMALL_LIMIT,
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
async def test_an_unreadable_verify_or_last_run_record_counts_as_absent(tmp_path, case):
    tree(tmp_path / "src")
    clock = Clock()
    engine = engine_for(tmp_path, "files", clock, paths=[str(tmp_path / "src")], rpo="1d")
    assert (await act(engine, "run"))[0].ok
    job = tmp_path / "dest" / "job"
    (name,) = [s.name for s in list_sets(job).sets]
    (job / name / VERIFY).write_bytes(BAD_RECORDS[case])
    (job / LAST_RUN).write_bytes(BAD_RECORDS[case].replace(b'"ok"', b'"failed: planted"'))
    listing = list_sets(job, clock.now)
    assert listing.sets[0].verified == "" and listing.sets[0].verified_at is None and listing.last_run is None
    now = await reading(engine)
    assert now.state is State.OK and "newest NOT verified" in now.reason and "failed" not in now.reason
    # the same records, readable, are believed: the case above failed for its flaw alone
    (job / name / VERIFY).write_text(json.dumps({"result": "ok", "at": clock.now}))
    (job / LAST_RUN).write_text(json.dumps({"result": "failed: planted", "at": clock.now}))
    now = await reading(engine)
    assert now.state is State.WARN and "last run failed: planted" in now.reason and "newest verified" in now.reason


async def test_a_verdict_on_a_planted_path_of_a_megabyte_is_kept_readable(tmp_path):
    """A failure naming a huge planted path is said in one short line, and is still a failure when read back
    (a verify.json over its limit would be unreadable: "not verified")."""
    tree(tmp_path / "src")
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "src")])
    assert (await act(engine, "run"))[0].ok
    job = tmp_path / "dest" / "job"
    (backup,) = list_sets(job).sets
    planted = json.loads((Path(backup.path) / MANIFEST).read_text())
    planted["files"].append({"path": "d\n/" * 300_000 + "f", "size": 1, "sha256": GOOD_SHA})
    (Path(backup.path) / MANIFEST).write_text(json.dumps(planted))
    result, _, _ = await act(engine, "verify")
    assert not result.ok and "\n" not in result.error and len(result.error) < 400
    (backup,) = list_sets(job).sets
    assert backup.verified.startswith("failed: d /d /d /") and backup.verified.endswith("… is missing")
    assert len(backup.verified) < 300

    # whatever a verdict says, what is kept of it is read back as it was kept
    write_verify(Path(backup.path), "failed: " + "x" * 200_000, 1_700_000_000.0)
    (backup,) = list_sets(job).sets
    assert backup.verified.startswith("failed: xxx") and len(backup.verified) <= 2000


# -- item 8: names matched whole -------------------------------------------------------------------

ALMOST_NAMES = ["20251231T000000Z\n", "20251231T000000Z ", "20251231T000000Z\t", "20251231T000000Z\r",
                "20251231T000000Z\x0b", "20251231T000000Z\x0c", "20251231T000000Z\u00a0", "\n20251231T000000Z",
                " 20251231T000000Z", "20251231T000000Z-2\n", "20251231T000000Z-2 ",
                "٢٠٢٥١٢٣١T٠٠٠٠٠٠Z", "２０２５１２３１T００００００Z", "20251231T000000Z-٣", "20251231T000000Z-²"]


@pytest.mark.parametrize("name", ALMOST_NAMES, ids=ascii)
def test_a_name_with_anything_around_or_other_digits_is_no_set(tmp_path, name):
    assert name_time(name) is None
    job = tmp_path / "job"
    for each in ("20251231T000000Z", name):
        (job / each).mkdir(parents=True)
        (job / each / MANIFEST).write_text(json.dumps(manifest()))
    listing = list_sets(job, 1_800_000_000.0)
    assert [s.name for s in listing.sets] == ["20251231T000000Z"]
    assert [(f.name, f.why) for f in listing.foreign] == [(name, "not a set name")]


async def test_the_issue_case_a_copy_named_with_a_trailing_newline_is_foreign_and_never_pruned(tmp_path):
    job, names, config = await three_runs(tmp_path)
    shutil.copytree(job / names[0], job / "20251231T000000Z\n")
    done = lakedeck(config, "action", "job", "prune", "--yes")
    no_traceback(done)
    affected = done.stdout.split("it would affect:")[1]
    assert done.returncode == 0 and f"delete set {names[2]}" in affected and "delete set 2025" not in affected
    assert "left alone: 1 foreign entry (20251231T000000Z" in affected
    assert (job / "20251231T000000Z\n" / MANIFEST).exists() and [s.name for s in list_sets(job).sets] == names[:2]
    row = check_row(config)
    assert row["state"] == "WARN" and "2 sets" in row["reason"] and "1 foreign entry in DEST" in row["reason"]


STALE = 2 * HOUR  # older than STALE_PARTIAL: a dead run's directory of that name would be removed
NOT_LEFTOVERS = [".partial-notes", ".partial-20230101T000000Z-²", ".partial-20230101T000000Z-٣",
                 ".partial-20230101T000000Z-1\n", ".partial-20230101T000000Z-" + "9" * 200,
                 " .partial-20230101T000000Z-1", ".verify-²-abc", ".verify-1-abc\n", ".verify-x-abc"]


async def test_a_directory_named_almost_like_a_runs_leftover_is_foreign_and_never_removed(tmp_path):
    """A prune removes a dead run's ``.partial-<set>-<pid>``; a directory merely starting with ``.partial-``
    (or with other digits, or a newline) is not one, and stays, listed as foreign."""
    tree(tmp_path / "src")
    clock = Clock()
    engine = engine_for(tmp_path, "files", clock, paths=[str(tmp_path / "src")], keep_last=1)
    assert (await act(engine, "run"))[0].ok
    job = tmp_path / "dest" / "job"
    old = time.time() - STALE
    dead = job / ".partial-20230101T000000Z-2-999999999"  # lakedeck's spelling, a pid no process has
    for name in [*NOT_LEFTOVERS, dead.name]:
        (job / name).mkdir()
        (job / name / "notes.txt").write_text("someone's")
        os.utime(job / name / "notes.txt", (old, old))
        os.utime(job / name, (old, old))
    (job / ".last-run.json.tmp-evil").write_text("x")
    now = await reading(engine)
    assert f"{len(NOT_LEFTOVERS) + 1} foreign entries in DEST" in now.reason
    listing = list_sets(job, clock.now)
    assert {f.name for f in listing.foreign} == {*NOT_LEFTOVERS, ".last-run.json.tmp-evil"}
    assert [u.name for u in listing.unfinished] == [dead.name]
    result, preview, _ = await act(engine, "prune")
    assert result.ok, result.error
    assert [line for line in preview if line.startswith("remove")][0].startswith(f"remove unfinished {dead.name}")
    assert not dead.exists()
    assert all((job / name / "notes.txt").read_text() == "someone's" for name in NOT_LEFTOVERS)


@pytest.mark.parametrize("name", [".lakedeck-restore-²", ".lakedeck-restore-٣", ".lakedeck-restore-1\n",
                                  ".lakedeck-restore-" + "9" * 200, ".lakedeck-restore-1-abc\n", "x.lakedeck-restore-1"],
                         ids=ascii)
async def test_a_name_almost_like_a_restores_leftover_is_left_alone(tmp_path, name):
    """The poll removes a dead restore's staging directory in the places it knows; a directory named almost so
    neither crashes the poll nor goes."""
    (tmp_path / "live" / "src").mkdir(parents=True)
    (tmp_path / "live" / "src" / "a.txt").write_text("a")
    engine = engine_for(tmp_path, "files", paths=[str(tmp_path / "live" / "src")])
    assert (await act(engine, "run"))[0].ok
    (tmp_path / "live" / name).mkdir()
    dead = tmp_path / "live" / ".lakedeck-restore-999999999"
    dead.mkdir()
    now = await reading(engine)
    assert now.state is State.OK and (tmp_path / "live" / name).is_dir() and not dead.exists()
