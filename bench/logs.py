"""6. The log viewer on screen: `lakedeck tail` of a big file, following a busy file, and its RSS while following.

    python bench/logs.py [--quick]

All in tmux at 120x40, each beside its floor measured in the same run:
- the time until a big file's last line is on screen, against `tail -n 1000 FILE` and toolong (`tl FILE`,
  installed on first use into bench/out/toolong-venv);
- the lag behind a file appended at fixed rates (bench/log_writer.py), against `tail -F FILE`;
- lakedeck's RSS and CPU while it follows 10,000 lines/s, beside an idle Textual hello-world.
The big logs are written once to bench/out/logs-<size>m.log and reused; their last line holds a unique marker.
"""

from __future__ import annotations

import math
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from common import (BENCH, HELLO, LOG_COMPONENTS, LOG_LEVELS, LOG_MESSAGES, LOG_TIMEOUT, OUT, PYTHON, Row, Section,
                    Session, cpu_seconds, lakedeck_argv, listing, median, ratio, rss_mb, tmux, tmux_server)

MIB = 1024 * 1024
SIZES_MIB = (100, 1024)
TAIL_TARGET = 0.5  # seconds until the last line of the 1 GiB log is on screen
RATES = (5_000, 10_000, 20_000, 40_000)  # lines/s appended while following
FOLLOW_TARGET = 20_000
LAG_LIMIT = 1.0  # a rate is followed when the p95 lag stays under this
FOLLOW_WARMUP = 2.0  # seconds of writing before lags are sampled: lakedeck looks at a quiet file every 0.25 s,
#                     and then catches up with what arrived meanwhile
SAMPLE_EVERY = 0.1
RSS_RATE = 10_000
RSS_SETTLED = 10  # seconds: growth is measured from here to the end
RSS_TARGET_MB = 5.0
TOOLONG_VENV = OUT / "toolong-venv"
WRITER = [PYTHON, str(BENCH / "log_writer.py")]


# -- the big logs ----------------------------------------------------------------------------------

PLACEHOLDER = b"YYYY-MM-DDTHH:MM"  # each block of lines is one minute; its date and minute are filled in per block
LINES_PER_MINUTE = 8_000  # ~1 MB of ~120-byte lines a minute
LEVELS, LOGGERS, MESSAGES = LOG_LEVELS, LOG_COMPONENTS, [*LOG_MESSAGES, LOG_TIMEOUT]
START_MINUTE = time.mktime((2026, 11, 21, 0, 0, 0, 0, 0, 0)) - time.timezone  # 2026-11-21T00:00Z
MARKER = re.compile(rb"LAST-LINE-[0-9a-f]{32}")


def minute_of_lines(rng: random.Random) -> bytes:
    """One minute of log lines (ISO timestamp, level, logger, message) with PLACEHOLDER for the date and minute."""
    lines = []
    for n, second in enumerate(sorted(rng.uniform(0, 60) for _ in range(LINES_PER_MINUTE))):
        fields = {"n": n, "p": rng.randrange(100), "r": rng.randrange(100_000), "ms": rng.randrange(900)}
        message = rng.choice(MESSAGES).format(**fields)
        stamp = f"{PLACEHOLDER.decode()}:{int(second):02d}.{int(second % 1 * 1e6):06d}Z"
        lines.append(f"{stamp} {rng.choice(LEVELS):<5} [{rng.choice(LOGGERS)}-{n % 8}] {message}\n")
    return "".join(lines).encode()


def last_line(minute: int, marker: str) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:00.000000Z", time.gmtime(START_MINUTE + 60 * minute))
    return f"{stamp} INFO  [bench-end] {marker} is the last line of this file\n".encode()


