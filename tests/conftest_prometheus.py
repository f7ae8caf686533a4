"""A real node_exporter, Prometheus and Alertmanager on loopback (Debian: prometheus, prometheus-node-exporter,
prometheus-alertmanager).

Import the fixtures into a test module (tests/conftest.py registers them for every module):

- ``node_exporter``: its URL.
- ``alertmanager``: an ``Alertmanager`` (``.url``) with a null receiver.
- ``prometheus``: a ``PrometheusStack`` with ``.prometheus_url``, ``.alertmanager_url``, ``.node_exporter_url``.
  Prometheus scrapes the one node_exporter as three hosts (job ``node``, instances ``host-a``, ``host-b``,
  ``host-c``), a closed port as ``host-down`` (so one target is down) and itself (job ``prometheus``); its rules
  fire ``AlwaysFiring`` (critical) at once, keep ``StaysPending`` pending for an hour and fire ``TargetDown``
  (warning) for ``host-down``; it sends its alerts to the ``alertmanager`` fixture, which has ``AlwaysFiring``
  within ~10 s (``stack.wait_for_alertmanager(ALWAYS_FIRING)``). The fixture returns once every target has
  been scraped twice, so rates over 1m have data and the always-firing alert fires.

All three are module-scoped (starting them costs a few seconds), listen on 127.0.0.1 on free ports, keep their
data in a temporary directory and are stopped (and waited for) at teardown. A missing binary skips the tests,
or fails them under LAKEDECK_REQUIRE_INTEGRATION=1.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from integration import need_binary

T = TypeVar("T")
HINT = "apt-get install prometheus prometheus-node-exporter prometheus-alertmanager"
READY_WITHIN = 30.0
SETTLED_WITHIN = 40.0
STOP_WITHIN = 10.0
HOSTS = ("host-a", "host-b", "host-c")
DOWN_HOST = "host-down"
ALWAYS_FIRING, STAYS_PENDING, TARGET_DOWN = "AlwaysFiring", "StaysPending", "TargetDown"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy

ALERTMANAGER_CONFIG = """\
route:
  receiver: "null"
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
"""

RULES = f"""\
groups:
  - name: lakedeck-tests
    rules:
      - alert: {ALWAYS_FIRING}
        expr: vector(1)
        for: 0s
        labels: {{severity: critical}}
        annotations:
          summary: "always firing: the test stack is up"
          description: "fires from the first evaluation; near [/ and [bold] are data, not markup"
      - alert: {STAYS_PENDING}
        expr: vector(1)
        for: 1h
        labels: {{severity: warning}}
        annotations: {{summary: "pending for an hour"}}
      - alert: {TARGET_DOWN}
        expr: up == 0
        for: 0s
        labels: {{severity: warning}}
        annotations: {{summary: "{{{{ $labels.instance }}}} of job {{{{ $labels.job }}}} is down"}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> tuple[socket.socket, int]:
    """A port that refuses connections and that nobody else takes while the socket is held: bound, not listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def get_json(url: str, timeout: float = 5.0) -> Any:
    with DIRECT.open(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for(predicate: Callable[[], T], timeout: float, what: str, every: float = 0.2,
             logs: Callable[[], str] = lambda: "") -> T:
    """``predicate()`` once it is truthy (errors reaching the server count as not yet); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            found = predicate()
            if found:
                return found
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            last = f" (last error: {exc})"
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g}s: {what}{last}\n{logs()}")
        time.sleep(every)


@dataclass
class Process:
    """One server process with its log file; stopped with SIGTERM, killed after a grace."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        with open(self.log, "w") as out:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        return self

    def tail(self, chars: int = 2000) -> str:
        try:
            return f"--- {self.name} ---\n{self.log.read_text(errors='replace')[-chars:]}"
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.popen.returncode}\n{self.tail()}")

    def wait_ready(self, url: str) -> None:
        def ready() -> bool:
            self.check_alive()
            with DIRECT.open(url, timeout=2) as response:
                return response.status == 200

        wait_for(ready, READY_WITHIN, f"{self.name} ready at {url}", every=0.05, logs=self.tail)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(STOP_WITHIN)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


@dataclass
class Alertmanager:
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self) -> list[dict[str, Any]]:
        return get_json(f"{self.url}/api/v2/alerts")


@dataclass
class PrometheusStack:
    """The running Prometheus with the node_exporter it scrapes and the Alertmanager it sends alerts to."""

    port: int
    node_exporter_url: str
    alertmanager: Alertmanager
    process: Process
    down_target: str  # host:port of the closed port scraped as host-down
    hosts: tuple[str, ...] = HOSTS
    down_host: str = DOWN_HOST
    alert_names: dict[str, str] = field(default_factory=lambda: {
        "firing": ALWAYS_FIRING, "pending": STAYS_PENDING, "down": TARGET_DOWN})

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alertmanager_url(self) -> str:
        return self.alertmanager.url

    def logs(self) -> str:
        return f"{self.process.tail()}\n{self.alertmanager.process.tail()}"

    def api(self, path: str, **params: str) -> Any:
        """``data`` of a Prometheus API answer, e.g. ``stack.api("/api/v1/query", query="up")``."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return get_json(f"{self.prometheus_url}{path}{query}")["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        return self.api("/api/v1/query", query=promql)["result"]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 20.0, what: str = "the condition") -> T:
        return wait_for(predicate, timeout, what, logs=self.logs)

    def wait_for_alertmanager(self, alertname: str = ALWAYS_FIRING, timeout: float = 20.0) -> dict[str, Any]:
        """The alert as Alertmanager's ``GET /api/v2/alerts`` has it, once it has arrived there."""
        def arrived() -> dict[str, Any] | None:
            return next((a for a in self.alertmanager.alerts() if a["labels"].get("alertname") == alertname), None)

        return self.wait_for(arrived, timeout, f"{alertname} in Alertmanager")


