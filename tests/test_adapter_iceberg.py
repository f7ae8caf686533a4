"""The Iceberg catalog adapter against a real pyiceberg SQL catalog on SQLite (tests/conftest_iceberg.py):
table rows and their figures, freshness, the compaction hint, snapshot listings, and expire / roll back / tag
through the engine, checked afterwards with pyiceberg itself."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from conftest_iceberg import CATALOG, orders_batch
from helpers import config_for

from backends.actions import Tier
from backends.adapters.pipeline_base import PipelineError
from backends.config import parse
from backends.engine import Engine
from backends.model import State, TableReading

pytestmark = pytest.mark.integration


def engine_for(lake, tmp_path, clock=time.time, **options) -> Engine:
    item = lake.source(**options)
    config = config_for("tables", "sql", root={"audit_log": str(tmp_path / "audit.jsonl")}, **item)
    engine = Engine(config, clock=clock)
    engine.build()
    engine.sources[CATALOG].clock = clock
    return engine


def audit(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


async def rows_of(engine: Engine) -> dict[str, TableReading]:
    update = await engine.poll_once(CATALOG)
    for reading in update.readings:
        assert "\n" not in reading.reason and len(reading.reason) <= 200
    return {r.key: r for r in update.readings}


async def test_one_row_per_table_with_its_figures(iceberg_lake, tmp_path):
    engine = engine_for(iceberg_lake, tmp_path, namespaces=["sales"])
    rows = await rows_of(engine)
    assert set(rows) >= {"lake:sales.orders", "lake:sales.empty", "lake:sales.events"}
    assert "lake:other.misc" not in rows  # only the configured namespaces
    orders = rows["lake:sales.orders"]
    table = iceberg_lake.table("sales.orders")
    assert orders.state is State.OK and orders.catalog == CATALOG and orders.table == "sales.orders"
    assert orders.snapshot_id == table.metadata.current_snapshot_id
    assert orders.snapshot_at == pytest.approx(table.current_snapshot().timestamp_ms / 1000)
    assert (orders.records, orders.data_files, orders.snapshots) == (30, 3, 3)
    assert orders.data_bytes == int(table.current_snapshot().summary["total-files-size"])
    assert orders.reason.startswith("snapshot ") and "30 records · 3 files avg" in orders.reason
    assert "compaction" not in orders.reason
    empty = rows["lake:sales.empty"]
    assert empty.state is State.WARN and empty.reason == "no snapshot yet" and empty.snapshots == 0


async def test_every_namespace_by_default(iceberg_lake, tmp_path):
    rows = await rows_of(engine_for(iceberg_lake, tmp_path))
    assert "lake:other.misc" in rows and rows["lake:other.misc"].records == 2


async def test_many_small_files_suggest_compaction(iceberg_lake, tmp_path):
    rows = await rows_of(engine_for(iceberg_lake, tmp_path, namespaces="sales"))
    events = rows["lake:sales.events"]
    assert events.data_files == 20 and events.records == 20 and events.state is State.OK
    assert "20 files avg" in events.reason and events.reason.endswith("compaction would help")
    big = await rows_of(engine_for(iceberg_lake, tmp_path, namespaces="sales", small_file=1))  # 1 byte: none small
    assert "compaction" not in big["lake:sales.events"].reason


async def test_max_age_warns_then_goes_critical_at_twice(iceberg_lake, tmp_path):
    snapshot_at = iceberg_lake.table("sales.orders").current_snapshot().timestamp_ms / 1000
    now = [snapshot_at + 3600]
    engine = engine_for(iceberg_lake, tmp_path, clock=lambda: now[0], namespaces="sales", max_age="2h")
    row = (await rows_of(engine))["lake:sales.orders"]
    assert row.state is State.OK and row.reason.startswith("snapshot 1h00m ago (max age 2h00m) · 30 records")
    now[0] = snapshot_at + 3 * 3600
    assert (await rows_of(engine))["lake:sales.orders"].state is State.WARN
    now[0] = snapshot_at + 5 * 3600
    row = (await rows_of(engine))["lake:sales.orders"]
    assert row.state is State.CRITICAL and row.reason.startswith("snapshot 5h00m ago (max age 2h00m)")


async def test_unchanged_tables_are_not_loaded_again(iceberg_lake, tmp_path, monkeypatch):
    engine = engine_for(iceberg_lake, tmp_path, namespaces="other")
    await rows_of(engine)
    catalog = engine.sources[CATALOG].catalog()
    loads = []
    real = catalog.load_table
    monkeypatch.setattr(catalog, "load_table", lambda ident: loads.append(ident) or real(ident))
    await rows_of(engine)
    assert loads == []
    iceberg_lake.table("other.misc").append(orders_batch(100, 3))
    rows = await rows_of(engine)
    assert loads == ["other.misc"] and rows["lake:other.misc"].records == 5


async def test_a_missing_catalog_database_is_one_unknown_row(tmp_path):
    config = config_for("tables", "sql", name="lake", uri=f"sqlite:///{tmp_path}/nowhere/catalog.db")
    engine = Engine(config)
    engine.build()
    rows = list((await engine.poll_once("lake")).readings)
    assert len(rows) == 1 and rows[0].state is State.UNKNOWN and rows[0].key == "lake"
    assert rows[0].reason == f"cannot read the catalog: FileNotFoundError: the catalog database {tmp_path}/nowhere/" \
                             f"catalog.db does not exist"
    assert not (tmp_path / "nowhere").exists()


async def test_a_file_that_is_not_a_catalog_is_one_unknown_row(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    engine = Engine(config_for("tables", "sql", name="lake", uri=f"sqlite:///{tmp_path}/junk.db"))
    engine.build()
    rows = list((await engine.poll_once("lake")).readings)
    assert len(rows) == 1 and rows[0].state is State.UNKNOWN
    assert rows[0].reason.startswith("cannot read the catalog: DatabaseError: (sqlite3.DatabaseError) file is not")


async def test_snapshot_history_newest_first_with_changes_and_refs(iceberg_lake, tmp_path):
    table = iceberg_lake.make_table("sales.history", [orders_batch(0, 4), orders_batch(4, 6)])
    first = table.snapshots()[0].snapshot_id
    table.manage_snapshots().create_tag(first, "v1").commit()
    engine = engine_for(iceberg_lake, tmp_path)
    listing = await engine.sources[CATALOG].open(("sales.history",))
    assert [i.name for i in listing.items] == [str(s.snapshot_id) for s in reversed(table.snapshots())]
    newest, oldest = listing.items
    assert newest.ref == ("sales.history", newest.name) and newest.status == "append (current)"
    assert newest.note == "+6 records, +1 file · branch main"
    assert oldest.status == "append" and oldest.note == "+4 records, +1 file · tag v1"
    assert oldest.started == pytest.approx(table.snapshots()[0].timestamp_ms / 1000)
    with pytest.raises(PipelineError, match="cannot load sales.nope: NoSuchTableError"):
        await engine.sources[CATALOG].open(("sales.nope",))


async def test_table_actions_tiers_and_confirmation(iceberg_lake, tmp_path):
    engine = engine_for(iceberg_lake, tmp_path, namespaces="sales")
    await rows_of(engine)
    actions = {a.id: a for a in engine.actions_for("lake:sales.orders")}
    assert set(actions) == {"expire", "tag"}
    assert actions["expire"].tier is Tier.DESTRUCTIVE and actions["expire"].confirm == "sales.orders"
    assert actions["expire"].ask.startswith("older than a duration (7d) or keep the last N")
    assert actions["tag"].tier is Tier.DISRUPTIVE
    assert engine.actions_for("lake:sales.empty") == []  # nothing to expire or tag
    source = engine.sources[CATALOG]
    for bad in ("", "soon", "last 0", "older than x"):
        with pytest.raises(ValueError):
            source.with_value(actions["expire"], bad)
    assert source.with_value(actions["expire"], "7d").describe() == "expire snapshots of sales.orders (older than 7d00h)"
    assert source.with_value(actions["expire"], "keep last 5").describe() == \
           "expire snapshots of sales.orders (keep the last 5 of the current history; unreferenced ones go too)"
    with pytest.raises(ValueError, match="a tag name is letters"):
        source.with_value(actions["tag"], "bad name")


async def test_expire_older_than_expires_exactly_what_the_preview_listed(iceberg_lake, tmp_path):
    table = iceberg_lake.make_table("sales.expire_age", [orders_batch(i * 10, 10) for i in range(5)])
    snaps = table.snapshots()
    table.manage_snapshots().create_tag(snaps[1].snapshot_id, "keep-me").commit()
    # a clock 8 days later: every snapshot is older than 7d
    later = snaps[-1].timestamp_ms / 1000 + 8 * 86400
    engine = engine_for(iceberg_lake, tmp_path, clock=lambda: later)
    await rows_of(engine)
    action = engine.find_action("lake:sales.expire_age", "expire")
    source = engine.sources[CATALOG]
    action = source.with_value(action, "7d")
    preview = await source.preview(action)
    expected = [snaps[0].snapshot_id, snaps[2].snapshot_id, snaps[3].snapshot_id]  # not the tag, not the current
    assert [int(line.split()[1]) for line in preview] == expected
    assert preview[-1].endswith(" ago) · append") and "UTC (8d00h ago)" in preview[-1]
    out = []
    result = await engine.run_action(action, out.append)
    assert result.ok, result.error
    left = [s.snapshot_id for s in iceberg_lake.table("sales.expire_age").snapshots()]
    assert left == [snaps[1].snapshot_id, snaps[4].snapshot_id]
    assert out[-1] == "sales.expire_age: expired 3 snapshots; 2 left"
    entries = audit(tmp_path)
    assert [e["event"] for e in entries[-2:]] == ["confirmed", "succeeded"]
    assert entries[-1]["target"] == "lake:sales.expire_age"
    assert entries[-1]["command"] == "expire snapshots of sales.expire_age (older than 7d00h)"


def snapshot_ids(preview: list[str]) -> list[int]:
    return [int(line.split()[1]) for line in preview]


async def expire_last(iceberg_lake, tmp_path, ident: str, value: str) -> tuple[list[str], list[int]]:
    """The preview of ``expire <value>`` on ``ident``, then the run: (preview lines, snapshot ids left)."""
    engine = engine_for(iceberg_lake, tmp_path)
    await rows_of(engine)
    source = engine.sources[CATALOG]
    action = source.with_value(engine.find_action(f"lake:{ident}", "expire"), value)
    preview = await source.preview(action)
    result = await engine.run_action(action, lambda line: None)
    assert result.ok, result.error
    return preview, sorted(s.snapshot_id for s in iceberg_lake.table(ident).snapshots())


async def test_keep_last_n_after_a_rollback_keeps_the_newest_of_the_current_history(iceberg_lake, tmp_path):
    """Five appends, rolled back to the third: `last 2` keeps the third and second (the current history's newest
    two), expires the first (an ancestor beyond them) and the fourth and fifth (unreferenced: newer by time, but
    nothing can reach them), and the preview says which are unreferenced."""
    table = iceberg_lake.make_table("sales.expire_last", [orders_batch(i * 10, 10) for i in range(5)])
    s = [snap.snapshot_id for snap in table.snapshots()]
    table.manage_snapshots().rollback_to_snapshot(s[2]).commit()
    preview, left = await expire_last(iceberg_lake, tmp_path, "sales.expire_last", "last 2")
    assert snapshot_ids(preview) == [s[0], s[3], s[4]]
    assert "unreferenced" not in preview[0]
    assert all(line.endswith(" · unreferenced: not in the current history, no branch or tag") for line in preview[1:])
    assert left == sorted([s[1], s[2]])
    after = iceberg_lake.table("sales.expire_last")
    assert after.metadata.current_snapshot_id == s[2]
    assert sorted(after.scan().to_arrow().column("id").to_pylist()) == list(range(30))  # the data is intact
    assert audit(tmp_path)[-1]["command"] == ("expire snapshots of sales.expire_last (keep the last 2 of the current "
                                              "history; unreferenced ones go too)")


async def test_keep_last_n_keeps_tags_and_other_branches_histories(iceberg_lake, tmp_path):
    """The same rollback, with a tag on the fourth and a branch at the first: both stay, and the first's place
    in the branch's history keeps it though it is beyond the newest 2; only the fifth goes."""
    table = iceberg_lake.make_table("sales.expire_refs", [orders_batch(i * 10, 10) for i in range(5)])
    s = [snap.snapshot_id for snap in table.snapshots()]
    table.manage_snapshots().rollback_to_snapshot(s[2]).commit()
    table.manage_snapshots().create_tag(s[3], "audit-2026").commit()
    table.manage_snapshots().create_branch(s[0], "dev").commit()
    preview, left = await expire_last(iceberg_lake, tmp_path, "sales.expire_refs", "last 2")
    assert snapshot_ids(preview) == [s[4]]
    assert left == sorted(s[:4])