def big_log(size_mib: int) -> tuple[Path, str]:
    """bench/out/logs-<size>m.log and the marker on its last line; written on first use, in blocks of 16 minutes."""
    path = OUT / f"logs-{size_mib}m.log"
    template = minute_of_lines(random.Random(2026))
    minutes = math.ceil(size_mib * MIB / len(template))
    size = minutes * len(template) + len(last_line(minutes, f"LAST-LINE-{'0' * 32}"))
    marker = marker_in(path) if path.exists() and path.stat().st_size == size else None
    if marker:
        return path, marker
    marker = f"LAST-LINE-{uuid.uuid4().hex}"
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        for first in range(0, minutes, 16):
            out.write(b"".join(template.replace(PLACEHOLDER, minute_stamp(m))
                               for m in range(first, min(first + 16, minutes))))
        out.write(last_line(minutes, marker))
    partial.rename(path)
    return path, marker


def minute_stamp(minute: int) -> bytes:
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(START_MINUTE + 60 * minute)).encode()


def marker_in(path: Path) -> str | None:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 200))
        found = MARKER.search(handle.read())
    return found.group().decode() if found else None


def warm(path: Path) -> None:
    """Read the file once so that every program reads it from the page cache."""
    with path.open("rb", buffering=0) as handle:
        while handle.read(8 * MIB):
            pass


# -- toolong ---------------------------------------------------------------------------------------

def toolong() -> tuple[list[str] | None, str]:
    """The command of toolong (installed into bench/out/toolong-venv on first use) and its version,
    or None and why it is not available."""
    tl, python = TOOLONG_VENV / "bin" / "tl", TOOLONG_VENV / "bin" / "python"
    try:
        if not tl.exists():
            subprocess.run([PYTHON, "-m", "venv", str(TOOLONG_VENV)], check=True, capture_output=True, text=True,
                           timeout=300)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", "toolong"], check=True,
                           capture_output=True, text=True, timeout=600)
        script = "from importlib.metadata import version as v; print(v('toolong'), v('textual'))"
        versions = subprocess.run([str(python), "-c", script], check=True, capture_output=True, text=True,
                                  timeout=60).stdout.split()
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or exc.stdout or "").strip().splitlines()
        return None, f"`{' '.join(map(str, exc.cmd))}` failed: {lines[-1] if lines else exc.returncode}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    return [str(tl)], f"toolong {versions[0]} (Textual {versions[1]})"


# -- processes in the panes ------------------------------------------------------------------------

def lakedeck_pid(session: Session) -> int:
    """lakedeck's python process: the pane's own (lakedeck_argv execs it) or a child of it."""
    pane = psutil.Process(session.pid)
    for process in (pane, *pane.children(recursive=True)):
        argv = process.cmdline()
        if argv and "python" in os.path.basename(argv[0]) and any("lakedeck" in a or a == "tui.cli" for a in argv):
            return process.pid
    raise RuntimeError(f"{session.name}: lakedeck is not running in the pane")


def tmux_server_pid() -> int:
    return int(tmux("display-message", "-p", "#{pid}"))


def percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else math.nan
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


# -- 1. the tail of a big file ---------------------------------------------------------------------

def seconds_until_on_screen(name: str, argv: list[str], marker: str, timeout: float = 180.0) -> float:
    session = Session(name, argv)
    started = session.start()
    try:
        return session.wait_for(lambda screen: marker in screen, timeout) - started
    finally:
        session.stop()
        time.sleep(0.3)


@dataclass
class TailTimes:
    size_mib: int
    seconds: dict[str, list[float]] = field(default_factory=dict)  # program -> runs
    failed: list[str] = field(default_factory=list)


def tail_times(size_mib: int, programs: dict[str, Callable[[Path], list[str]]], runs: int) -> TailTimes:
    path, marker = big_log(size_mib)
    warm(path)
    times = TailTimes(size_mib, {name: [] for name in programs})
    for i in range(runs):
        order = list(programs) if i % 2 == 0 else list(reversed(programs))  # interleaved
        for name in order:
            try:
                times.seconds[name].append(seconds_until_on_screen(f"logs-tail-{name}-{size_mib}-{i}",
                                                                   programs[name](path), marker))
            except RuntimeError as exc:  # reported; the other runs go on
                times.failed.append(f"{name}, {size_mib} MiB: " + " / ".join(
                    line.strip() for line in str(exc).splitlines() if line.strip())[:300])
    return times


