"""The Iceberg catalog adapter's ``rest`` kind, through the engine, against the stand-in REST catalog of
tests/iceberg_rest_server.py: the spec's routes and shapes over the real SQL catalog of tests/conftest_iceberg.py.
Figures are compared with what the SQL catalog holds, and expire / roll back / tag are checked through it after
they went through REST."""

from __future__ import annotations

import json
import socket
import time

import pytest
from conftest_iceberg import CATALOG, orders_batch
from helpers import config_for
from iceberg_rest_server import IcebergRestStandIn, iceberg_rest  # noqa: F401  (fixture)

from backends.adapters.pipeline_base import PipelineError
from backends.engine import Engine
from backends.model import State, TableReading

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"  # what the iceberg_rest fixture requires


def engine_for(server: IcebergRestStandIn, tmp_path, clock=time.time, token: str | None = TOKEN,
               **options) -> Engine:
    item = {"name": CATALOG, "uri": server.url, "warehouse": "analytics", **options}
    if token is not None:
        item["token"] = token
    config = config_for("tables", "rest", root={"audit_log": str(tmp_path / "audit.jsonl")}, **item)
    engine = Engine(config, clock=clock)
    engine.build()
    engine.sources[CATALOG].clock = clock
    return engine


async def rows_of(engine: Engine) -> dict[str, TableReading]:
    update = await engine.poll_once(CATALOG)
    for reading in update.readings:
        assert "\n" not in reading.reason and len(reading.reason) <= 200
    return {r.key: r for r in update.readings}


def commits(server: IcebergRestStandIn, table: str) -> list[dict]:
    """The CommitTableRequest bodies the stand-in received for ``table``."""
    return [r.body for r in server.sent("POST", f"/namespaces/sales/tables/{table}")]


async def test_rows_carry_the_figures_the_sql_catalog_has(iceberg_lake, iceberg_rest, tmp_path):
    rows = await rows_of(engine_for(iceberg_rest, tmp_path))
    assert {"lake:sales.orders", "lake:sales.empty", "lake:sales.events", "lake:other.misc"} <= set(rows)
    for key, row in rows.items():
        table = iceberg_lake.table(row.table)
        current = table.current_snapshot()
        assert row.catalog == CATALOG and row.snapshots == len(table.snapshots()), key
        if current is None:
            assert (row.state, row.reason, row.snapshot_id, row.records) == (State.WARN, "no snapshot yet", None, None)
            continue
        summary = current.summary
        assert row.state is State.OK, row.reason
        assert row.snapshot_id == current.snapshot_id
        assert row.snapshot_at == pytest.approx(current.timestamp_ms / 1000)
        assert (row.records, row.data_files, row.data_bytes) == (
            int(summary["total-records"]), int(summary["total-data-files"]), int(summary["total-files-size"]))
    assert (rows["lake:sales.orders"].records, rows["lake:sales.orders"].data_files,
            rows["lake:sales.orders"].snapshots) == (30, 3, 3)
    assert rows["lake:sales.events"].reason.endswith("compaction would help")
    # what went over the wire: the config first (with the warehouse asked for), then the prefix the config
    # gave, every request with the token
    sent = iceberg_rest.sent()
    assert sent[0].path == "/v1/config" and sent[0].query == {"warehouse": ["analytics"]}
    assert all(r.authorization == f"Bearer {TOKEN}" for r in sent)
    assert all(r.path.startswith("/v1/lake/") for r in sent[1:])
    assert len(iceberg_rest.sent("GET", "/v1/lake/namespaces")) == 1
    assert len(iceberg_rest.sent("GET", "/namespaces/sales/tables/orders")) == 1


async def test_namespaces_limit_the_listing_and_every_poll_loads_again(iceberg_lake, iceberg_rest, tmp_path):
    engine = engine_for(iceberg_rest, tmp_path, namespaces=["other"])
    rows = await rows_of(engine)
    assert [k for k in rows] == ["lake:other.misc"]
    assert iceberg_rest.sent("GET", "/v1/lake/namespaces") == []  # the configured namespace, not a listing
    iceberg_lake.table("other.misc").append(orders_batch(100, 3))  # committed straight to the SQL catalog
    rows = await rows_of(engine)
    assert rows["lake:other.misc"].records == 5 and rows["lake:other.misc"].snapshots == 2
    assert len(iceberg_rest.sent("GET", "/namespaces/other/tables/misc")) == 2


