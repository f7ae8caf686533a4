"""Airflow-shaped API servers for the pipelines benchmark: Airflow 3's REST API v2, as the airflow adapter reads
it, for several instances of many DAGs, in a process of its own (so that it takes no time from the console's).

    python bench/airflow_shaped.py PORT_FILE DAGS [DAGS...]

One instance per DAGS count, each on its own loopback port, written one per line to PORT_FILE. Every DAG has a
few runs; every ``--tick`` seconds ``--changes`` DAGs of each instance get a new run (some fail, some run).
The answers follow what a real Airflow 3.3 returned to the adapter's requests (tests/test_adapter_airflow.py).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def token() -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS512', 'typ': 'JWT'})}.{part({'sub': 'admin', 'exp': int(time.time()) + 86400})}.sig"


class Instance:
    def __init__(self, name: str, count: int, seed: int) -> None:
        self.lock = threading.Lock()
        self.random = random.Random(seed)
        now = time.time()
        self.dags = [{"dag_id": f"{name}_dag_{i:04d}", "dag_display_name": f"{name}_dag_{i:04d}", "is_paused": i % 17 == 0,
                      "is_stale": False, "fileloc": f"/opt/airflow/dags/{name}_{i:04d}.py", "owners": ["data"],
                      "tags": [{"name": "bench", "dag_id": f"{name}_dag_{i:04d}"}], "timetable_summary": "@hourly",
                      "next_dagrun_run_after": iso(now + 3600 - (i * 7) % 3600), "has_import_errors": False}
                     for i in range(count)]
        self.runs: dict[str, list[dict]] = {}
        for dag in self.dags:
            for back in (3, 2, 1):
                self._add(dag["dag_id"], now - back * 3600, self.random.choice(["success"] * 9 + ["failed"]))

    def _add(self, dag_id: str, due: float, state: str) -> None:
        start = due + 5
        end = None if state == "running" else start + self.random.uniform(20, 600)
        run = {"dag_run_id": f"scheduled__{iso(due)}", "dag_id": dag_id, "logical_date": iso(due), "run_after": iso(due),
               "queued_at": iso(due), "start_date": iso(start), "end_date": iso(end),
               "duration": None if end is None else end - start, "state": state, "run_type": "scheduled",
               "conf": {}, "note": None, "updated_at": time.time(), "_end": end, "_due": due}
        self.runs.setdefault(dag_id, []).append(run)
        del self.runs[dag_id][:-5]

    def tick(self, changes: int) -> None:
        with self.lock:
            for dag in self.random.sample(self.dags, changes):
                self._add(dag["dag_id"], time.time(), self.random.choice(["success", "success", "failed", "running"]))

    @staticmethod
    def public(run: dict) -> dict:
        shown = {k: v for k, v in run.items() if not k.startswith("_")}
        shown["updated_at"] = iso(run["updated_at"])
        return shown

    def all_runs(self) -> list[dict]:
        return [run for runs in self.runs.values() for run in runs]


def page(rows: list, key: str, query: dict) -> dict:
    limit = int(query.get("limit", ["100"])[0])
    offset = int(query.get("offset", ["0"])[0])
    return {key: rows[offset:offset + limit], "total_entries": len(rows)}


def epoch(text: str | None) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else 0.0


def handler_for(instance: Instance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def send(self, code: int, document: dict) -> None:
            body = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            request = self.body()
            if path == "/auth/token":
                self.send(201, {"access_token": token()})
            elif path == "/api/v2/dags/~/dagRuns/list":
                since = epoch(request.get("end_date_gte"))
                with instance.lock:
                    runs = [r for r in instance.all_runs() if r["state"] in request.get("states", [r["state"]])
                            and (r["_end"] or 0) >= since]
                runs.sort(key=lambda r: -(r["_end"] or 0))
                offset, limit = int(request.get("page_offset", 0)), int(request.get("page_limit", 100))
                self.send(200, {"dag_runs": [instance.public(r) for r in runs[offset:offset + limit]],
                                "total_entries": len(runs)})
            else:
                self.send(404, {"detail": "Not Found"})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path, query = unquote(parts.path), parse_qs(parts.query)
            with instance.lock:
                if path == "/api/v2/dags":
                    self.send(200, page(instance.dags, "dags", query))
                elif path == "/api/v2/importErrors":
                    self.send(200, {"import_errors": [], "total_entries": 0})
                elif path == "/api/v2/dags/~/dagRuns":
                    since = epoch(query.get("updated_at_gte", [None])[0])
                    runs = sorted((r for r in instance.all_runs() if r["updated_at"] >= since),
                                  key=lambda r: r["updated_at"])
                    self.send(200, page([instance.public(r) for r in runs], "dag_runs", query))
                elif path.startswith("/api/v2/dags/") and path.endswith("/dagRuns"):
                    runs = list(instance.runs.get(path.split("/")[4], []))
                    if query.get("state"):
                        runs = [r for r in runs if r["state"] in query["state"]]
                    runs.sort(key=lambda r: -r["_due"])
                    self.send(200, page([instance.public(r) for r in runs], "dag_runs", query))
                else:
                    self.send(404, {"detail": "Not Found"})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port_file")
    parser.add_argument("dags", type=int, nargs="+")
    parser.add_argument("--tick", type=float, default=2.0)
    parser.add_argument("--changes", type=int, default=3)
    args = parser.parse_args()
    instances, ports = [], []
    for number, count in enumerate(args.dags):
        instance = Instance(f"af{number + 1}", count, seed=number)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(instance))
        server.daemon_threads = True
        server.handle_error = lambda request, address: None  # the console closing its connections at the end
        threading.Thread(target=server.serve_forever, daemon=True).start()
        instances.append(instance)
        ports.append(server.server_address[1])
    with open(args.port_file, "w") as out:
        out.write("\n".join(map(str, ports)) + "\n")
    while True:
        time.sleep(args.tick)
        for instance in instances:
            instance.tick(args.changes)


if __name__ == "__main__":
    main()
