"""Shared fixtures: real servers on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from conftest_airflow import airflow  # noqa: F401  (fixture: a real Airflow 3, one per test module)
from conftest_iceberg import iceberg_lake  # noqa: F401  (fixture: a real pyiceberg SQL catalog on SQLite)
from conftest_prometheus import alertmanager, node_exporter, prometheus  # noqa: F401  (fixtures: real Prometheus)
from conftest_supervisor import supervisord  # noqa: F401  (fixture: a real supervisord)
from conftest_postgres import postgres  # noqa: F401  (fixture: a real PostgreSQL 15, one per test module)
from stand_ins import only_stand_ins, stand_ins  # noqa: F401  (fixtures: stand-in executables on PATH)


class InFlight:
    """Counts requests being served at once, to prove that checks run concurrently."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most_at_once = 0

    def reset(self) -> None:
        with self._lock:
            self.now = self.most_at_once = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most_at_once = max(self.most_at_once, self.now)

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.now -= 1


slow_requests = InFlight()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hung = threading.Event()  # set at teardown, so /hung handlers return and their threads end

    def log_message(self, format, *args):  # keep test output clean
        pass

    def _send(self, code: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/healthy":
            self._send(200, json.dumps({"status": "UP", "checks": [{"name": "db", "ok": True}], "version": 3}).encode())
        elif path == "/down":
            self._send(200, json.dumps({"status": "DOWN"}).encode())
        elif path == "/slow":
            with slow_requests:
                time.sleep(0.1)
            self._send(200, b'{"status": "UP"}')
        elif path == "/hung":
            self.hung.wait(30)
        elif path == "/error":
            self._send(500, b"boom")
        elif path == "/badjson":
            self._send(200, b"not json{")
        elif path == "/redirect":
            self._send(302, b"", "text/plain", Location="/login")
        elif path == "/headers":
            self._send(200, json.dumps({"token": self.headers.get("X-Token", "")}).encode())
        elif path == "/brackets":
            self._send(503, b"", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._send(201, b'{"created": true}')


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # 200 checks connect at once; the default backlog of 5 drops their SYNs


@pytest.fixture
def http_server() -> Iterator[str]:
    """A real threaded HTTP server on 127.0.0.1; yields its base URL, e.g. ``http://127.0.0.1:40123``."""
    server = LoopbackServer(("127.0.0.1", 0), _Handler)
    _Handler.hung.clear()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _Handler.hung.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True, scope="session")
def _state_home(tmp_path_factory) -> Iterator[None]:
    """The audit log and the history store default to $XDG_STATE_HOME: never the tester's own. Action locks
    default to /run/lakedeck: never the host's (another test run's actions there would refuse these)."""
    import os

    from backends import locks

    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    host_locks, locks.DEFAULT_DIR = locks.DEFAULT_DIR, str(tmp_path_factory.mktemp("run") / "lakedeck")
    yield
    locks.DEFAULT_DIR = host_locks
    if old is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = old


@pytest.fixture
def port() -> Iterator[int]:
    """A port something listens on (and accepts nothing from): a tcp check of it is OK."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()
