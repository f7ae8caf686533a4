"""Shared helpers for the benchmarks: tmux sessions, the local HTTP server, process figures, report rows.

Everything runs on this machine and talks only to 127.0.0.1. tmux runs on a socket of its own
(``tmux -L lakedeck-bench-PID``), so the benchmarks never touch the operator's tmux sessions.
"""

from __future__ import annotations

import compileall
import contextlib
import datetime
import hashlib
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator, Sequence

import psutil
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"  # scratch files (git-ignored)
PYTHON = sys.executable
LAKEDECK = str(Path(sys.executable).with_name("lakedeck"))  # the console script beside this interpreter
HELLO = [PYTHON, str(BENCH / "hello.py")]
SOCKET = f"lakedeck-bench-{os.getpid()}"
WIDTH, HEIGHT = 120, 40
PACKAGES = ("backends", "tui", "widgets", "themes")
FROZEN = OUT / "lakedeck-src"  # the copy of lakedeck's packages that a run measures (see freeze())
_frozen = False


# -- the code under test ---------------------------------------------------------------------------

def source_version() -> str:
    """The commit, whether lakedeck's packages differ from it, and a fingerprint of their files as they are now."""
    commit = _command_output("git", "rev-parse", "--short", "HEAD")
    changed = _command_output("git", "status", "--porcelain", "--", *PACKAGES)
    digest = hashlib.sha1()
    for path in sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*") if p.is_file() and p.suffix in
                       (".py", ".tcss")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return f"{commit}{' + uncommitted changes' if changed else ''} (source fingerprint {digest.hexdigest()[:10]})"


def freeze() -> str:
    """Copy lakedeck's packages aside, with a copy of the console script, and run them from there, so that
    every benchmark of a run measures the same code while the work tree (or the editable install) changes.
    Call before anything imports ``backends``. Returns the version of the copied code."""
    global _frozen
    version = source_version()
    shutil.rmtree(FROZEN, ignore_errors=True)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, FROZEN / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    # byte-compile now: with PYTHONDONTWRITEBYTECODE set, every launch would otherwise compile it all again
    compileall.compile_dir(FROZEN, quiet=1)
    (FROZEN / "lakedeck").write_text("import sys\nfrom tui.cli import main\nsys.exit(main())\n")  # as pip's script
    sys.path.insert(0, str(FROZEN))
    _frozen = True
    return version


# -- tmux ------------------------------------------------------------------------------------------

