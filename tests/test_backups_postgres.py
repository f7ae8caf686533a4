"""A postgres backup job against a real PostgreSQL 15: dump, verify, restore into a new database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_backups import Clock, act, engine_for, reading

from backends.backup_sets import MANIFEST, list_sets, set_name
from backends.model import State

pytestmark = pytest.mark.integration


def job(tmp_path: Path, postgres, clock: Clock | None = None, **options):
    return engine_for(tmp_path, "postgres", clock, dbname="shop", port=postgres.port, user="postgres",
                      password="not-on-the-command-line", pg_dump=str(postgres.bin / "pg_dump"),
                      pg_restore=str(postgres.bin / "pg_restore"), **options)


async def test_dump_verify_restore_round_trip_keeps_row_counts(tmp_path, postgres):
    postgres.psql("DROP DATABASE IF EXISTS shop")
    postgres.psql("DROP DATABASE IF EXISTS shop_restored")
    postgres.psql("CREATE DATABASE shop")
    postgres.psql("CREATE TABLE orders (id int primary key, amount numeric); "
                  "INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 5000) g; "
                  "CREATE TABLE customers (id int primary key, name text); "
                  "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 300) g", "shop")
    engine = job(tmp_path, postgres)
    run = engine.find_action("job", "run")
    assert run.call.startswith(f"{postgres.bin / 'pg_dump'} -Fc -h 127.0.0.1 -p {postgres.port} -U postgres -f ")
    assert "not-on-the-command-line" not in run.describe()

    result, _, lines = await act(engine, "run")
    assert result.ok, result.error
    assert any(line.startswith("dumped ") for line in lines)
    (backup,) = list_sets(tmp_path / "dest" / "job").sets
    assert (Path(backup.path) / "shop.dump").stat().st_size > 0

    result, _, lines = await act(engine, "verify")
    assert result.ok, result.error
    assert any("pg_restore --list" in line for line in lines)
    assert "newest verified" in (await reading(engine)).reason and (await reading(engine)).state is State.OK

    restore = engine.find_action("job", "restore")
    assert restore.ask and restore.confirm == "job"
    with pytest.raises(ValueError):
        engine.sources["job"].with_value(restore, "--evil")
    result, preview, _ = await act(engine, "restore", value="shop_restored")
    assert result.ok, result.error
    assert preview[1] == "into shop_restored"
    assert preview[2] == "a compressed pg_dump archive: the database restored from it takes more"
    assert not any("overwrites the live" in line for line in preview)
    for table in ("orders", "customers"):
        query = f"SELECT count(*) FROM {table}"
        assert postgres.psql(query, "shop_restored") == postgres.psql(query, "shop")
    assert postgres.psql("SELECT sum(amount) FROM orders", "shop_restored") == postgres.psql(
        "SELECT sum(amount) FROM orders", "shop")

    # again, into the database that now exists: --clean replaces what the dump holds
    postgres.psql("DELETE FROM orders WHERE id > 10", "shop_restored")
    result, _, _ = await act(engine, "restore", value="shop_restored")
    assert result.ok, result.error
    assert postgres.psql("SELECT count(*) FROM orders", "shop_restored") == "5000"
    audit = engine.audit.read()
    assert all("not-on-the-command-line" not in str(entry) for entry in audit)
    assert [e["action"] for e in audit if e["event"] == "succeeded"] == ["run", "verify", "restore", "restore"]


async def test_a_truncated_dump_fails_verify_and_a_missing_database_fails_the_run_in_one_line(tmp_path, postgres):
    postgres.psql("DROP DATABASE IF EXISTS shop")
    postgres.psql("CREATE DATABASE shop")
    postgres.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g", "shop")
    engine = job(tmp_path, postgres)
    assert (await act(engine, "run"))[0].ok
    dump = Path(list_sets(tmp_path / "dest" / "job").sets[0].path) / "shop.dump"
    dump.write_bytes(dump.read_bytes()[:100])
    result, _, _ = await act(engine, "verify")
    assert not result.ok and "shop.dump" in result.error

    missing = engine_for(tmp_path / "other", "postgres", dbname="nope", port=postgres.port, user="postgres",
                         pg_dump=str(postgres.bin / "pg_dump"))
    result, _, _ = await act(missing, "run")
    assert not result.ok and "pg_dump exited 1" in result.error and "\n" not in result.error
    job_dir = tmp_path / "other" / "dest" / "job"
    assert list_sets(job_dir).sets == () and sorted(p.name for p in job_dir.iterdir()) == ["last-run.json"]  # no .partial-*
    now = await reading(missing)
    assert now.state is State.CRITICAL and now.reason.startswith("last run failed: pg_dump exited 1: ")


async def test_a_planted_dump_outside_the_set_is_refused_and_a_live_restore_says_what_is_lost(tmp_path, postgres):
    postgres.psql("DROP DATABASE IF EXISTS shop")
    postgres.psql("CREATE DATABASE shop")
    postgres.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g", "shop")
    clock = Clock()
    engine = job(tmp_path, postgres, clock=clock)
    assert (await act(engine, "run"))[0].ok
    (real,) = list_sets(tmp_path / "dest" / "job").sets
    outside = tmp_path / "outside.dump"
    shutil.copy(Path(real.path) / "shop.dump", outside)  # a dump of another database, say: its bytes match
    postgres.psql("INSERT INTO t SELECT g FROM generate_series(101, 150) g", "shop")

    for planted_at, plant in ((60, "absolute"), (120, "symlink")):
        planted = tmp_path / "dest" / "job" / set_name(clock.now + planted_at)
        shutil.copytree(real.path, planted)
        manifest = json.loads((planted / MANIFEST).read_text())
        if plant == "absolute":
            manifest["files"][0]["path"] = str(outside)
            (planted / MANIFEST).write_text(json.dumps(manifest))
            why = f"{outside} is an absolute path"
        else:
            (planted / "shop.dump").unlink()
            (planted / "shop.dump").symlink_to(outside)
            why = "shop.dump is or passes through a symlink (never followed)"
        clock.now += 180
        await engine.sources["job"].poll()
        result, _, _ = await act(engine, "restore", value="shop")
        assert not result.ok and "damaged" in result.error and why in result.error, plant
        assert postgres.psql("SELECT count(*) FROM t", "shop") == "150"  # untouched
        result, _, _ = await act(engine, "verify")
        assert not result.ok and why in result.error

    await engine.sources["job"].poll()
    restore = engine.find_action("job", "restore")
    assert restore.ref[0] == real.name  # the newest set that is not damaged
    _, preview, _ = await act(engine, "restore", value="shop")
    assert ("this overwrites the live database shop; changes of the last 6 minutes are lost (no copy is kept: "
            "run a backup first to keep one)") in preview