def warm_up_programs(programs: dict[str, Callable[[Path], list[str]]]) -> None:
    """One uncounted run of each on the smaller log: .pyc files and the programs' own files in the page cache."""
    path, marker = big_log(SIZES_MIB[0])
    for name, argv in programs.items():
        try:
            seconds_until_on_screen(f"logs-warmup-{name}", argv(path), marker)
        except RuntimeError:
            pass  # a program that fails shows it in the counted runs


# -- 2. following a busy file ----------------------------------------------------------------------

SEQ = re.compile(r"SEQ (\d+) (\d+) ")


def newest_seq_ns(text: str) -> int | None:
    """The writer's time stamp of the newest SEQ line in ``text`` (a screen or the end of the file)."""
    found = [(int(n), int(ns)) for n, ns in SEQ.findall(text)]
    return max(found)[1] if found else None


def last_written_ns(path: Path) -> int | None:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        tail = handle.read().decode("ascii", "replace")
    return newest_seq_ns(tail[:tail.rfind("\n") + 1])


@dataclass
class Follow:
    program: str
    rate: int
    lags: list[float]  # seconds, one per sample after the warm-up
    first_seen: float  # seconds from the writer's start until a SEQ line was on screen (nan: never)
    cpu: float  # % of one core, the viewer, over the writer's run
    tmux_cpu: float  # % of one core, the tmux server (the terminal) over the same window
    written: str  # what the writer says it did: lines, seconds, largest batch

    @property
    def p50(self) -> float:
        return median(self.lags) if self.lags else math.nan

    @property
    def p95(self) -> float:
        return percentile(self.lags, 95)


