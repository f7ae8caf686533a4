"""Data checks with DuckDB: row count bounds, null fractions, key uniqueness, freshness of a timestamp column.

A check reads at most ``limit`` rows of an Iceberg table (a pyiceberg scan handed to DuckDB as Arrow) or of a
Parquet/CSV file or glob, into an in-memory DuckDB table named ``data``, and judges it. DuckDB, pyarrow and
pyiceberg are imported inside the functions: they run in a worker thread, never on the first paint.

Every check yields ``(ok, detail)`` with a one-line detail; an unreadable file, a missing table or a missing
column is a failed check with its reason, never an exception. Column names come from the config and are
quoted as identifiers; paths and limits are passed as query parameters.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from .durations import format_duration
from .text import one_line

Verdict = tuple[bool, str]
DATA = "data"  # the DuckDB table a check's rows are loaded into
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")


def quote(identifier: str) -> str:
    """A column name as a DuckDB identifier, whatever characters it holds."""
    return '"' + identifier.replace('"', '""') + '"'


def check_name(check: Mapping[str, Any]) -> str:
    """The name a check is shown under: its own, else its table, else its path's file name."""
    return check.get("name") or check.get("table") or os.path.basename(str(check.get("path") or "")) or "check"


def describe(check: Mapping[str, Any]) -> str:
    """What a check checks, in one line: ``rows 1..; nulls user_id <= 1%; unique (id); fresh ts <= 2h``."""
    parts = []
    rows = check.get("rows")
    if rows:
        parts.append(f"rows {_bounds(rows)}")
    for column, fraction in (check.get("nulls") or {}).items():
        parts.append(f"nulls {column} <= {_percent(fraction)}")
    if check.get("unique"):
        parts.append(f"unique ({', '.join(check['unique'])})")
    fresh = check.get("fresh")
    if fresh:
        parts.append(f"fresh {fresh['column']} <= {format_duration(fresh['max_age'])}")
    target = check.get("table") or check.get("path") or ""
    return one_line(f"{target}: " + "; ".join(parts))


def _bounds(rows: Mapping[str, Any]) -> str:
    low, high = rows.get("min"), rows.get("max")
    return f"{'' if low is None else f'{low:,}'}..{'' if high is None else f'{high:,}'}"


def _percent(fraction: float) -> str:
    value = fraction * 100
    return f"{value:.0f}%" if value == int(value) else f"{value:.2g}%"


# -- judging rows already loaded into DuckDB -------------------------------------------------------------

def judge(con: Any, check: Mapping[str, Any], now: float) -> list[Verdict]:
    """Every condition of ``check`` over the table ``data`` of the DuckDB connection ``con``."""
    columns = [d[0] for d in con.execute(f"SELECT * FROM {DATA} LIMIT 0").description]
    total = con.execute(f"SELECT count(*) FROM {DATA}").fetchall()[0][0]
    verdicts: list[Verdict] = []
    if check.get("rows"):
        verdicts.append(rows_verdict(total, check["rows"], check.get("limit")))
    for column, most in (check.get("nulls") or {}).items():
        verdicts.append(_guarded(columns, [column], lambda c=column, m=most: nulls_verdict(con, c, m, total)))
    if check.get("unique"):
        keys = list(check["unique"])
        verdicts.append(_guarded(columns, keys, lambda: unique_verdict(con, keys)))
    fresh = check.get("fresh")
    if fresh:
        verdicts.append(_guarded(columns, [fresh["column"]],
                                 lambda: fresh_verdict(con, fresh["column"], fresh["max_age"], now)))
    return verdicts


