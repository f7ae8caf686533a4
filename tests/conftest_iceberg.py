"""A real pyiceberg SQL catalog on SQLite in a temporary directory, with real tables and snapshots, and Parquet
and CSV files for path checks. Local files only: nothing here touches the network."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CATALOG = "lake"  # the catalog_name the tables are created under; the tests' source has the same name
NOW_US = int(time.time() * 1_000_000)


def orders_batch(start: int, count: int, null_users: int = 0, age_s: float = 60.0) -> Any:
    """Rows of sales.orders: unique ids from ``start``, a user id (the first ``null_users`` null), a UTC time."""
    import pyarrow as pa

    users = [None if i < null_users else 1000 + i for i in range(count)]
    ts = [NOW_US - int(age_s * 1_000_000) + i for i in range(count)]
    return pa.table({"id": pa.array(range(start, start + count), pa.int64()), "user_id": pa.array(users, pa.int64()),
                     "ts": pa.array(ts, pa.timestamp("us", tz="UTC"))})


@dataclass
class IcebergLake:
    root: Path
    uri: str
    warehouse: str
    parquet: Path
    csv: Path
    catalog: Any = field(repr=False, default=None)

    def table(self, ident: str) -> Any:
        return self.catalog.load_table(ident)

    def make_table(self, ident: str, batches: list[Any]) -> Any:
        """A fresh table with one snapshot per batch (for tests that change it)."""
        table = self.catalog.create_table(ident, schema=batches[0].schema)
        for batch in batches:
            table.append(batch)
        return table

    def source(self, **options: Any) -> dict[str, Any]:
        """A ``tables:`` item for this catalog."""
        return {"name": CATALOG, "uri": self.uri, "warehouse": self.warehouse, **options}


@pytest.fixture(scope="module")
def iceberg_lake(tmp_path_factory) -> Iterator[IcebergLake]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from pyiceberg.catalog.sql import SqlCatalog

    root = tmp_path_factory.mktemp("iceberg")
    (root / "warehouse").mkdir()
    lake = IcebergLake(root, f"sqlite:///{root}/catalog.db", f"file://{root}/warehouse",
                       root / "files" / "orders.parquet", root / "files" / "orders.csv")
    lake.catalog = SqlCatalog(CATALOG, uri=lake.uri, warehouse=lake.warehouse)
    lake.catalog.create_namespace("sales")
    lake.catalog.create_namespace("other")
    # three appends: 3 snapshots, 30 rows, 3 files; user_id null in 2 of 30
    lake.make_table("sales.orders", [orders_batch(0, 10, null_users=2), orders_batch(10, 10), orders_batch(20, 10)])
    lake.catalog.create_table("sales.empty", schema=orders_batch(0, 1).schema)
    # twenty one-row appends: many tiny files, the compaction hint
    lake.make_table("sales.events", [orders_batch(i, 1) for i in range(20)])
    lake.make_table("other.misc", [orders_batch(0, 2)])

    (root / "files").mkdir()
    rows = pa.concat_tables([orders_batch(0, 50, null_users=5, age_s=7200), orders_batch(49, 1, age_s=7200)])  # id 49 twice
    pq.write_table(rows, lake.parquet)
    pacsv.write_csv(rows.set_column(2, "ts", pa.array([str(v) for v in rows.column("ts").to_pylist()])), lake.csv)
    yield lake
    lake.catalog.engine.dispose()
