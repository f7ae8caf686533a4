"""The command line as a user runs it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

LAKEDECK = [sys.executable, "-m", "tui.cli"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "LAKEDECK_CONFIG"}
    full_env.update(env or {})
    return subprocess.run([*LAKEDECK, *args], capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=Path(__file__).parent.parent)


@pytest.fixture
def listening_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def closed_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "lakedeck.yaml"
    path.write_text(text)
    return str(path)


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == "lakedeck 0.1.0"


def test_validate_ok_and_error(tmp_path):
    good = write(tmp_path, "services:\n  - {name: db, kind: tcp, port: 5432}\n")
    out = run("config", "validate", good)
    assert out.returncode == 0 and "OK (1 sources: 1 services, 0 hosts, 0 metrics, 0 pipelines, 0 logs, 0 backups, 0 tables, 0 alerts; 0 rules)" in out.stdout
    bad = write(tmp_path, "services:\n  - name: db\n    kind: tcp\n    prot: 5432\n")
    out = run("config", "validate", bad)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"{bad}:4:5: unknown key 'prot' in services[0] (expected one of: name, kind, refresh, timeout, host, port, "
        "warn_latency, actions, read_only, logs)"]
    assert "Traceback" not in out.stderr


def test_bad_config_for_the_console_exits_2_before_any_screen(tmp_path):
    bad = write(tmp_path, "refresh: [1, 2]\n")
    out = run("-c", bad)
    assert out.returncode == 2 and out.stderr.strip() == f"{bad}:1:10: refresh must be a single value, not a list"
    assert out.stdout == ""


def test_bad_flag_is_one_line():
    out = run("--theme", "neon")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "invalid choice: 'neon'" in out.stderr


def test_schema_is_json():
    out = run("config", "schema")
    assert out.returncode == 0 and json.loads(out.stdout)["title"] == "lakedeck configuration"


def test_check_exit_codes(tmp_path, listening_port, closed_port):
    ok = write(tmp_path, f"services:\n  - {{name: up, kind: tcp, port: {listening_port}}}\n")
    out = run("check", "-c", ok)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0].split() == ["STATE", "KEY", "WHAT", "REASON"]
    assert out.stdout.splitlines()[1].startswith("OK  ")

    warn = write(tmp_path, "services:\n  - {name: w, kind: command, command: [sh, -c, 'echo degraded; exit 1']}\n")
    out = run("check", "-c", warn)
    assert out.returncode == 1 and "degraded" in out.stdout

    down = write(tmp_path, f"services:\n  - {{name: up, kind: tcp, port: {listening_port}}}\n"
                           f"  - {{name: down, kind: tcp, port: {closed_port}}}\n")
    out = run("check", "--json", "-c", down)
    assert out.returncode == 2
    states = {r["key"]: r["state"] for r in json.loads(out.stdout)["readings"]}
    assert states == {"up": "OK", "down": "CRITICAL"}


def test_check_on_the_built_in_default(tmp_path):
    out = run("check", "--json", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert out.returncode in (0, 1, 2)
    data = json.loads(out.stdout)
    assert data["origin"] == "<built-in default>"
    keys = {r["key"] for r in data["readings"]}
    assert {"local:cpu", "local:memory", "local:processes"} <= keys
    assert any(k.startswith("local:disk:") for k in keys)


def test_config_is_found_through_the_environment(tmp_path, listening_port):
    path = write(tmp_path, f"services:\n  - {{name: via-env, kind: tcp, port: {listening_port}}}\n")
    out = run("check", "--json", env={"LAKEDECK_CONFIG": path})
    assert [r["key"] for r in json.loads(out.stdout)["readings"]] == ["via-env"]
