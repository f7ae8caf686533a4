"""A stateful stand-in for the seeds' analytics engine pipeline API, on loopback, and its pytest fixture.

It speaks two dialects over the same pipelines, so that custom ``paths:`` and ``fields:`` are tested too:

- the default API under ``/api/v1/analytics/pipelines`` (see ``backends/adapters/pipeline_rest.py``);
- another shape under ``/alt``: ``GET /alt/overview`` -> ``{"data": {"items": [{"id", "state": {"phase"},
  "run": {"startedAt", "succeededAt", "tookMs"}, "failures": [...], "note"}]}}``, ``GET /alt/items/{name}``,
  ``GET /alt/items/{name}/failures``, ``POST /alt/items/{name}/do/{verb}``.

Actions change the state (start/stop/pause/restart the status, retry removes the retried batches,
clear-errors empties the errors) and every request is recorded, so tests assert exactly what was sent.
``fail(method, path, status, body)`` makes one route answer an error instead.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

import pytest
from helpers import LoopbackServer

BASE = "/api/v1/analytics/pipelines"
T0 = 1_714_557_600  # 2024-05-01T10:00:00Z


def seed_pipelines() -> dict[str, dict[str, Any]]:
    def errors(*batches: str) -> list[dict[str, str]]:
        return [{"batch": b, "time": f"2024-05-01T09:5{i}:00Z", "error": f"schema mismatch in {b}"}
                for i, b in enumerate(batches)]

    pipelines = [
        {"name": "orders", "status": "RUNNING", "lastRun": "2024-05-01T10:00:00Z", "lastSuccess": "2024-05-01T10:01:30Z",
         "durationMs": 90_000, "message": "", "errors": []},
        {"name": "clicks", "status": "RUNNING", "lastRun": T0, "lastSuccess": T0 - 600, "durationMs": 5_400,
         "message": "lagging 40s", "errors": errors("b-17", "b-18")},
        {"name": "billing", "status": "FAILED", "lastRun": T0, "lastSuccess": T0 - 86_400, "durationMs": 1_200,
         "message": "sink refused writes", "errors": errors("b-90")},
        {"name": "archive", "status": "STOPPED", "lastRun": None, "lastSuccess": None, "durationMs": None,
         "message": "", "errors": []},
        {"name": "exports", "status": "PAUSED", "lastRun": T0 * 1000, "lastSuccess": T0 * 1000, "durationMs": 0,
         "message": "", "errors": []},
        {"name": "eu/sessions", "status": "DEGRADED", "lastRun": T0, "lastSuccess": T0, "durationMs": 10,
         "message": "one of 3 workers down", "errors": []},
    ]
    return {p["name"]: p for p in pipelines}


@dataclass(frozen=True)
class Sent:
    """One request as the server received it."""

    method: str
    path: str  # as sent, still quoted
    query: str
    headers: dict[str, str]
    body: Any  # decoded JSON, the raw text when it is not JSON, None when empty


VERBS = {"start": "RUNNING", "restart": "RUNNING", "stop": "STOPPED", "pause": "PAUSED"}


@dataclass
class PipelineEngine:
    """The state behind the API (shared by the handler threads; every access holds ``lock``)."""

    pipelines: dict[str, dict[str, Any]] = field(default_factory=seed_pipelines)
    requests: list[Sent] = field(default_factory=list)
    failures: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self, name: str) -> str:
        with self.lock:
            return self.pipelines[name]["status"]

    def errors(self, name: str) -> list[dict[str, str]]:
        with self.lock:
            return copy.deepcopy(self.pipelines[name]["errors"])

    def sent(self, method: str | None = None) -> list[Sent]:
        with self.lock:
            return [r for r in self.requests if method is None or r.method == method]

    def default_entry(self, name: str) -> dict[str, Any]:
        p = self.pipelines[name]
        entry = {k: v for k, v in p.items() if k != "errors"}
        entry["errorCount"] = len(p["errors"])
        return entry

    def alt_entry(self, name: str) -> dict[str, Any]:
        p = self.pipelines[name]
        return {"id": name, "state": {"phase": p["status"].lower()},
                "run": {"startedAt": p["lastRun"], "succeededAt": p["lastSuccess"], "tookMs": p["durationMs"]},
                "failures": p["errors"], "note": p["message"]}

    def act(self, name: str, verb: str, body: Any) -> tuple[int, dict[str, Any]]:
        pipeline = self.pipelines[name]
        if verb in VERBS:
            pipeline["status"] = VERBS[verb]
            if verb == "restart":
                self.restarts[name] = self.restarts.get(name, 0) + 1
            return 200, {"name": name, "status": pipeline["status"]}
        if verb == "clear-errors":
            cleared, pipeline["errors"] = len(pipeline["errors"]), []
            return 200, {"cleared": cleared}
        if verb == "retry":
            batches = body.get("batches") if isinstance(body, dict) else None
            if not isinstance(batches, list) or not batches:
                return 400, {"message": "retry needs {\"batches\": [...]}"}
            pipeline["errors"] = [e for e in pipeline["errors"] if e.get("batch") not in batches]
            return 202, {"retried": batches}
        return 404, {"message": f"no action {verb!r}"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: PipelineEngine  # set on the per-server subclass

    def log_message(self, format, *args):  # keep test output clean
        pass

    def _answer(self, status: int, body: Any) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _record(self) -> Sent:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        url = urlsplit(self.path)
        sent = Sent(self.command, url.path, url.query, dict(self.headers.items()), body)
        with self.engine.lock:
            self.engine.requests.append(sent)
        return sent

    def _serve(self) -> None:
        sent = self._record()
        with self.engine.lock:
            failure = self.engine.failures.get((sent.method, sent.path))
            if failure is not None:
                self._answer(*failure)
                return
            parts = [unquote(p) for p in sent.path.split("/")]
            status, body = self._route(sent.method, sent.path, parts, sent.body)
        self._answer(status, body)

    def _route(self, method: str, path: str, parts: list[str], body: Any) -> tuple[int, Any]:
        engine = self.engine
        if path.startswith(BASE + "/"):
            rest = parts[len(BASE.split("/")):]
            if method == "GET" and rest == ["status"]:
                return 200, {"pipelines": [engine.default_entry(n) for n in engine.pipelines]}
            if len(rest) == 2 and rest[0] in engine.pipelines:
                name, what = rest
                if method == "GET" and what == "status":
                    return 200, engine.default_entry(name)
                if method == "GET" and what == "errors":
                    return 200, {"errors": engine.pipelines[name]["errors"]}
                if method == "POST":
                    return engine.act(name, what, body)
        elif path.startswith("/alt/"):
            rest = parts[2:]
            if method == "GET" and rest == ["overview"]:
                return 200, {"data": {"items": [engine.alt_entry(n) for n in engine.pipelines]}}
            if len(rest) >= 2 and rest[0] == "items" and rest[1] in engine.pipelines:
                name, tail = rest[1], rest[2:]
                if method == "GET" and not tail:
                    return 200, engine.alt_entry(name)
                if method == "GET" and tail == ["failures"]:
                    return 200, {"errors": engine.pipelines[name]["errors"]}
                if method == "POST" and len(tail) == 2 and tail[0] == "do":
                    return engine.act(name, tail[1], body)
        return 404, {"message": f"no route {method} {path}"}

    do_GET = _serve
    do_POST = _serve


class PipelineApi(LoopbackServer):
    """The running server: ``url`` is the default API's base, ``root`` the server's, ``engine`` its state."""

    def __init__(self) -> None:
        self.engine = PipelineEngine()
        super().__init__(type("Handler", (_Handler,), {"engine": self.engine}))
        self.url = self.root + BASE

    def fail(self, method: str, path: str, status: int, body: Any) -> None:
        """Make ``method path`` (a path under the server's root, as sent) answer ``status`` with ``body``."""
        with self.engine.lock:
            self.engine.failures[(method, path)] = (status, body if isinstance(body, bytes) else json.dumps(body).encode())


@pytest.fixture
def pipeline_api() -> Iterator[PipelineApi]:
    """The analytics engine's pipeline API on 127.0.0.1 with six seeded pipelines (see ``seed_pipelines``)."""
    api = PipelineApi().start()
    try:
        yield api
    finally:
        api.stop()
