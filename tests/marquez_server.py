"""Marquez's API replayed on loopback from tests/fixtures/marquez/ (see its README for where the shapes come from).

Marquez cannot run here (no JVM, no PostgreSQL): ``routes.json`` maps a path (and, for ``/api/v1/lineage``,
its ``nodeId``) to a recorded answer. Lists (``namespaces``, ``jobs``, ``datasets``) are cut by ``limit`` and
``offset`` as Marquez does, so paging is exercised; every request is recorded; an unknown path answers 404
in Marquez's error shape. ``garbage`` makes every answer a non-JSON page (a proxy's error page).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import LoopbackServer

FIXTURES = Path(__file__).parent / "fixtures" / "marquez"
PAGED = ("namespaces", "jobs", "datasets")
DEFAULT_LIMIT = 100  # Marquez's default for limit


class MarquezReplay:
    def __init__(self, fixtures: Path = FIXTURES) -> None:
        self.fixtures = fixtures
        self.routes: dict[str, str] = json.loads((fixtures / "routes.json").read_text())
        self.requests: list[tuple[str, dict[str, list[str]]]] = []  # (path, query) as received
        self.garbage: bytes | None = None
        self.lock = threading.Lock()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # keep test output clean
                pass

            def do_GET(self) -> None:
                status, content_type, body = replay.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._http = LoopbackServer(Handler)
        self.url = self._http.root

    def answer(self, raw_path: str) -> tuple[int, str, bytes]:
        url = urlsplit(raw_path)
        query = parse_qs(url.query)
        with self.lock:
            self.requests.append((url.path, query))
            garbage = self.garbage
        if garbage is not None:
            return 200, "text/html", garbage
        key = url.path + (f"?nodeId={query['nodeId'][0]}" if url.path == "/api/v1/lineage" and "nodeId" in query else "")
        if key not in self.routes:
            return 404, "application/json", json.dumps({"code": 404, "message": f"{key} not found"}).encode()
        document = json.loads((self.fixtures / self.routes[key]).read_text())
        limit = int(query.get("limit", [DEFAULT_LIMIT])[0])
        offset = int(query.get("offset", [0])[0])
        for name in PAGED:
            if isinstance(document.get(name), list):
                document[name] = document[name][offset:offset + limit]
        return 200, "application/json", json.dumps(document).encode()

    def sent(self, path: str) -> list[dict[str, list[str]]]:
        """The queries of the requests made to ``path``."""
        with self.lock:
            return [query for p, query in self.requests if p == path]

    def start(self) -> "MarquezReplay":
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()


@pytest.fixture
def marquez() -> Iterator[MarquezReplay]:
    """Marquez's API on 127.0.0.1, replaying tests/fixtures/marquez/; ``url`` is what the config's url would be."""
    server = MarquezReplay().start()
    try:
        yield server
    finally:
        server.stop()