@pytest.mark.parametrize("value, expected", [
    ("last 1", [0, 2, 3]),  # the current one only: its ancestor and the two unreferenced go
    ("last 5", [2, 3]),  # more than the current history holds: only the unreferenced go
])
async def test_keep_last_n_near_variants(iceberg_lake, tmp_path, value, expected):
    ident = f"sales.expire_{value.replace(' ', '_')}"
    table = iceberg_lake.make_table(ident, [orders_batch(i * 10, 10) for i in range(4)])
    s = [snap.snapshot_id for snap in table.snapshots()]
    table.manage_snapshots().rollback_to_snapshot(s[1]).commit()
    preview, left = await expire_last(iceberg_lake, tmp_path, ident, value)
    assert snapshot_ids(preview) == [s[i] for i in expected]
    assert left == sorted(set(s) - {s[i] for i in expected})
    assert iceberg_lake.table(ident).metadata.current_snapshot_id == s[1]


async def test_keep_last_n_without_a_rollback_expires_the_oldest(iceberg_lake, tmp_path):
    table = iceberg_lake.make_table("sales.expire_linear", [orders_batch(i * 10, 10) for i in range(4)])
    s = [snap.snapshot_id for snap in table.snapshots()]
    preview, left = await expire_last(iceberg_lake, tmp_path, "sales.expire_linear", "keep last 2")
    assert snapshot_ids(preview) == s[:2] and not any("unreferenced" in line for line in preview)
    assert left == sorted(s[2:])


