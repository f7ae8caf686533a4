"""9. A sweep of 100 node_exporter hosts through one Prometheus, beside the same PromQL queries made directly.

    python bench/prom_fleet.py [--quick]

Four real node_exporters on loopback, each scraped as 25 instances (static target groups with their own
``instance`` label), make a fleet of 100 hosts in one Prometheus. Measured: ``PrometheusHosts.poll()`` (its
queries, concurrent, and the 100 HostReadings built from them) against the same query strings sent with httpx
from one client, all at once; and what one request per host would have cost.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
from common import OUT, Row, Section, listing, median, ratio, write_config

from backends.adapters import build_source
from backends.adapters.prometheus_hosts import queries
from backends.config import parse
from backends.model import HostReading

EXPORTERS = 4
PER_EXPORTER = 25
HOSTS = EXPORTERS * PER_EXPORTER
SCRAPE = "5s"  # 100 scrapes every 5 s keep the machine busy enough already
SELECTOR = 'job="node"'
TARGET = 0.5  # seconds for a sweep: well inside the default 1.5 s poll timeout
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
COLLECTORS = ["--collector.disable-defaults", *(f"--collector.{c}" for c in
                                                 ("cpu", "meminfo", "filesystem", "loadavg", "netdev", "uname"))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> dict:
    with DIRECT.open(url, timeout=5) as response:
        return json.loads(response.read())


class Fleet:
    """The exporters and the Prometheus that scrapes them as 100 hosts, in a temporary directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ld-bench-prom-"))
        self.processes: list[subprocess.Popen] = []
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self, name: str, argv: list[str]) -> None:
        with open(self.dir / f"{name}.log", "w") as out:
            self.processes.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                                   stderr=subprocess.STDOUT))

    def start(self) -> None:
        groups = []
        for i in range(EXPORTERS):
            port = free_port()
            self._start(f"node{i}", [shutil.which("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{port}",
                                     *COLLECTORS])
            groups += [{"targets": [f"127.0.0.1:{port}"], "labels": {"instance": f"node-{i * PER_EXPORTER + j:03d}"}}
                       for j in range(PER_EXPORTER)]
        config = {"global": {"scrape_interval": SCRAPE, "scrape_timeout": "4s"},
                  "scrape_configs": [{"job_name": "node", "static_configs": groups}]}
        (self.dir / "prometheus.yml").write_text(json.dumps(config))
        self._start("prometheus", [shutil.which("prometheus"), f"--config.file={self.dir / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={self.dir / 'data'}",
                                   f"--web.listen-address=127.0.0.1:{self.port}"])

    def wait_settled(self, within: float = 120.0) -> float:
        """Seconds until every host is up and has a CPU rate (two scrapes of each)."""
        started = time.monotonic()
        cpu = queries(SELECTOR)["cpu"]
        while time.monotonic() - started < within:
            if any(p.poll() is not None for p in self.processes):
                break
            try:
                up = get(f"{self.url}/api/v1/query?query=" + urllib.request.quote(f"count(up{{{SELECTOR}}} == 1)"))
                rated = get(f"{self.url}/api/v1/query?query=" + urllib.request.quote(f"count({cpu})"))
                if all(r["data"]["result"] and r["data"]["result"][0]["value"][1] == str(HOSTS) for r in (up, rated)):
                    return time.monotonic() - started
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        logs = "\n".join((self.dir / f"{n}.log").read_text(errors="replace")[-800:] for n in ("prometheus", "node0"))
        raise RuntimeError(f"the fleet did not settle within {within:g}s\n{logs}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def build_hosts(url: str):
    config = parse(write_config(OUT / "prom_fleet.yaml", hosts=[
        {"name": "fleet", "kind": "prometheus", "url": url, "selector": SELECTOR, "refresh": "5s", "timeout": "4s"}
    ]).read_text(), "prom_fleet.yaml")
    return build_source(config.sources[0], config)


def count_requests(source) -> list[str]:
    made: list[str] = []
    client = source.api.api
    real = client.request

    async def counted(method, path, **kwargs):
        made.append(path)
        return await real(method, path, **kwargs)

    client.request = counted
    return made


async def raw_sweep(client: httpx.AsyncClient, url: str, promql: list[str], decode: bool) -> tuple[float, int]:
    """The queries alone, all at once: (seconds, bytes received)."""
    started = time.perf_counter()
    answers = await asyncio.gather(*(client.get(f"{url}/api/v1/query", params={"query": q}) for q in promql))
    if decode:
        for answer in answers:
            json.loads(answer.content)
    took = time.perf_counter() - started
    assert all(a.status_code == 200 for a in answers), [a.text[:200] for a in answers if a.status_code != 200]
    return took, sum(len(a.content) for a in answers)


def per_host_queries() -> list[str]:
    """What one request per host and metric would send: each query narrowed to one instance."""
    return [query for n in range(HOSTS) for query in queries(f'{SELECTOR},instance="node-{n:03d}"').values()]


async def measure(url: str, runs: int) -> dict:
    source = build_hosts(url)
    made = count_requests(source)
    promql = list(queries(SELECTOR).values())
    found: dict = {"adapter": [], "raw": [], "raw+json": [], "per host": [], "bytes": 0}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        started = time.perf_counter()
        first = await source.poll()
        found["first"] = time.perf_counter() - started
        found["first requests"] = len(made)
        assert len(first) == HOSTS and all(isinstance(r, HostReading) and r.cpu is not None for r in first), \
            [r.reason for r in first][:3]
        await raw_sweep(client, url, promql, True)  # warm: connections open, as the adapter's are now
        jobs = {"adapter": None, "raw": False, "raw+json": True}
        names = list(jobs)
        for i in range(runs):
            for job in names[i % len(names):] + names[:i % len(names)]:
                if job == "adapter":
                    before = len(made)
                    started = time.perf_counter()
                    readings = await source.poll()
                    found["adapter"].append(time.perf_counter() - started)
                    found.setdefault("requests", set()).add(len(made) - before)
                    assert len(readings) == HOSTS and all(r.cpu is not None for r in readings)
                else:
                    took, size = await raw_sweep(client, url, promql, jobs[job])
                    found[job].append(took)
                    found["bytes"] = size
                await asyncio.sleep(0.1)
        many = per_host_queries()
        for _ in range(max(1, runs // 3)):
            found["per host"].append((await raw_sweep(client, url, many, True))[0])
            await asyncio.sleep(0.2)
        found["per host count"] = len(many)
    await source.close()
    return found


def run(quick: bool = False) -> Section:
    runs = 5 if quick else 15
    title = f"9. A sweep of {HOSTS} node_exporter hosts through one Prometheus"
    missing = [b for b in ("prometheus", "prometheus-node-exporter") if shutil.which(b) is None]
    if missing:
        return Section(title, "Skipped.", [Row("sweep", f"skipped: {', '.join(missing)} not installed")])
    fleet = Fleet()
    try:
        fleet.start()
        settled = fleet.wait_settled()
        found = asyncio.run(measure(fleet.url, runs))
    finally:
        fleet.stop()
    adapter, raw, decoded, per_host = (median(found[k]) for k in ("adapter", "raw", "raw+json", "per host"))
    ms = {k: listing([v * 1000 for v in found[k]], "{:.1f}") for k in ("adapter", "raw", "raw+json", "per host")}
    requests = sorted(found["requests"])
    fixed = requests == [len(queries(SELECTOR))]
    rows = [
        Row(f"steady sweep: `PrometheusHosts.poll()` → {HOSTS} HostReadings", f"{adapter * 1000:.1f} ms",
            f"{raw * 1000:.1f} ms (the {len(queries(SELECTOR))} queries alone, httpx)", ratio(adapter, raw),
            f"< {TARGET} s", adapter < TARGET),
        Row("the same, against the queries decoded (informational)", f"{adapter * 1000:.1f} ms",
            f"{decoded * 1000:.1f} ms (httpx + json.loads)", ratio(adapter, decoded)),
        Row("requests per sweep", f"{', '.join(map(str, requests))} ({found['first requests']} on the first: "
            f"+1 range query for the CPU sparklines)", f"{found['per host count']} (one per host and metric)",
            ratio(requests[0], found["per host count"]), "fixed, whatever the fleet", fixed),
        Row("one request per host and metric, all at once (informational)", f"{adapter * 1000:.1f} ms",
            f"{per_host * 1000:.1f} ms ({found['per host count']} queries, httpx, 100 connections)",
            ratio(adapter, per_host)),
        Row("first sweep (new connections, + CPU range query; informational)", f"{found['first'] * 1000:.1f} ms"),
    ]
    return Section(
        title,
        f"{EXPORTERS} real node_exporters on loopback (collectors cpu, meminfo, filesystem, loadavg, netdev, uname), "
        f"each scraped as {PER_EXPORTER} instances (static target groups with their own `instance` label) by one "
        f"Prometheus every {SCRAPE}: {HOSTS} hosts, all up with a CPU rate (settled after {settled:.0f} s). The "
        f"adapter is built from a config (`selector: {SELECTOR}`) before the clock starts; its first poll is not "
        f"counted. Baseline = the same {len(queries(SELECTOR))} query strings as GETs from one `httpx.AsyncClient` "
        f"with `asyncio.gather` (warm connections), bodies read; also decoded with `json.loads`. Jobs interleaved, "
        f"order rotating; median of {runs}. Requests counted by wrapping the adapter's JSON client.",
        rows,
        [f"- adapter runs (ms): {ms['adapter']}",
         f"- raw runs (ms): {ms['raw']}; decoded: {ms['raw+json']}",
         f"- one-per-host runs (ms): {ms['per host']}",
         f"- {found['bytes'] / 1024:.0f} KiB of JSON per sweep"],
    )


if __name__ == "__main__":
    print(run("--quick" in sys.argv).markdown())