def start_writer(path: Path, rate: int, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([*WRITER, str(path), str(rate), str(seconds)], stdout=subprocess.PIPE, text=True)


def stop_writer(writer: subprocess.Popen) -> None:
    if writer.poll() is None:
        writer.terminate()
    writer.wait(10)


def open_on_fresh_log(name: str, argv: Callable[[Path], list[str]], path: Path) -> Session:
    """A viewer on a new log of one line, started and showing that line."""
    marker = f"START-{uuid.uuid4().hex}"
    path.write_text(f"{marker} the writer appends below this line\n")
    session = Session(name, argv(path))
    session.start()
    try:
        session.wait_for(lambda screen: marker in screen, 30)
    except RuntimeError:
        session.stop()
        raise
    return session


def follow(program: str, argv: Callable[[Path], list[str]], rate: int, seconds: float) -> Follow:
    path = OUT / f"logs-follow-{program}-{rate}.log"
    session = writer = None
    try:
        session = open_on_fresh_log(f"logs-follow-{program}-{rate}", argv, path)
        viewer, server = lakedeck_pid(session) if program == "lakedeck" else session.pid, tmux_server_pid()
        cpu0, tmux0, started = cpu_seconds(viewer), cpu_seconds(server), time.perf_counter()
        writer = start_writer(path, rate, FOLLOW_WARMUP + seconds)
        lags, first_seen = sample_lags(session, path, writer)
        elapsed = time.perf_counter() - started
        return Follow(program, rate, lags, first_seen, 100 * (cpu_seconds(viewer) - cpu0) / elapsed,
                      100 * (cpu_seconds(server) - tmux0) / elapsed, writer.stdout.read().strip())
    finally:
        if writer is not None:
            stop_writer(writer)
        if session is not None:
            session.stop()
        path.unlink(missing_ok=True)
        time.sleep(0.3)


def sample_lags(session: Session, path: Path, writer: subprocess.Popen) -> tuple[list[float], float]:
    """Until the writer ends: the lag every SAMPLE_EVERY once FOLLOW_WARMUP has passed (every 10 ms before
    that, to see when the first SEQ line shows), and that moment, in seconds from now."""
    started, started_ns = time.perf_counter(), time.monotonic_ns()
    lags, first_seen = [], math.nan
    while writer.poll() is None:
        sampled = time.perf_counter()
        written, shown = last_written_ns(path), newest_seq_ns(session.screen())
        if shown is not None and math.isnan(first_seen):
            first_seen = time.perf_counter() - started
        warming = sampled - started < FOLLOW_WARMUP
        if not warming and written is not None:  # nothing on screen yet: behind by all since the start
            lags.append(max(0, written - (shown if shown is not None else started_ns)) / 1e9)
        time.sleep(max(0.0, (0.01 if warming else SAMPLE_EVERY) - (time.perf_counter() - sampled)))
    return lags, first_seen


def followed(runs: list[Follow]) -> int:
    """The highest rate whose p95 lag stays under LAG_LIMIT (0: none)."""
    return max((run.rate for run in runs if run.p95 < LAG_LIMIT), default=0)


# -- 3. RSS while following ------------------------------------------------------------------------

@dataclass
class Memory:
    rss: list[float]  # MB, every second from the writer's start
    hello_rss: list[float]
    cpu: float  # % of one core over the window
    end_lag: float  # seconds behind the writer on the last screen
    written: str


def rss_while_following(seconds: float) -> Memory:
    path = OUT / "logs-rss.log"
    hello = Session("logs-rss-hello", HELLO)
    hello.start()
    session = writer = None
    try:
        session = open_on_fresh_log("logs-rss", lambda p: lakedeck_argv("tail", str(p)), path)
        pid = lakedeck_pid(session)
        rss, hello_rss = [rss_mb(pid)], [rss_mb(hello.pid)]
        cpu0, started = cpu_seconds(pid), time.monotonic()
        writer = start_writer(path, RSS_RATE, seconds + 1)  # outlasts the window
        for second in range(1, int(seconds) + 1):
            time.sleep(max(0.0, started + second - time.monotonic()))
            rss.append(rss_mb(pid))
            hello_rss.append(rss_mb(hello.pid))
        cpu = 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - started)
        written, shown = last_written_ns(path), newest_seq_ns(session.screen())
        end_lag = (written - shown) / 1e9 if written and shown else math.nan
        writer.wait(30)
        return Memory(rss, hello_rss, cpu, end_lag, writer.stdout.read().strip())
    finally:
        if writer is not None:
            stop_writer(writer)
        if session is not None:
            session.stop()
        hello.stop()
        path.unlink(missing_ok=True)


# -- the report ------------------------------------------------------------------------------------

def size_label(size_mib: int) -> str:
    return f"{size_mib // 1024} GiB" if size_mib >= 1024 else f"{size_mib} MiB"


def tail_rows(results: list[TailTimes], toolong_note: str, notes: list[str]) -> list[Row]:
    """Per size: lakedeck vs `tail`, and vs toolong; the targets apply to the biggest log."""
    rows = []
    for result in results:
        label, big = size_label(result.size_mib), result.size_mib == max(SIZES_MIB)
        medians = {name: median(times) if times else math.nan for name, times in result.seconds.items()}
        mine, tail = medians["lakedeck"], medians["tail"]
        rows.append(Row(f"tail of a {label} log: last line on screen, vs `tail -n 1000 -f`", f"{mine:.3f} s",
                        f"{tail:.3f} s", ratio(mine, tail), f"< {TAIL_TARGET:g} s" if big else "—",
                        mine < TAIL_TARGET if big else None))
        what = f"tail of a {label} log: last line on screen, vs toolong"
        if "toolong" not in medians:
            rows.append(Row(what, f"{mine:.3f} s", toolong_note))
        else:
            theirs = medians["toolong"]
            rows.append(Row(what, f"{mine:.3f} s", f"{theirs:.3f} s", ratio(mine, theirs),
                            "faster than toolong" if big else "—", mine < theirs if big else None))
        notes.append(f"- {label}, s: " + "; ".join(f"{name} {listing(times)}" for name, times in result.seconds.items()))
        notes += [f"- FAILED run (not counted): `{failure}`" for failure in result.failed]
    return rows