async def test_expire_refuses_when_the_table_changed_since_the_preview(iceberg_lake, tmp_path):
    table = iceberg_lake.make_table("sales.expire_race", [orders_batch(i * 10, 10) for i in range(3)])
    engine = engine_for(iceberg_lake, tmp_path)
    await rows_of(engine)
    source = engine.sources[CATALOG]
    action = source.with_value(engine.find_action("lake:sales.expire_race", "expire"), "last 1")
    assert len(await source.preview(action)) == 2
    table.append(orders_batch(100, 1))  # someone commits in between
    result = await engine.run_action(action, lambda line: None)
    assert not result.ok and "sales.expire_race changed since the preview" in result.error
    assert len(iceberg_lake.table("sales.expire_race").snapshots()) == 4  # nothing expired
    assert audit(tmp_path)[-1]["event"] == "failed"


async def test_rollback_to_an_ancestor_and_refused_for_a_non_ancestor(iceberg_lake, tmp_path):
    table = iceberg_lake.make_table("sales.rollback", [orders_batch(0, 3), orders_batch(3, 4), orders_batch(7, 5)])
    snaps = [s.snapshot_id for s in table.snapshots()]
    engine = engine_for(iceberg_lake, tmp_path)
    await rows_of(engine)
    source = engine.sources[CATALOG]
    listing = await source.open(("sales.rollback",))
    items = {i.name: i for i in listing.items}
    assert [a.id for a in engine.item_actions(CATALOG, items[str(snaps[2])])] == ["tag"]  # the current one
    action = next(a for a in engine.item_actions(CATALOG, items[str(snaps[0])]) if a.id == "rollback")
    assert action.tier is Tier.DESTRUCTIVE and action.confirm == "sales.rollback"
    assert action.target == "lake:sales.rollback" and action.describe() == f"roll back sales.rollback to snapshot {snaps[0]}"
    preview = await source.preview(action)
    assert preview[0].startswith(f"sales.rollback: current snapshot {snaps[2]} (")
    assert f"→ snapshot {snaps[0]} (" in preview[0] and len(preview) == 3
    result = await engine.run_action(action, lambda line: None)
    assert result.ok, result.error
    after = iceberg_lake.table("sales.rollback")
    assert after.metadata.current_snapshot_id == snaps[0]
    assert sorted(after.scan().to_arrow().column("id").to_pylist()) == [0, 1, 2]
    # snaps[2] is no longer in the current history: refused, with the reason, in the preview and in the run
    relisted = {i.name: i for i in (await source.open(("sales.rollback",))).items}
    assert relisted[str(snaps[2])].note.endswith("not in the current history")
    stale = next(a for a in engine.item_actions(CATALOG, relisted[str(snaps[2])]) if a.id == "rollback")
    with pytest.raises(PipelineError, match=f"snapshot {snaps[2]} is not an ancestor of the current snapshot"):
        await source.preview(stale)
    result = await engine.run_action(stale, lambda line: None)
    assert not result.ok and "not an ancestor" in result.error
    assert iceberg_lake.table("sales.rollback").metadata.current_snapshot_id == snaps[0]
    assert [e["event"] for e in audit(tmp_path)[-2:]] == ["confirmed", "failed"]


