"""A real Apache Airflow 3.3.2 on loopback: api-server, scheduler and dag-processor with LocalExecutor on SQLite.

Import the ``airflow`` fixture into a test module. Airflow lives in its own venv under
``~/.cache/lakedeck-tests/airflow-3.3.2`` (installed from PyPI on first use, ~20 s); the DAGs are a copy of
``tests/airflow_dags``. When it cannot be installed or does not start, the tests are skipped with the reason,
or fail under LAKEDECK_REQUIRE_INTEGRATION=1.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from integration import required

VERSION = "3.3.2"
USERNAME, PASSWORD = "admin", "admin"
JWT_SECRET = "lakedeck-tests-not-a-secret"
DAGS_SOURCE = Path(__file__).parent / "airflow_dags"
TEST_DAGS = ("ok_dag", "failing_dag", "nightly_dag")
INSTALL_WITHIN = 900.0
READY_WITHIN = 120.0
STOP_WITHIN = 20.0
TAIL_CHARS = 3000
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lakedeck-tests"


def unavailable(reason: str) -> None:
    if required():
        pytest.fail(f"LAKEDECK_REQUIRE_INTEGRATION=1 but {reason}")
    pytest.skip(reason)


# -- install --------------------------------------------------------------------------------------------


def base_python() -> str:
    """A plain interpreter for the new venv: the one under this venv, so Airflow gets a supported Python."""
    return getattr(sys, "_base_executable", None) or sys.executable


def installed_venv() -> Path:
    """Airflow's venv, installed when missing. A venv cannot be moved after it is made (its scripts name
    their own path), so a half-made one is marked by a missing ``.complete`` file and made again; a lock
    keeps two test runs from installing at once."""
    venv = cache_dir() / f"airflow-{VERSION}"
    marker = venv / ".complete"
    if marker.exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"airflow-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            _install(venv)
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return venv


def _install(venv: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    log = venv.parent / f"airflow-{VERSION}-install.log"
    steps = ([base_python(), "-m", "venv", str(venv)],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"apache-airflow=={VERSION}"])
    with open(log, "w") as out:
        for argv in steps:
            try:
                code = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=INSTALL_WITHIN).returncode
            except (OSError, subprocess.TimeoutExpired) as exc:
                code = -1
                out.write(f"{exc}\n")
                out.flush()
            if code != 0:
                shutil.rmtree(venv, ignore_errors=True)
                said = [line for line in tail(log, 2000).splitlines() if line.strip()]
                unavailable(f"cannot install Airflow {VERSION}: {said[-1] if said else f'exit {code}'} "
                            f"(the whole output: {log})")


# -- the running Airflow ------------------------------------------------------------------------------


def tail(path: Path, chars: int = TAIL_CHARS) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Airflow:
    """The running instance, with a few direct API calls for the tests' own setup and checks."""

    home: Path
    port: int
    venv: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    username: str = USERNAME
    password: str = PASSWORD
    _token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dags_dir(self) -> Path:
        return self.home / "dags"

    def logs(self) -> str:
        """The tail of every process's output, for a failure message."""
        return "\n".join(f"--- {name}.log ---\n{tail(self.home / f'{name}.log')}" for name in self.processes)

    def env(self) -> dict[str, str]:
        home = str(self.home)
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_dir),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": f"{home}/passwords.json",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        }

    def airflow(self, *args: str) -> list[str]:
        return [str(self.venv / "bin" / "airflow"), *args]

    def start(self, name: str, *args: str) -> None:
        with open(self.home / f"{name}.log", "w") as out:
            self.processes[name] = subprocess.Popen(
                self.airflow(*args), env=self.env(), cwd=self.home, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> list[str]:
        """SIGTERM to each process group, SIGKILL after a grace (a busy scheduler can take longer than that to
        finish; that is Airflow's business); what is still alive after the SIGKILL, which would be ours."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WITHIN
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for process in self.processes.values():
            while _group_members(process.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(process, signal.SIGKILL)  # children a task runner left: gone now
        time.sleep(0.5)
        return [f"{name} {left}" for name, process in self.processes.items() if (left := _group_members(process.pid))]

    # -- direct API calls (urllib: the tests check the adapter, not themselves) -----------------------

    def token(self) -> str:
        if not self._token:
            answer = self.call("POST", "/auth/token", {"username": self.username, "password": self.password},
                               auth=False)
            self._token = answer["access_token"]
        return self._token

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True, timeout: float = 10.0) -> Any:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with DIRECT.open(request, timeout=timeout) as response:
            text = response.read()
        return json.loads(text) if text.strip() else None

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.call("GET", "/api/v2/dags?limit=100")["dags"]}

    def run_of(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def wait_for_run(self, dag_id: str, run_id: str, states: set[str], within: float = 90.0) -> dict[str, Any]:
        """The run once its state is one of ``states``; fails with the processes' logs after ``within``."""
        deadline = time.monotonic() + within
        while True:
            run = self.run_of(dag_id, run_id)
            if run["state"] in states:
                return run
            if time.monotonic() > deadline:
                pytest.fail(f"{dag_id} run {run_id} is {run['state']} after {within:g}s\n{self.logs()}")
            time.sleep(0.5)

    def trigger(self, dag_id: str) -> str:
        """A run of ``dag_id`` (unpaused first), its run id."""
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        return self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"]


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _group_members(pgid: int) -> list[int]:
    """The live processes of a process group (zombies waiting for their parent do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_ready(server: Airflow) -> None:
    deadline = time.monotonic() + READY_WITHIN
    missing: set[str] = set(TEST_DAGS)
    while True:
        for name, process in server.processes.items():
            if process.poll() is not None:
                pytest.fail(f"airflow {name} exited with {process.returncode}\n{server.logs()}")
        try:
            server.call("GET", "/api/v2/monitor/health", auth=False, timeout=2)
            missing = set(TEST_DAGS) - server.dag_ids()
            if not missing:
                return
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"Airflow was not ready within {READY_WITHIN:g}s (DAGs missing: {sorted(missing)})\n"
                        f"{server.logs()}")
        time.sleep(0.5)


def _migrate(server: Airflow) -> None:
    with open(server.home / "migrate.log", "w") as out:
        code = subprocess.run(server.airflow("db", "migrate"), check=False, env=server.env(), cwd=server.home,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=300).returncode
    if code != 0:
        pytest.fail(f"airflow db migrate exited with {code}\n{tail(server.home / 'migrate.log')}")


# per module, not per run: a running scheduler would take CPU from every test that comes after it
@pytest.fixture(scope="module")
def airflow() -> Iterator[Airflow]:
    venv = installed_venv()
    home = Path(tempfile.mkdtemp(prefix="ld-airflow-"))
    server = Airflow(home, free_port(), venv)
    shutil.copytree(DAGS_SOURCE, server.dags_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (home / "passwords.json").write_text(json.dumps({"admin": "admin", "viewer": "viewer"}))
    try:
        _migrate(server)
        server.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(server.port), "--workers", "1")
        server.start("scheduler", "scheduler", "--skip-serve-logs")
        server.start("dag-processor", "dag-processor")
        _wait_ready(server)
        yield server
    finally:
        killed = server.stop()
        logs = server.logs()
        shutil.rmtree(home, ignore_errors=True)
        if killed:
            pytest.fail(f"airflow: processes left running after SIGKILL: {', '.join(killed)}\n{logs}")
