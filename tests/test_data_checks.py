"""Data checks with DuckDB: each kind passing and failing, on Parquet, CSV and a real Iceberg table (through a
pyiceberg scan as Arrow), a missing column, a bad path, and check rows in the adapter and `lakedeck check`."""

from __future__ import annotations

import io
import time

import pytest
from conftest_iceberg import CATALOG
from helpers import config_for

from backends.check import run_check as lakedeck_check
from backends.data_checks import describe, quote, run_check, verdict_line
from backends.engine import Engine
from backends.model import State

pytestmark = pytest.mark.integration
NOW = time.time()


def test_identifiers_are_quoted():
    assert quote('we"ird col') == '"we""ird col"'


def test_description_is_one_line():
    check = {"table": "sales.orders", "rows": {"min": 1}, "nulls": {"user_id": 0.01}, "unique": ["id"],
             "fresh": {"column": "ts", "max_age": 7200.0}}
    assert describe(check) == "sales.orders: rows 1..; nulls user_id <= 1%; unique (id); fresh ts <= 2h00m"


@pytest.mark.parametrize("which", ["parquet", "csv"])
def test_each_kind_passes_on_a_file(iceberg_lake, which):
    path = str(getattr(iceberg_lake, which))
    verdicts = run_check({"path": path, "rows": {"min": 10, "max": 100}, "nulls": {"user_id": 0.2},
                          "unique": ["id", "ts"], "fresh": {"column": "ts", "max_age": 3 * 3600.0}}, NOW)
    assert all(ok for ok, _ in verdicts), verdicts
    details = [d for _, d in verdicts]
    assert details[0] == "rows 51 within 10..100"
    assert details[1] == "nulls user_id 9.8% <= 20%"
    assert details[2] == "unique (id, ts) ok"
    assert details[3].startswith("freshest ts 2h0") and details[3].endswith("<= 3h00m")


def test_each_kind_fails_on_a_file(iceberg_lake):
    verdicts = run_check({"path": str(iceberg_lake.parquet), "rows": {"min": 100}, "nulls": {"user_id": 0.05},
                          "unique": ["id"], "fresh": {"column": "ts", "max_age": 3600.0}}, NOW)
    assert [ok for ok, _ in verdicts] == [False, False, False, False]
    details = [d for _, d in verdicts]
    assert details[0] == "rows 51 < min 100"
    assert details[1] == "nulls user_id 9.8% > 5% (5 of 51 rows)"
    assert details[2] == "unique (id): 1 duplicated key, e.g. 49"
    assert details[3].startswith("freshest ts 2h0") and details[3].endswith("> 1h00m")
    ok, reason = verdict_line(verdicts)
    assert not ok and reason.startswith("rows 51 < min 100; nulls user_id")


def test_rows_over_the_max_and_the_limit(iceberg_lake):
    assert run_check({"path": str(iceberg_lake.parquet), "rows": {"max": 50}}, NOW) == [(False, "rows 51 > max 50")]
    assert run_check({"path": str(iceberg_lake.parquet), "limit": 10, "rows": {"min": 1}}, NOW) == \
           [(True, "rows 10+ within 1..")]


def test_a_missing_column_and_a_text_column_fail_with_the_reason(iceberg_lake):
    verdicts = run_check({"path": str(iceberg_lake.parquet), "nulls": {"nope": 0.1}, "unique": ["id", 'x"y'],
                          "fresh": {"column": "user_id", "max_age": 60.0}}, NOW)
    assert verdicts == [(False, "no column nope (columns: id, user_id, ts)"),
                        (False, 'no column x"y (columns: id, user_id, ts)'),
                        (False, "user_id is BIGINT, not a timestamp")]


def test_a_bad_path_is_a_failed_check(tmp_path):
    verdicts = run_check({"path": str(tmp_path / "missing-*.parquet"), "rows": {"min": 1}}, NOW)
    assert len(verdicts) == 1 and not verdicts[0][0]
    assert verdicts[0][1].startswith(f"cannot read {tmp_path}/missing-*.parquet: IOException: ")
    (tmp_path / "junk.parquet").write_text("not parquet")
    ok, detail = run_check({"path": str(tmp_path / "junk.parquet"), "rows": {"min": 1}}, NOW)[0]
    assert not ok and detail.startswith(f"cannot read {tmp_path}/junk.parquet: ")


def test_an_iceberg_table_through_a_scan(iceberg_lake):
    check = {"table": "sales.orders", "rows": {"min": 30, "max": 30}, "nulls": {"user_id": 0.1}, "unique": ["id"],
             "fresh": {"column": "ts", "max_age": 3600.0}}
    verdicts = run_check(check, NOW, iceberg_lake.catalog.load_table)
    assert all(ok for ok, _ in verdicts), verdicts
    assert [d for _, d in verdicts][:3] == ["rows 30 within 30..30", "nulls user_id 6.7% <= 10%", "unique (id) ok"]
    missing = run_check({"table": "sales.nope", "rows": {"min": 1}}, NOW, iceberg_lake.catalog.load_table)
    assert missing == [(False, "cannot read sales.nope: NoSuchTableError: Table does not exist: sales.nope")]


def _checks(lake):
    return [{"name": "orders ok", "table": "sales.orders", "rows": {"min": 1}, "unique": "id"},
            {"path": str(lake.parquet), "unique": ["id"]},
            {"name": "empty", "table": "sales.empty", "rows": {"min": 1}}]


async def test_check_rows_in_the_adapter_and_their_rhythm(iceberg_lake, tmp_path, monkeypatch):
    config = config_for("tables", "sql", **iceberg_lake.source(namespaces="other", checks=_checks(iceberg_lake)))
    engine = Engine(config)
    engine.build()
    source = engine.sources[CATALOG]
    rows = {r.key: r for r in (await engine.poll_once(CATALOG)).readings}
    ok, dup, empty = rows["lake:check:orders ok"], rows["lake:check:orders.parquet"], rows["lake:check:empty"]
    assert ok.state is State.OK and ok.reason == "rows 30 within 1..; unique (id) ok"
    assert ok.check == "sales.orders: rows 1..; unique (id)" and ok.table == "orders ok"
    assert dup.state is State.CRITICAL and dup.reason == "unique (id): 1 duplicated key, e.g. 49"
    assert empty.state is State.CRITICAL and empty.reason == "rows 0 < min 1"
    assert rows["lake:other.misc"].records >= 2  # the tables are there too
    runs = []
    real = source._run_checks
    monkeypatch.setattr(source, "_run_checks", lambda now: runs.append(now) or real(now))
    for _ in range(4):  # the next four polls reuse the verdicts
        again = {r.key: r for r in (await engine.poll_once(CATALOG)).readings}
        assert again["lake:check:orders ok"] == ok
    assert runs == []
    await engine.poll_once(CATALOG)  # the fifth runs them again
    assert len(runs) == 1


def test_lakedeck_check_lists_tables_and_checks(iceberg_lake, tmp_path):
    config = config_for("tables", "sql", **iceberg_lake.source(namespaces="sales", checks=_checks(iceberg_lake)))
    out = io.StringIO()
    code = lakedeck_check(config, out)
    text = out.getvalue()
    assert code == 2  # the failing checks
    assert "lake:sales.orders" in text and "lake:check:orders.parquet" in text
    assert "unique (id): 1 duplicated key, e.g. 49" in text