async def test_snapshot_history_through_rest(iceberg_lake, iceberg_rest, tmp_path):
    table = iceberg_lake.make_table("sales.rest_history", [orders_batch(0, 4), orders_batch(4, 6)])
    first = table.snapshots()[0].snapshot_id
    table.manage_snapshots().create_tag(first, "v1").commit()
    source = engine_for(iceberg_rest, tmp_path).sources[CATALOG]
    listing = await source.open(("sales.rest_history",))
    assert [i.name for i in listing.items] == [str(s.snapshot_id) for s in reversed(table.snapshots())]
    assert [i.note for i in listing.items] == ["+6 records, +1 file · branch main", "+4 records, +1 file · tag v1"]
    with pytest.raises(PipelineError) as caught:
        await source.open(("sales.nope",))
    assert str(caught.value) == "cannot load sales.nope: NoSuchTableError: NoSuchTableException: Table does not " \
                                "exist: sales.nope"


async def test_expire_through_rest_expires_exactly_what_the_preview_listed(iceberg_lake, iceberg_rest, tmp_path):
    table = iceberg_lake.make_table("sales.rest_expire", [orders_batch(i * 10, 10) for i in range(5)])
    snaps = [s.snapshot_id for s in table.snapshots()]
    table.manage_snapshots().create_tag(snaps[1], "keep-me").commit()
    later = table.snapshots()[-1].timestamp_ms / 1000 + 8 * 86400  # every snapshot older than 7d
    engine = engine_for(iceberg_rest, tmp_path, clock=lambda: later)
    await rows_of(engine)
    source = engine.sources[CATALOG]
    action = source.with_value(engine.find_action("lake:sales.rest_expire", "expire"), "7d")
    preview = [int(line.split()[1]) for line in await source.preview(action)]
    assert preview == [snaps[0], snaps[2], snaps[3]]  # not the tag, not the current one
    out: list[str] = []
    result = await engine.run_action(action, out.append)
    assert result.ok, result.error
    assert out[-1] == "sales.rest_expire: expired 3 snapshots; 2 left"
    after = iceberg_lake.table("sales.rest_expire")  # the SQL catalog: really gone
    assert [s.snapshot_id for s in after.snapshots()] == [snaps[1], snaps[4]]
    assert set(snaps) - {s.snapshot_id for s in after.snapshots()} == set(preview)
    (commit,) = commits(iceberg_rest, "rest_expire")
    (update,) = commit["updates"]
    assert update["action"] == "remove-snapshots" and sorted(update["snapshot-ids"]) == sorted(preview)