def follow_rows(mine: list[Follow], floor: list[Follow], notes: list[str]) -> list[Row]:
    rows = []
    for run, base in zip(mine, floor):
        rows.append(Row(f"follow {run.rate:,} lines/s: lag median / p95, vs `tail -F`",
                        f"{run.p50:.3f} / {run.p95:.3f} s", f"{base.p50:.3f} / {base.p95:.3f} s",
                        "—"))
        for r in (run, base):
            notes.append(f"- {r.program} at {r.rate:,} lines/s: lag median {r.p50:.3f} s, p95 {r.p95:.3f} s, max "
                         f"{max(r.lags, default=math.nan):.3f} s over {len(r.lags)} samples; first SEQ line on "
                         f"screen {r.first_seen:.2f} s after the writer started; CPU {r.cpu:.0f}% of a core, tmux "
                         f"server {r.tmux_cpu:.0f}%; writer (lines, s, largest batch): {r.written}")
    rate, base = followed(mine), followed(floor)
    rows.append(Row(f"highest rate followed (p95 lag < {LAG_LIMIT:g} s), vs `tail -F`",
                    f"{rate:,} lines/s" if rate else f"none (< {RATES[0]:,})",
                    f"{base:,} lines/s" if base else f"none (< {RATES[0]:,})", "—",
                    f"≥ {FOLLOW_TARGET:,} lines/s", rate >= FOLLOW_TARGET))
    return rows


def memory_rows(memory: Memory, tail_cpu: float | None, seconds: float, notes: list[str]) -> list[Row]:
    growth = memory.rss[-1] - memory.rss[RSS_SETTLED]
    hello_growth = memory.hello_rss[-1] - memory.hello_rss[RSS_SETTLED]
    notes.append(f"- RSS (MB) every 5 s from the writer's start: "
                 f"{listing(memory.rss[::5], '{:.1f}')}; hello-world {listing(memory.hello_rss[::5], '{:.1f}')}")
    notes.append(f"- lag on the last screen of the RSS run: {memory.end_lag:.3f} s; writer (lines, s, largest batch): "
                 f"{memory.written}")
    return [
        Row(f"RSS growth after {RSS_SETTLED} s, following {RSS_RATE:,} lines/s for {seconds:g} s",
            f"{growth:+.2f} MB", f"{hello_growth:+.2f} MB (idle hello-world)", "—", f"< {RSS_TARGET_MB:g} MB",
            growth < RSS_TARGET_MB),
        Row(f"RSS at {RSS_SETTLED} s / at the end (informational)", f"{memory.rss[RSS_SETTLED]:.1f} / "
            f"{memory.rss[-1]:.1f} MB", f"{memory.hello_rss[RSS_SETTLED]:.1f} / {memory.hello_rss[-1]:.1f} MB"),
        Row(f"CPU while following {RSS_RATE:,} lines/s, % of one core (vs `tail -F` at that rate in part 2)",
            f"{memory.cpu:.0f}%", f"{tail_cpu:.0f}%" if tail_cpu is not None else "—",
            ratio(memory.cpu, tail_cpu) if tail_cpu else "—"),
    ]


