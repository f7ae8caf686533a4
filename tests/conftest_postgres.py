"""A real PostgreSQL 15 on 127.0.0.1 (Debian's postgresql package), one per test module.

initdb and postgres refuse to run as root: they run as the ``postgres`` user through setpriv, which must be
able to traverse into the data directory's parents. Missing binaries skip the test, or fail it under
LAKEDECK_REQUIRE_INTEGRATION=1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from integration import need_binary, required

PG_BIN = Path("/usr/lib/postgresql/15/bin")
READY_WITHIN = 30.0


@dataclass(frozen=True)
class Postgres:
    port: int
    bin: Path
    dir: Path

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the postgres superuser and return its unaligned output."""
        done = subprocess.run([str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "-d", dbname, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise AssertionError(f"psql failed: {done.stderr}")
        return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(*argv: str) -> list[str]:
    if os.geteuid() != 0:
        return list(argv)  # not root: run as ourselves
    return [need_binary("setpriv", "util-linux"), "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if not (PG_BIN / "postgres").exists():
        reason = f"PostgreSQL 15 is not installed in {PG_BIN} (apt-get install postgresql)"
        if required():
            pytest.fail(f"LAKEDECK_REQUIRE_INTEGRATION=1 but {reason}")
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="ld-pg-"))
    os.chmod(directory, 0o755)
    for parent in directory.parents:  # the postgres user must traverse into it
        if parent != Path("/"):
            os.chmod(parent, os.stat(parent).st_mode | 0o001)
    data, sockets = directory / "data", directory / "sock"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    subprocess.run(_as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"),
                   check=True, capture_output=True, timeout=120)
    server = Postgres(_free_port(), PG_BIN, directory)
    log = open(directory / "postgres.log", "wb")  # noqa: SIM115  (closed at teardown)
    process = subprocess.Popen(
        _as_postgres(str(PG_BIN / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1",
                     "-c", f"port={server.port}", "-c", f"unix_socket_directories={sockets}", "-c", "fsync=off"),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_WITHIN
        while subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(server.port)],
                             capture_output=True, check=False).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"postgres did not start: {(directory / 'postgres.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        process.send_signal(signal.SIGINT)  # fast shutdown
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(directory, ignore_errors=True)