def prometheus_config(node_exporter: str, down: str, alertmanager: str, own: str) -> str:
    def group(target: str, instance: str) -> dict[str, Any]:
        return {"targets": [target], "labels": {"instance": instance}}

    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s", "scrape_timeout": "1s"},
        "rule_files": ["rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": "node", "static_configs": [*(group(node_exporter, h) for h in HOSTS), group(down, DOWN_HOST)]},
            {"job_name": "prometheus", "static_configs": [{"targets": [own]}]},
        ],
    }
    return json.dumps(config, indent=2)  # JSON is YAML


def _settled(stack: PrometheusStack) -> bool:
    """Every target scraped (the down one failed), two samples of every host, and the rules evaluated."""
    stack.process.check_alive()
    targets = stack.api("/api/v1/targets")["activeTargets"]
    if len(targets) != len(HOSTS) + 2 or any(t["health"] == "unknown" for t in targets):
        return False
    rates = stack.query('count by (instance) (rate(node_cpu_seconds_total{job="node"}[1m]))')
    firing = stack.api("/api/v1/alerts")["alerts"]
    return len(rates) == len(HOSTS) and any(a["labels"]["alertname"] == ALWAYS_FIRING and a["state"] == "firing"
                                            for a in firing)


@pytest.fixture(scope="module")
def node_exporter() -> Iterator[str]:
    binary = need_binary("prometheus-node-exporter", HINT)
    directory = Path(tempfile.mkdtemp(prefix="ld-node-"))
    port = free_port()
    process = Process("node_exporter", [binary, f"--web.listen-address=127.0.0.1:{port}", "--no-collector.systemd"],
                      directory / "node_exporter.log").start()
    try:
        process.wait_ready(f"http://127.0.0.1:{port}/metrics")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def alertmanager() -> Iterator[Alertmanager]:
    binary = need_binary("prometheus-alertmanager", HINT)
    directory = Path(tempfile.mkdtemp(prefix="ld-am-"))
    (directory / "alertmanager.yml").write_text(ALERTMANAGER_CONFIG)
    port = free_port()
    process = Process("alertmanager", [
        binary, f"--config.file={directory / 'alertmanager.yml'}", f"--storage.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",  # empty: no gossip port on 0.0.0.0
    ], directory / "alertmanager.log").start()
    server = Alertmanager(port, process)
    try:
        process.wait_ready(f"{server.url}/-/ready")
        yield server
    finally:
        process.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def prometheus(node_exporter: str, alertmanager: Alertmanager) -> Iterator[PrometheusStack]:
    binary = need_binary("prometheus", HINT)
    promtool = need_binary("promtool", HINT)
    directory = Path(tempfile.mkdtemp(prefix="ld-prom-"))
    held, down = closed_port()
    port = free_port()
    config = directory / "prometheus.yml"
    config.write_text(prometheus_config(node_exporter.removeprefix("http://"), f"127.0.0.1:{down}",
                                        f"127.0.0.1:{alertmanager.port}", f"127.0.0.1:{port}"))
    (directory / "rules.yml").write_text(RULES)
    checked = subprocess.run([promtool, "check", "config", str(config)], check=False, capture_output=True, text=True,
                             timeout=30)
    if checked.returncode != 0:
        held.close()
        shutil.rmtree(directory, ignore_errors=True)
        pytest.fail(f"promtool check config failed:\n{checked.stdout}{checked.stderr}")
    url = f"http://127.0.0.1:{port}"
    process = Process("prometheus", [
        binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url={url}/", "--rules.alert.resend-delay=2s",
    ], directory / "prometheus.log").start()
    stack = PrometheusStack(port, node_exporter, alertmanager, process, f"127.0.0.1:{down}")
    try:
        process.wait_ready(f"{url}/-/ready")
        wait_for(lambda: _settled(stack), SETTLED_WITHIN, "every target scraped twice and AlwaysFiring firing",
                 logs=stack.logs)
        yield stack
    finally:
        process.stop()
        held.close()
        shutil.rmtree(directory, ignore_errors=True)
