"""4. RSS over a long run at a 0.2 s refresh: after the warm-up it must stay flat.

    python bench/memory.py [--quick] [--warmup SECONDS] [--duration SECONDS]

The repetitions run side by side (with a hello-world beside them) to save wall time.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from pathlib import Path

from common import (HELLO, OUT, Row, Section, Session, cpu_seconds, http_server, http_services, lakedeck_argv,
                    listing, median, rss_mb, tmux_server, write_config)

TARGET_MB = 5.0
EVERY = 10.0  # seconds between RSS samples
LOG_RATE = 100  # lines a second appended to each run's log: fills the 10,000-line log buffers within the warm-up


def append_lines(path: Path, stop: threading.Event) -> None:
    levels = itertools.cycle(["INFO"] * 7 + ["DEBUG", "WARN", "ERROR"])
    with path.open("a", encoding="utf-8") as log:
        for n in itertools.count():
            if stop.wait(1 / LOG_RATE):
                return
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {next(levels)} worker-{n % 7} handled request {n} "
                      f"in {n % 97} ms [/api/v1/items/{n}]\n")
            log.flush()


def measure(port: int, runs: int, warmup: float, duration: float) -> tuple[list[list[float]], list[float], list[str]]:
    """RSS (MB) every EVERY seconds of each run and the hello-world (last); CPU % and top line of each run."""
    sessions, stop, writers, logs = [], threading.Event(), [], []
    for i in range(runs):
        log = OUT / f"memory-{i}.log"
        logs.append(log)
        log.write_text("")
        config = write_config(OUT / f"memory-{i}.yaml", services=http_services(port, 20), hosts=[{"name": "local"}],
                              logs=[{"name": "app", "path": str(log)}])
        sessions.append(Session(f"memory-{i}", lakedeck_argv("--refresh", "0.2", "-c", str(config))))
        writers.append(threading.Thread(target=append_lines, args=(log, stop), daemon=True))
    sessions.append(Session("memory-hello", HELLO))
    curves: list[list[float]] = [[] for _ in sessions]
    try:
        for session in sessions:
            session.start()
        for writer in writers:
            writer.start()
        started = time.monotonic()
        cpu0 = [cpu_seconds(s.pid) for s in sessions[:-1]]
        for step in range(int((warmup + duration) / EVERY) + 1):
            time.sleep(max(0.0, started + step * EVERY - time.monotonic()))
            for curve, session in zip(curves, sessions):
                curve.append(rss_mb(session.pid))
        elapsed = time.monotonic() - started
        cpu = [100 * (cpu_seconds(s.pid) - c) / elapsed for s, c in zip(sessions, cpu0)]
        headers = [s.screen().split("\n", 1)[0].strip() for s in sessions[:-1]]
        return curves, cpu, headers
    finally:
        stop.set()
        for session in sessions:
            session.stop()
        for log in logs:  # ~8 MB each after a full run
            log.unlink(missing_ok=True)


def run(quick: bool = False, warmup: float | None = None, duration: float | None = None) -> Section:
    runs = 1 if quick else 3
    warmup = warmup if warmup is not None else (60.0 if quick else 180.0)
    duration = duration if duration is not None else (60.0 if quick else 600.0)
    with http_server() as port:
        curves, cpu, headers = measure(port, runs, warmup, duration)
    at_warmup = int(warmup / EVERY)
    growth = [curve[-1] - curve[at_warmup] for curve in curves]
    g, hello = median(growth[:-1]), growth[-1]
    names = [f"run {i + 1}" for i in range(runs)] + ["hello-world"]
    minutes = sorted({int(m * 60 / EVERY) for m in range(int((warmup + duration) // 60) + 1)} | {len(curves[0]) - 1})
    table = ["| minute | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    table += [f"| {step * EVERY / 60:.3g}{' (end of warm-up)' if step == at_warmup else ''} | "
              + " | ".join(f"{curve[step]:.1f}" for curve in curves) + " |" for step in minutes]
    return Section(
        f"4. RSS growth at a 0.2 s refresh ({warmup / 60:.3g} min warm-up + {duration / 60:.3g} min)",
        f"`lakedeck --refresh 0.2` in tmux with 20 http checks (bench/server.py), `hosts: [{{name: local}}]` and one "
        f"log file appended at {LOG_RATE} lines/s. RSS (psutil) is sampled every {EVERY:g} s; growth = RSS at the end "
        f"minus RSS after the {warmup / 60:.3g} min warm-up (DataTable caches fill in the first ~2 min; the log's "
        f"bounded buffers of 10,000 lines fill in {10_000 / LOG_RATE:.0f} s). The {runs} "
        f"run(s) ran **in parallel** (to save wall time), beside a hello-world baseline measured over the same window.",
        [Row("RSS growth after warm-up", f"{g:+.2f} MB", f"{hello:+.2f} MB (hello-world)", "—",
             f"< {TARGET_MB:g} MB", g < TARGET_MB),
         Row("RSS at the end (informational)", f"{median([c[-1] for c in curves[:-1]]):.1f} MB",
             f"{curves[-1][-1]:.1f} MB")],
        [f"- growth per run (MB): {listing(growth[:-1], '{:+.2f}')}; CPU % of one core per run over the whole run: "
         f"{listing(cpu, '{:.1f}')}; header at the end of run 1: `{headers[0]}`", "", "RSS (MB) at minute marks:", ""]
        + table,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--duration", type=float)
    args = parser.parse_args()
    with tmux_server():
        print(run(args.quick, args.warmup, args.duration).markdown())