def tail_part(runs: int, notes: list[str]) -> list[Row]:
    toolong_argv, toolong_note = toolong()
    programs: dict[str, Callable[[Path], list[str]]] = {
        "lakedeck": lambda p: lakedeck_argv("tail", str(p)),
        "tail": lambda p: ["tail", "-n", "1000", "-f", str(p)],  # -f: tmux drops the output of a pane that exits
    }
    if toolong_argv is not None:
        programs["toolong"] = lambda p: [*toolong_argv, str(p)]
        notes.append(f"- baseline: {toolong_note}")
    else:
        toolong_note = f"toolong not available: {toolong_note}"
        notes.append(f"- {toolong_note}")
    warm_up_programs(programs)
    return tail_rows([tail_times(size, programs, runs) for size in SIZES_MIB], toolong_note, notes)


def follow_part(seconds: float, notes: list[str]) -> tuple[list[Row], list[Follow]]:
    viewers: dict[str, Callable[[Path], list[str]]] = {"lakedeck": lambda p: lakedeck_argv("tail", str(p)),
                                                      "tail": lambda p: ["tail", "-F", str(p)]}
    runs: dict[str, list[Follow]] = {name: [] for name in viewers}
    for rate in RATES:
        for name, argv in viewers.items():
            try:
                runs[name].append(follow(name, argv, rate, seconds))
            except RuntimeError as exc:  # reported; a rate that failed counts as not followed
                notes.append(f"- FAILED: {name} at {rate:,} lines/s: `{' / '.join(str(exc).splitlines())[:300]}`")
                runs[name].append(Follow(name, rate, [], math.nan, math.nan, math.nan, "failed"))
    return follow_rows(runs["lakedeck"], runs["tail"], notes), runs["tail"]


def run(quick: bool = False) -> Section:
    runs, follow_seconds, rss_seconds = (1, 3.0, 15.0) if quick else (3, 10.0, 60.0)
    notes: list[str] = []
    rows = tail_part(runs, notes)
    follow_table, floor = follow_part(follow_seconds, notes)
    rows += follow_table
    tail_cpu = next((r.cpu for r in floor if r.rate == RSS_RATE), None)
    rows += memory_rows(rss_while_following(rss_seconds), tail_cpu, rss_seconds, notes)
    return Section(
        "6. The log viewer on screen: `lakedeck tail` (tmux 120x40)",
        f"**Tail:** from just before `tmux new-session` until the log's last line (a unique `LAST-LINE-<uuid>` "
        f"marker) is on screen, polling `tmux capture-pane -p` every 10 ms; logs of ~120-byte lines (ISO timestamp, "
        f"level, logger, message) in bench/out/logs-<size>m.log, read once beforehand (page cache warm); "
        f"`lakedeck tail FILE` vs `tail -n 1000 -f FILE` (`-f` keeps the pane alive: tmux drops what a pane that "
        f"exits has not yet drawn) and toolong (`tl FILE`), {runs} run(s) each, interleaved, after one uncounted run "
        f"of each on the {SIZES_MIB[0]} MiB log. "
        f"**Follow:** bench/log_writer.py appends `SEQ <n> <monotonic ns>` lines of 120 bytes in batches every "
        f"10 ms to a new file that the viewer already shows; after {FOLLOW_WARMUP:g} s of writing (not sampled: "
        f"lakedeck looks at a quiet file every 0.25 s, then catches up), for {follow_seconds:g} s per rate, "
        f"every {SAMPLE_EVERY * 1000:.0f} ms: lag = the time stamp of the newest line in the file minus that of the "
        f"newest SEQ line on screen; one run per program and rate, `tail -F FILE` the floor (the terminal's cost "
        f"included). "
        f"**RSS:** `lakedeck tail` following {RSS_RATE:,} lines/s for {rss_seconds:g} s, RSS (psutil) "
        f"every second from the writer's start, CPU = user+system delta over the window; an idle Textual "
        f"hello-world runs beside it as the floor.",
        rows, notes)


if __name__ == "__main__":
    with tmux_server():
        print(run("--quick" in sys.argv).markdown())