async def test_tag_the_current_snapshot_and_refuse_a_duplicate(iceberg_lake, tmp_path):
    table = iceberg_lake.make_table("sales.tagged", [orders_batch(0, 2), orders_batch(2, 2)])
    engine = engine_for(iceberg_lake, tmp_path)
    await rows_of(engine)
    source = engine.sources[CATALOG]
    action = source.with_value(engine.find_action("lake:sales.tagged", "tag"), "release-1")
    assert await source.preview(action) is None
    assert (await engine.run_action(action, lambda line: None)).ok
    refs = iceberg_lake.table("sales.tagged").metadata.refs
    assert refs["release-1"].snapshot_id == table.metadata.current_snapshot_id
    assert refs["release-1"].snapshot_ref_type.value == "tag"
    again = await engine.run_action(action, lambda line: None)
    assert not again.ok and again.error == "sales.tagged already has a tag or branch named release-1"
    assert audit(tmp_path)[-1]["command"] == f"create tag release-1 on snapshot {table.metadata.current_snapshot_id} " \
                                             f"of sales.tagged"


async def test_read_only_catalog_refuses_destructive_actions(iceberg_lake, tmp_path):
    iceberg_lake.make_table("sales.guarded", [orders_batch(0, 2), orders_batch(2, 2)])
    engine = engine_for(iceberg_lake, tmp_path, read_only=True)
    await rows_of(engine)
    assert engine.actions_for("lake:sales.guarded") == []
    action = engine.find_action("lake:sales.guarded", "expire")
    assert "read-only" in engine.refusal(action)


async def test_a_sql_catalog_on_postgresql(postgres, tmp_path):
    """The `sql` kind on a real PostgreSQL: the same rows as on SQLite."""
    from pyiceberg.catalog.sql import SqlCatalog

    postgres.psql("CREATE DATABASE lakecat")
    uri = f"postgresql+psycopg2://postgres@127.0.0.1:{postgres.port}/lakecat"
    warehouse = f"file://{tmp_path / 'warehouse'}"
    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog("pglake", uri=uri, warehouse=warehouse)
    catalog.create_namespace("sales")
    table = catalog.create_table("sales.orders", schema=orders_batch(0, 1).schema)
    for start in (0, 10, 20):
        table.append(orders_batch(start, 10))
    engine = Engine(parse(yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "tables": [
        {"name": "pglake", "uri": uri, "warehouse": warehouse, "timeout": "20s", "refresh": "60s"}]}), "t.yaml", {}))
    engine.build()
    update = await engine.poll_once("pglake")
    rows = {r.key: r for r in update.readings}
    orders = rows["pglake:sales.orders"]
    assert (orders.state, orders.records, orders.snapshots) == (State.OK, 30, 3), orders.reason
    await engine.stop()