def _guarded(columns: list[str], wanted: list[str], verdict: Callable[[], Verdict]) -> Verdict:
    missing = [c for c in wanted if c not in columns]
    if missing:
        shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
        return False, one_line(f"no column {', '.join(missing)} (columns: {shown or 'none'})")
    try:
        return verdict()
    except Exception as exc:  # a type DuckDB cannot judge (a text "timestamp") is a failed check, not a crash
        return False, one_line(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def rows_verdict(total: int, bounds: Mapping[str, Any], limit: int | None = None) -> Verdict:
    low, high = bounds.get("min"), bounds.get("max")
    shown = f"{total:,}" + ("+" if limit is not None and total >= limit else "")  # the limit cut the count
    if low is not None and total < low:
        return False, f"rows {shown} < min {low:,}"
    if high is not None and total > high:
        return False, f"rows {shown} > max {high:,}"
    return True, f"rows {shown} within {_bounds(bounds)}"


def nulls_verdict(con: Any, column: str, most: float, total: int) -> Verdict:
    nulls = con.execute(f"SELECT count(*) FROM {DATA} WHERE {quote(column)} IS NULL").fetchall()[0][0]
    fraction = nulls / total if total else 0.0
    shown = f"nulls {column} {fraction * 100:.1f}%"
    if fraction > most:
        return False, f"{shown} > {_percent(most)} ({nulls:,} of {total:,} rows)"
    return True, f"{shown} <= {_percent(most)}"


def unique_verdict(con: Any, keys: list[str]) -> Verdict:
    cols = ", ".join(quote(k) for k in keys)
    found = con.execute(f"SELECT count(*), min(k) FROM (SELECT CAST(({cols}) AS VARCHAR) AS k FROM {DATA} "
                        f"GROUP BY {cols} HAVING count(*) > 1)").fetchall()[0]
    shown = f"unique ({', '.join(keys)})"
    if found[0]:
        return False, one_line(f"{shown}: {found[0]:,} duplicated key{'s' if found[0] != 1 else ''}, e.g. {found[1]}")
    return True, f"{shown} ok"


def fresh_verdict(con: Any, column: str, max_age: float, now: float) -> Verdict:
    """The newest value of a timestamp (or date) column; a timestamp without a zone is read as UTC."""
    kind = con.execute(f"SELECT typeof({quote(column)}) FROM {DATA} LIMIT 1").fetchall()
    if kind and not kind[0][0].startswith(("TIMESTAMP", "DATE")):
        return False, f"{column} is {kind[0][0]}, not a timestamp"
    newest = con.execute(f"SELECT epoch(max({quote(column)})) FROM {DATA}").fetchall()[0][0]
    if newest is None:
        return False, f"freshest {column}: no values"
    age = now - float(newest)
    shown = f"freshest {column} {format_duration(age)} ago" if age >= 0 else f"freshest {column} in the future"
    if age > max_age:
        return False, f"{shown} > {format_duration(max_age)}"
    return True, f"{shown} <= {format_duration(max_age)}"


# -- loading and running ---------------------------------------------------------------------------

def load_path(con: Any, path: str, limit: int) -> None:
    """Parquet or CSV (by its suffix; a glob is fine) into ``data``, at most ``limit`` rows."""
    reader = "read_csv_auto" if path.lower().endswith(CSV_SUFFIXES) else "read_parquet"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {DATA} AS SELECT * FROM {reader}($1) LIMIT $2", [path, limit])


def load_arrow(con: Any, arrow_table: Any) -> None:
    """Arrow rows (a pyiceberg scan's) into ``data``."""
    con.register("scan_rows", arrow_table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {DATA} AS SELECT * FROM scan_rows")
    con.unregister("scan_rows")


def run_check(check: Mapping[str, Any], now: float, load_table: Callable[[str], Any] | None = None) -> list[Verdict]:
    """Run one check (a ``DATA_CHECK`` of the config). ``load_table(name)`` gives a pyiceberg table of the
    catalog (needed for ``table:`` checks). Blocking: call it in a worker thread."""
    import duckdb

    limit = int(check.get("limit") or 1_000_000)
    con = duckdb.connect()
    try:
        try:
            if check.get("path"):
                load_path(con, str(check["path"]), limit)
            else:
                if load_table is None:
                    return [(False, "table checks need a catalog")]
                load_arrow(con, load_table(check["table"]).scan(limit=limit).to_arrow())
        except Exception as exc:
            return [(False, one_line(f"cannot read {check.get('path') or check.get('table')}: "
                                     f"{_error_text(exc)}"))]
        return judge(con, check, now)
    finally:
        con.close()


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # DuckDB's IO errors open with their class ("IO Error: No files found that match the pattern ..."): keep it
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def verdict_line(verdicts: list[Verdict]) -> tuple[bool, str]:
    """All passed, and the reason: every detail when all passed, else the failed ones first."""
    failed = [d for ok, d in verdicts if not ok]
    passed = [d for ok, d in verdicts if ok]
    if failed:
        return False, one_line("; ".join(failed + passed))
    return True, one_line("; ".join(passed) or "nothing to check")