async def test_rollback_through_rest(iceberg_lake, iceberg_rest, tmp_path):
    table = iceberg_lake.make_table("sales.rest_rollback", [orders_batch(0, 3), orders_batch(3, 4),
                                                           orders_batch(7, 5)])
    snaps = [s.snapshot_id for s in table.snapshots()]
    engine = engine_for(iceberg_rest, tmp_path)
    await rows_of(engine)
    source = engine.sources[CATALOG]
    items = {i.name: i for i in (await source.open(("sales.rest_rollback",))).items}
    action = next(a for a in engine.item_actions(CATALOG, items[str(snaps[0])]) if a.id == "rollback")
    preview = await source.preview(action)
    assert preview[0].startswith(f"sales.rest_rollback: current snapshot {snaps[2]} (") and len(preview) == 3
    result = await engine.run_action(action, lambda line: None)
    assert result.ok, result.error
    after = iceberg_lake.table("sales.rest_rollback")
    assert after.metadata.current_snapshot_id == snaps[0]
    assert sorted(after.scan().to_arrow().column("id").to_pylist()) == [0, 1, 2]
    (commit,) = commits(iceberg_rest, "rest_rollback")
    assert {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": snaps[2]} in commit["requirements"]
    assert commit["updates"] == [{"action": "set-snapshot-ref", "ref-name": "main", "type": "branch",
                                  "snapshot-id": snaps[0]}]
    assert (await rows_of(engine))["lake:sales.rest_rollback"].records == 3


async def test_tag_through_rest_and_a_duplicate_refused(iceberg_lake, iceberg_rest, tmp_path):
    table = iceberg_lake.make_table("sales.rest_tagged", [orders_batch(0, 2), orders_batch(2, 2)])
    current = table.metadata.current_snapshot_id
    engine = engine_for(iceberg_rest, tmp_path)
    await rows_of(engine)
    source = engine.sources[CATALOG]
    action = source.with_value(engine.find_action("lake:sales.rest_tagged", "tag"), "release-1")
    assert (await engine.run_action(action, lambda line: None)).ok
    ref = iceberg_lake.table("sales.rest_tagged").metadata.refs["release-1"]
    assert (ref.snapshot_id, ref.snapshot_ref_type.value) == (current, "tag")
    again = await engine.run_action(action, lambda line: None)
    assert not again.ok and again.error == "sales.rest_tagged already has a tag or branch named release-1"
    assert len(commits(iceberg_rest, "rest_tagged")) == 1
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert TOKEN not in json.dumps(entries)


async def test_the_stand_in_enforces_commit_requirements(iceberg_lake, iceberg_rest):
    """A stale commit is refused with 409, as a real catalog refuses it, and changes nothing."""
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.exceptions import CommitFailedException

    table = iceberg_lake.make_table("sales.rest_stale", [orders_batch(0, 2), orders_batch(2, 2)])
    first = table.snapshots()[0].snapshot_id
    stale = RestCatalog("lake", uri=iceberg_rest.url, token=TOKEN).load_table("sales.rest_stale")
    table.append(orders_batch(4, 2))  # someone commits after the load
    with pytest.raises(CommitFailedException, match="CommitFailedException: Requirement failed: branch main"):
        stale.manage_snapshots().rollback_to_snapshot(first).commit()
    assert iceberg_lake.table("sales.rest_stale").metadata.current_snapshot_id == table.metadata.current_snapshot_id


@pytest.mark.parametrize("token", ["wrong-token", None])
async def test_a_refused_token_is_one_unknown_row(iceberg_rest, tmp_path, token):
    rows = list((await rows_of(engine_for(iceberg_rest, tmp_path, token=token))).values())
    assert len(rows) == 1 and rows[0].state is State.UNKNOWN and rows[0].key == CATALOG
    assert rows[0].reason == "cannot read the catalog: the catalog refused the token (401): NotAuthorizedException: " \
                             "Not authorized to make this request"
    assert [(r.path, r.authorization) for r in iceberg_rest.sent()] == [("/v1/config", f"Bearer {token}")]


async def test_an_unreachable_catalog_is_one_unknown_row(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    class Nowhere:
        url = f"http://127.0.0.1:{port}"

    rows = list((await rows_of(engine_for(Nowhere, tmp_path))).values())
    assert len(rows) == 1 and rows[0].state is State.UNKNOWN and rows[0].key == CATALOG
    assert rows[0].reason == f"cannot read the catalog: connection refused on 127.0.0.1:{port} — is the service running?"


@pytest.mark.parametrize("case", ["wrong token", "unreachable"])
async def test_the_reason_says_the_catalog_refused(iceberg_rest, tmp_path, case):
    if case == "wrong token":
        rows = await rows_of(engine_for(iceberg_rest, tmp_path, token="wrong-token"))
        assert "401" in rows[CATALOG].reason and "refused" in rows[CATALOG].reason
    else:
        iceberg_rest.stop()  # the same URL, nothing listening any more
        rows = await rows_of(engine_for(iceberg_rest, tmp_path))
        assert "connection refused on 127.0.0.1:" in rows[CATALOG].reason
