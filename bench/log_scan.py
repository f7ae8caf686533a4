"""5. Filtering a 1 GiB log from disk (FilePager.scan) against grep, and its tail against tail(1).

    python bench/log_scan.py [--quick]

The log is written once to bench/out/ (about 120-byte lines: ISO timestamps, levels, components; "timeout" in
~0.1% of the lines) and reused; it is read once to warm the page cache, never dropped from it, so both sides
read from memory. --quick uses a 256 MiB log and one run of each.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from common import LOG_COMPONENTS, LOG_LEVELS, LOG_MESSAGES, LOG_TIMEOUT, OUT, Row, Section, listing, median

MIB = 1024 * 1024
LEVELS, COMPONENTS, MESSAGES, TIMEOUT = LOG_LEVELS, LOG_COMPONENTS, LOG_MESSAGES, LOG_TIMEOUT


def log_file(size_mib: int) -> Path:
    """bench/out/log-scan-<size>m.log, written on first use (seeded: the same bytes every time)."""
    path = OUT / f"log-scan-{size_mib}m.log"
    if path.exists() and path.stat().st_size >= size_mib * MIB:
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2026)
    clock = time.mktime((2026, 11, 21, 0, 0, 0, 0, 0, -1))
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        n = 0
        while out.tell() < size_mib * MIB:
            lines = []
            for _ in range(10_000):
                n += 1
                clock += rng.expovariate(1 / 0.009)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(clock)) + f".{int(clock * 1e6) % 1_000_000:06d}Z"
                fields = {"n": n, "p": rng.randrange(100), "r": rng.randrange(100_000), "ms": rng.randrange(900)}
                if rng.random() < 0.001:
                    level, message = rng.choice(["ERROR", "WARN"]), TIMEOUT.format(**fields)
                else:
                    level, message = rng.choice(LEVELS), rng.choice(MESSAGES).format(**fields)
                lines.append(f"{stamp} {level:<5} [{rng.choice(COMPONENTS)}-{n % 8}] {message}\n")
            out.write("".join(lines))
    partial.rename(path)
    return path


def warm(path: Path) -> None:
    with path.open("rb") as handle:
        while handle.read(8 * MIB):
            pass


def timed(action: Callable[[], object], runs: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return times, result


def grep(*args: str) -> Callable[[], int]:
    return lambda: int(subprocess.run(["grep", *args], capture_output=True, text=True).stdout.strip() or 0)


def scan_count(path: Path, pattern: str) -> Callable[[], int]:
    from backends.log_filter import LineFilter
    from backends.log_pager import FilePager

    def count() -> int:
        return sum(len(batch) for batch in FilePager(str(path), "bench").scan(LineFilter(pattern), threading.Event()))
    return count


def match_only(path: Path, pattern: str) -> Callable[[], int]:
    """log_scan.scan_file alone: the lines found and cut, without turning them into LogLines (Stamper)."""
    from backends.log_filter import LineFilter
    from backends.log_scan import scan_file

    def count() -> int:
        found = scan_file(str(path), path.stat().st_size, None, LineFilter(pattern), False, threading.Event())
        return sum(len(pieces) for pieces, _ in found)
    return count


def compare(label: str, path: Path, pattern: str, grep_args: list[str], runs: int, target: bool,
            notes: list[str]) -> Row:
    grep_times, grep_count = timed(grep(*grep_args, str(path)), runs)
    scan_times, scan_count_ = timed(scan_count(path, pattern), runs)
    mine, theirs = median(scan_times), median(grep_times)
    speed = theirs / mine
    notes.append(f"- {label}: `FilePager.scan(LineFilter({pattern!r}))` {listing(scan_times)} s, {scan_count_} lines; "
                 f"`grep {' '.join(grep_args)}` {listing(grep_times)} s, count {grep_count}")
    if scan_count_ != grep_count:
        notes.append(f"  - counts differ: scan {scan_count_}, grep {grep_count}")
    return Row(f"{label}: `{pattern}` vs `grep {' '.join(grep_args)}`", f"{mine:.3f} s", f"{theirs:.3f} s",
               f"{speed:.2f}x grep's speed", "≥ 0.5x" if target else "—", speed >= 0.5 if target else None)


def tail_rows(path: Path, runs: int, notes: list[str]) -> list[Row]:
    from backends.log_pager import FilePager

    mine, lines = timed(lambda: FilePager(str(path), "bench").tail(1000), max(5, runs))
    with open(os.devnull, "wb") as null:
        theirs, _ = timed(lambda: subprocess.run(["tail", "-n", "1000", str(path)], stdout=null), max(5, runs))
    notes.append(f"- tail: `FilePager.tail(1000)` {listing(mine, '{:.4f}')} s ({len(lines)} lines); "
                 f"`tail -n 1000 > /dev/null` {listing(theirs, '{:.4f}')} s (a process start included)")
    return [Row("`FilePager.tail(1000)` vs `tail -n 1000 FILE > /dev/null`", f"{median(mine) * 1000:.1f} ms",
                f"{median(theirs) * 1000:.1f} ms", f"{median(mine) / median(theirs):.2f}x the time")]


def run(quick: bool = False) -> Section:
    size, runs = (256, 1) if quick else (1024, 3)
    path = log_file(size)
    warm(path)
    notes: list[str] = []
    rows = [
        compare("literal, smart case", path, "timeout", ["-c", "timeout"], runs, True, notes),
        compare("literal, smart case", path, "timeout", ["-ci", "timeout"], runs, False, notes),
        compare("regex, case-sensitive", path, "ERROR.*timeout", ["-c", "ERROR.*timeout"], runs, True, notes),
        compare("inverted, smart case", path, "!debug", ["-vci", "debug"], runs, False, notes),
    ]
    inverted_only, found = timed(match_only(path, "!debug"), runs)
    rows.append(Row("inverted `!debug`, matching only (no LogLines)", f"{median(inverted_only):.3f} s"))
    notes.append(f"- inverted, matching and cutting only (`log_scan.scan_file`): {listing(inverted_only)} s, "
                 f"{found} lines; the rest of the inverted scan's time is making LogLines (logtext.Stamper)")
    rows += tail_rows(path, runs, notes)
    return Section(
        "5. Filtering a big log from disk (FilePager.scan) and its tail",
        f"A {size} MiB log of ~120-byte lines ({path.name}, seeded, in bench/out/), read once beforehand so that "
        f"it is in the page cache for both sides. Each figure is the wall time of a whole pass, median of {runs} "
        f"run(s): `FilePager.scan` counting the LogLines it yields vs `grep` counting lines "
        f"(locale {os.environ.get('LC_ALL') or os.environ.get('LANG') or 'C'}). "
        f"A lowercase pattern is case-insensitive in lakedeck (smart case), so `grep -ci` is the like-for-like "
        f"baseline; the target is against plain `grep -c`.",
        rows, notes)


if __name__ == "__main__":
    print(run("--quick" in sys.argv).markdown())
