"""10. Backup throughput: a files job against plain `tar czf`, a postgres job against plain `pg_dump -Fc`.

    python bench/backups.py [--quick]

The files job archives a tree of mixed files (CSV text, random bytes that do not compress, many small files)
with Python's tarfile at gzip level 6 and hashes the archive as it is written; `tar czf` (GNU tar with gzip
at its default level 6) archives the same paths. The postgres job runs pg_dump -Fc into a set and hashes it;
the baseline is the same pg_dump -Fc into a plain file, on the same database of a real PostgreSQL 15 on
loopback. Both jobs fsync the set and write a manifest; the baselines do not. The ratio is the cost of what
lakedeck adds (hashing, manifests, fsync, and Python's tarfile instead of GNU tar).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import OUT, Row, Section, listing, median, ratio

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def make_tree(root: Path, megabytes: int) -> int:
    """About ``megabytes`` MB: 45% CSV text, 45% random bytes, 10% small files of 4 KB."""
    if root.exists():
        shutil.rmtree(root)
    (root / "csv").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "small").mkdir()
    chunk = 8 * 1024 * 1024
    text_bytes = random_bytes = megabytes * 1024 * 1024 * 45 // 100
    row = 0
    for index in range(max(1, text_bytes // chunk)):
        lines = []
        size = 0
        while size < chunk:
            line = f"{row},customer_{row % 9973},{row * 1.25:.2f},2026-11-{row % 28 + 1:02d},ok\n"
            lines.append(line)
            size += len(line)
            row += 1
        (root / "csv" / f"part-{index}.csv").write_text("".join(lines))
    for index in range(max(1, random_bytes // chunk)):
        (root / "bin" / f"blob-{index}.bin").write_bytes(os.urandom(chunk))
    for index in range(megabytes * 1024 * 1024 // 10 // 4096):
        (root / "small" / f"f{index}.json").write_bytes(os.urandom(2048).hex().encode())
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def job_engine(directory: Path, kind: str, **options):
    from backends.config import parse
    from backends.engine import Engine

    dest = directory / "dest"
    dest.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({"audit_log": str(directory / "audit.jsonl"),
                           "backups": [{"name": "job", "kind": kind, "dest": str(dest), **options}]})
    engine = Engine(parse(text, str(directory / "lakedeck.yaml"), {}))
    engine.build()
    return engine


def timed_job(engine) -> float:
    source = engine.sources["job"]
    action = engine.find_action("job", "run")
    started = time.perf_counter()
    result = asyncio.run(source.run(action, lambda line: None))
    took = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"backup failed: {result.error}")
    shutil.rmtree(source.job_dir)
    return took


def timed(argv: list[str], out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - started
    out.unlink()
    return took


def start_postgres(directory: Path) -> tuple[subprocess.Popen, int]:
    data = directory / "data"
    data.mkdir(parents=True)
    (directory / "sock").mkdir()
    as_pg: list[str] = []
    if os.geteuid() == 0:
        as_pg = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        for parent in [directory, *directory.parents]:
            os.chmod(parent, os.stat(parent).st_mode | 0o001)
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(directory / "sock", "postgres", "postgres")
    subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync",
                    "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([*as_pg, str(PG_BIN / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1",
                                "-c", f"port={port}", "-c", f"unix_socket_directories={directory / 'sock'}",
                                "-c", "fsync=off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                         capture_output=True, check=False).returncode != 0:
        time.sleep(0.1)
    return process, port


def psql(port: int, sql: str, dbname: str = "postgres") -> str:
    return subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", dbname,
                           "-Atc", sql], check=True, capture_output=True, text=True).stdout.strip()


def run(quick: bool = False) -> Section:
    runs = 2 if quick else 5
    megabytes = 40 if quick else 200
    rows_wanted = 300_000 if quick else 3_000_000
    work = Path(tempfile.mkdtemp(prefix="bench-backups-", dir=OUT if OUT.exists() else None))
    rows: list[Row] = []
    notes: list[str] = []
    try:
        tree = work / "tree"
        size = make_tree(tree, megabytes)
        engine = job_engine(work / "files", "files", paths=[str(tree)])
        job_s, tar_s = [], []
        for _ in range(runs):
            job_s.append(timed_job(engine))
            tar_s.append(timed(["tar", "czf", str(work / "plain.tar.gz"), "-C", "/", str(tree).lstrip("/")],
                               work / "plain.tar.gz"))
        mb = size / 1024 / 1024
        rows.append(Row(f"files job, {mb:.0f} MB of mixed files (tar.gz + sha256 + manifest)",
                        f"{mb / median(job_s):.1f} MB/s ({median(job_s):.2f} s)",
                        f"{mb / median(tar_s):.1f} MB/s ({median(tar_s):.2f} s, tar czf)",
                        ratio(median(job_s), median(tar_s))))
        notes.append(f"- files job runs (s): {listing(job_s, '{:.2f}')}; tar czf runs (s): {listing(tar_s, '{:.2f}')}")
        shutil.rmtree(tree)

        if not (PG_BIN / "postgres").exists():
            notes.append("- postgres: not measured (PostgreSQL 15 is not installed)")
        else:
            process, port = start_postgres(work / "pg")
            try:
                psql(port, "CREATE DATABASE shop")
                psql(port, "CREATE TABLE orders AS SELECT g AS id, g % 9973 AS customer, g * 1.25 AS amount, "
                           "md5(g::text) AS note, now() - g * interval '1 second' AS at "
                           f"FROM generate_series(1, {rows_wanted}) g", "shop")
                db_mb = int(psql(port, "SELECT pg_database_size('shop')")) / 1024 / 1024
                engine = job_engine(work / "pgjob", "postgres", dbname="shop", port=port, user="postgres",
                                    pg_dump=str(PG_BIN / "pg_dump"))
                pg_job, pg_plain = [], []
                for _ in range(runs):
                    pg_job.append(timed_job(engine))
                    pg_plain.append(timed([str(PG_BIN / "pg_dump"), "-Fc", "-h", "127.0.0.1", "-p", str(port),
                                           "-U", "postgres", "-f", str(work / "plain.dump"), "--dbname=shop"],
                                          work / "plain.dump"))
                rows.append(Row(f"postgres job, {rows_wanted:,} rows ({db_mb:.0f} MB database)",
                                f"{median(pg_job):.2f} s", f"{median(pg_plain):.2f} s (pg_dump -Fc)",
                                ratio(median(pg_job), median(pg_plain))))
                notes.append(f"- postgres job runs (s): {listing(pg_job, '{:.2f}')}; pg_dump runs (s): "
                             f"{listing(pg_plain, '{:.2f}')}")
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Section("10. Backups: the cost of hashing and manifests",
                   __doc__.split("\n\n", 2)[2].replace("\n", " ").strip() + f" Median of {runs} runs.", rows, notes)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(run("--quick" in sys.argv).markdown())