def tmux(*args: str, check: bool = True) -> str:
    result = subprocess.run(["tmux", "-L", SOCKET, "-f", "/dev/null", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"tmux {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@contextlib.contextmanager
def tmux_server() -> Iterator[None]:
    """A private tmux server, kept up by an idle session so that every measured launch finds it running."""
    tmux("new-session", "-d", "-s", "keeper", "-x", str(WIDTH), "-y", str(HEIGHT), "sleep", "1000000")
    tmux("set-option", "-g", "remain-on-exit", "on")  # a program that dies leaves its last screen to read
    try:
        yield
    finally:
        tmux("kill-server", check=False)


class Session:
    """One program in a detached tmux window of WIDTH x HEIGHT, started with an argument list (no shell)."""

    def __init__(self, name: str, argv: Sequence[str]) -> None:
        self.name, self.argv = name, list(argv)
        self.pid = 0

    def start(self) -> float:
        """Launch; returns the perf_counter time just before tmux was asked to start the program."""
        started = time.perf_counter()
        tmux("new-session", "-d", "-s", self.name, "-x", str(WIDTH), "-y", str(HEIGHT), *self.argv)
        self.pid = int(tmux("display-message", "-p", "-t", self.name, "#{pane_pid}"))
        return started

    def screen(self) -> str:
        return tmux("capture-pane", "-p", "-t", self.name, check=False)

    def alive(self) -> bool:
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def wait_for(self, ready: Callable[[str], bool], timeout: float = 30.0, every: float = 0.01) -> float:
        """Poll the screen every ``every`` s until ``ready(screen)``; the perf_counter time it was seen."""
        deadline = time.perf_counter() + timeout
        checks = 0
        while True:
            text = self.screen()
            now = time.perf_counter()
            if ready(text):
                return now
            checks += 1
            if now > deadline or (checks % 50 == 0 and not self.alive()):
                raise RuntimeError(f"{self.name}: marker not on screen ({'timed out' if self.alive() else 'exited'}); "
                                   f"screen:\n{text}")
            time.sleep(max(0.0, every - (time.perf_counter() - now)))

    def record_output(self, path: Path) -> None:
        """Append every byte the program writes to its terminal to ``path`` (tmux pipe-pane)."""
        tmux("pipe-pane", "-t", self.name, f"cat >> {shlex.quote(str(path))}")

    def stop(self, timeout: float = 10.0) -> None:
        """Close the window (the program gets SIGHUP) and wait until the process is gone."""
        tmux("kill-session", "-t", self.name, check=False)
        deadline = time.monotonic() + timeout
        while self.pid and self.alive():
            if time.monotonic() > deadline:
                os.kill(self.pid, 9)  # our own child's child, by its pid
                break
            time.sleep(0.02)


def lakedeck_argv(*args: str, xdg: Path | None = None) -> list[str]:
    """lakedeck with no config from the environment; ``env`` execs it, so the pane's pid is lakedeck's."""
    env = ["env", "-u", "LAKEDECK_CONFIG"] + ([f"XDG_CONFIG_HOME={xdg}"] if xdg else [])
    command = [PYTHON, str(FROZEN / "lakedeck")] if _frozen else [LAKEDECK]  # the copy imports from beside it
    return [*env, *command, *args]


# -- the local HTTP server and configs -------------------------------------------------------------

@contextlib.contextmanager
def http_server() -> Iterator[int]:
    """bench/server.py in its own process; yields its port on 127.0.0.1."""
    proc = subprocess.Popen([PYTHON, str(BENCH / "server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


def http_services(port: int, count: int, path: str = "/health") -> list[dict]:
    return [{"name": f"api-{i:03d}", "kind": "http", "url": f"http://127.0.0.1:{port}{path}?check={i}",
             "expect_json": {"status": "UP"}} for i in range(count)]


def write_config(path: Path, **sections: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(sections, sort_keys=False), encoding="utf-8")
    return path


# -- process figures -------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


# -- statistics and report rows --------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def listing(values: Sequence[float], fmt: str = "{:.3f}") -> str:
    return ", ".join(fmt.format(v) for v in values)


@dataclass
class Row:
    what: str
    figure: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    passed: bool | None = None  # None: informational, no target

    @property
    def verdict(self) -> str:
        return {True: "**pass**", False: "**FAIL**", None: "—"}[self.passed]


@dataclass
class Section:
    title: str
    method: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)  # markdown lines: raw samples, curves, caveats

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", self.method, "",
                 "| measurement | figure (median) | baseline (median) | ratio | target | result |",
                 "|---|---|---|---|---|---|"]
        lines += [f"| {r.what} | {r.figure} | {r.baseline} | {r.ratio} | {r.target} | {r.verdict} |" for r in self.rows]
        if self.notes:
            lines += [""] + self.notes
        return "\n".join(lines) + "\n"


def ratio(figure: float, baseline: float) -> str:
    return f"{figure / baseline:.2f}x" if baseline > 0 else "—"


# -- the machine -----------------------------------------------------------------------------------

def _command_output(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return "?"


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def machine(version: str) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- nproc: {os.cpu_count()} ({cpu}); memory {psutil.virtual_memory().total / 2**30:.1f} GiB",
        f"- {platform.system()} {platform.release()}; Python {platform.python_version()}; "
        f"Textual {metadata.version('textual')}; Rich {metadata.version('rich')}; httpx {metadata.version('httpx')}; "
        f"{_command_output('tmux', '-V')}",
        f"- lakedeck {metadata.version('lakedeck')} at {version}; every section ran this code, copied to "
        f"bench/out/lakedeck-src when the run started",
    ]


# The vocabulary of the benchmarks' logs: a lakehouse's services, mostly INFO and DEBUG.
LOG_LEVELS = ["INFO"] * 60 + ["DEBUG"] * 30 + ["WARN"] * 7 + ["ERROR"] * 3
LOG_COMPONENTS = ["ingest-worker", "compactor", "catalog-sync", "query-gateway", "lineage-api", "scheduler"]
LOG_MESSAGES = [
    "flushed batch {n} to s3://lake/raw/events part={p:05d} rows={r} in {ms} ms",
    "committed snapshot {n} on table analytics.orders ({r} files added)",
    "served GET /api/v1/tables/{p} status=200 bytes={r} in {ms} ms",
    "cache refresh for namespace sales took {ms} ms, {r} entries",
    "checkpoint {n} written, lag {ms} ms, watermark offset {r}",
]
LOG_TIMEOUT = "upstream timeout after 30 s calling catalog at 10.0.{p}.7:8181 (attempt {r})"
