"""A real dbt-core 1.11 with dbt-duckdb in a venv of its own, and fresh copies of tests/dbt_project.

A test module names this file in ``pytest_plugins``. The venv is made once per machine in ~/.cache/lakedeck-tests/dbt-1.11
(about 15 s from PyPI); it is built beside that directory and renamed into place, so a half-made one is never
used. When it cannot be made the test is skipped with the reason, or fails under LAKEDECK_REQUIRE_INTEGRATION=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from integration import required

VENV = Path.home() / ".cache" / "lakedeck-tests" / "dbt-1.11"
PACKAGES = ("dbt-core>=1.11,<1.12", "dbt-duckdb==1.11.1")  # dbt-core 1.12 cannot be installed here
PROJECT = Path(__file__).parent / "dbt_project"
DBT_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DO_NOT_TRACK": "1", "DBT_USE_COLORS": "False"}
INSTALL_TIMEOUT = 600


def _give_up(reason: str) -> None:
    if required():
        pytest.fail(f"LAKEDECK_REQUIRE_INTEGRATION=1 but {reason}")
    pytest.skip(reason)


def _install(venv: Path) -> str:
    """Make the venv at ``venv``; "" when done, else why not (the tail of pip's output)."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"{venv.name}.building-", dir=venv.parent))
    try:
        steps = ([sys.executable, "-m", "venv", str(building)],
                 [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  *PACKAGES])
        for argv in steps:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                                  check=False)
            if done.returncode != 0:
                return f"cannot install {' '.join(PACKAGES)}: {_errors(done.stderr or done.stdout)}"
        _point_scripts_at(building, venv)
        try:
            building.rename(venv)
        except OSError:
            if not (venv / "bin" / "dbt").exists():  # not another session that got there first
                raise
        return ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot install {' '.join(PACKAGES)}: {exc}"
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _errors(output: str) -> str:
    """pip's ERROR lines (else its last lines), each cut short: its list of every version is long."""
    lines = output.strip().splitlines()
    chosen = [line for line in lines if line.startswith("ERROR:")] or lines[-3:]
    return " | ".join(line if len(line) <= 200 else line[:199] + "…" for line in chosen)


def _point_scripts_at(building: Path, venv: Path) -> None:
    """pip writes the venv's own path into its scripts' #! lines: make them name where the venv will be."""
    old, new = f"#!{building}/".encode(), f"#!{venv}/".encode()
    for script in (building / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            content = script.read_bytes()
            if content.startswith(old):
                script.write_bytes(new + content[len(old):])


@pytest.fixture(scope="session")
def dbt_executable() -> str:
    """The path of a working ``dbt`` (dbt-core 1.11, dbt-duckdb 1.11.1)."""
    dbt = VENV / "bin" / "dbt"
    if not dbt.exists():
        problem = _install(VENV)
        if problem:
            _give_up(problem)
    check = subprocess.run([str(dbt), "--version"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, **DBT_ENV}, check=False)
    if check.returncode != 0 or "duckdb" not in check.stdout:
        _give_up(f"{dbt} --version failed: {(check.stderr or check.stdout).strip()[-300:]}")
    return str(dbt)


def copy_project(destination: Path) -> Path:
    """tests/dbt_project without anything a run left in it, at ``destination``."""
    shutil.copytree(PROJECT, destination, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
    return destination


@pytest.fixture
def dbt_project(tmp_path: Path) -> Path:
    """A fresh copy of the test project (shop: 4 models, 5 tests, one of which fails), never run."""
    return copy_project(tmp_path / "shop")


@pytest.fixture(scope="session")
def built_dbt_project_once(dbt_executable: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test project after one ``dbt build`` (run directly, not through the adapter), shared read-only."""
    project = copy_project(tmp_path_factory.mktemp("dbt-built") / "shop")
    done = subprocess.run([dbt_executable, "build", "--project-dir", str(project), "--profiles-dir", str(project)],
                          cwd=project, capture_output=True, text=True, timeout=300, env={**os.environ, **DBT_ENV},
                          check=False)
    if done.returncode != 1 or not (project / "target" / "run_results.json").exists():  # 1: a test fails
        pytest.fail(f"dbt build exited {done.returncode}, expected 1: {done.stdout[-2000:]}")
    return project


@pytest.fixture
def built_dbt_project(built_dbt_project_once: Path, tmp_path: Path) -> Path:
    """A copy of the built project, for one test to change as it likes."""
    return Path(shutil.copytree(built_dbt_project_once, tmp_path / "shop"))
