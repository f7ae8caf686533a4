"""2. Idle CPU, RSS and terminal bytes/s in tmux: the built-in default config, and 200 HTTP checks every 2 s.

    python bench/idle.py [--quick]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from common import (HELLO, OUT, Row, Section, Session, cpu_seconds, http_server, http_services, lakedeck_argv,
                    listing, median, ratio, rss_mb, tmux_server, write_config)


@dataclass
class Sample:
    cpu: float  # % of one core over the window
    rss: float  # MB at the end
    bps: float  # bytes written to the terminal per second over the window
    header: str  # the top line at the end


def watch(sessions: list[Session], warmup: float, window: float) -> list[Sample]:
    """Start the sessions together, skip the warm-up, then measure each over the same window."""
    outputs = [OUT / f"{s.name}.out" for s in sessions]
    for session, path in zip(sessions, outputs):
        path.unlink(missing_ok=True)
        session.start()
        session.record_output(path)
    try:
        time.sleep(warmup)
        before = [(time.perf_counter(), cpu_seconds(s.pid), path.stat().st_size) for s, path in zip(sessions, outputs)]
        time.sleep(window)
        samples = []
        for session, path, (t0, cpu0, bytes0) in zip(sessions, outputs, before):
            cpu1, bytes1, elapsed = cpu_seconds(session.pid), path.stat().st_size, time.perf_counter() - t0
            samples.append(Sample(100 * (cpu1 - cpu0) / elapsed, rss_mb(session.pid), (bytes1 - bytes0) / elapsed,
                                  session.screen().split("\n", 1)[0].strip()))
        return samples
    finally:
        for session in sessions:
            session.stop()


def scenario(tag: str, argv: list[str], runs: int, warmup: float, window: float) -> tuple[list[Sample], list[Sample]]:
    mine, hello = [], []
    for i in range(runs):
        a, b = watch([Session(f"idle-{tag}-{i}", argv), Session(f"idle-{tag}-hello-{i}", HELLO)], warmup, window)
        mine.append(a)
        hello.append(b)
    return mine, hello


def rows(label: str, target: float, mine: list[Sample], hello: list[Sample]) -> list[Row]:
    cpu, hcpu = median([s.cpu for s in mine]), median([s.cpu for s in hello])
    rss, hrss = median([s.rss for s in mine]), median([s.rss for s in hello])
    bps, hbps = median([s.bps for s in mine]), median([s.bps for s in hello])
    return [Row(f"{label}: CPU, % of one core", f"{cpu:.2f}%", f"{hcpu:.2f}%", ratio(cpu, hcpu), f"≤ {target:g}%",
                cpu <= target),
            Row(f"{label}: RSS at end", f"{rss:.1f} MB", f"{hrss:.1f} MB", ratio(rss, hrss)),
            Row(f"{label}: bytes to the terminal", f"{bps:.0f} B/s", f"{hbps:.0f} B/s", ratio(bps, hbps))]


def notes(label: str, mine: list[Sample], hello: list[Sample]) -> list[str]:
    return [f"- {label} runs: CPU % {listing([s.cpu for s in mine], '{:.2f}')} (hello-world "
            f"{listing([s.cpu for s in hello], '{:.2f}')}); RSS MB {listing([s.rss for s in mine], '{:.1f}')}; "
            f"B/s {listing([s.bps for s in mine], '{:.0f}')}; header at the end of run 1: `{mine[0].header}`"]


def default_sources(xdg) -> str:
    from backends.config import load

    config = load(None, {"XDG_CONFIG_HOME": str(xdg), "HOME": "/nonexistent"})
    return ", ".join(f"{len(config.section(s))} {s}" for s in ("services", "hosts", "logs"))


def run(quick: bool = False) -> Section:
    runs, warmup, window = (1, 5.0, 15.0) if quick else (3, 5.0, 60.0)
    xdg = OUT / "xdg-empty"  # no lakedeck.yaml here: the built-in default
    xdg.mkdir(parents=True, exist_ok=True)
    default = scenario("default", lakedeck_argv(xdg=xdg), runs, warmup, window)
    described = default_sources(xdg)
    with http_server() as port:
        config = write_config(OUT / "idle-200.yaml", refresh="2s", services=http_services(port, 200))
        checks = scenario("200http", lakedeck_argv("-c", str(config)), runs, warmup, window)
    return Section(
        "2. Idle CPU, RSS and terminal output (tmux 120x40, 2 s refresh)",
        f"lakedeck and the hello-world baseline run side by side in two tmux sessions; after a {warmup:g} s warm-up, "
        f"CPU is the psutil `cpu_times` (user+system) delta over a {window:g} s window divided by wall time, RSS is "
        f"read at the end, and terminal bytes are counted with `tmux pipe-pane`. Default: `lakedeck` with no config "
        f"(empty XDG_CONFIG_HOME, no LAKEDECK_CONFIG; here {described}). 200 checks: 200 http services "
        f"with `expect_json: {{status: UP}}` against bench/server.py (a separate process). {runs} run(s) each.",
        rows("default config", 1.0, *default) + rows("200 http checks", 3.0, *checks),
        notes("default", *default) + notes("200 checks", *checks),
    )


if __name__ == "__main__":
    with tmux_server():
        print(run("--quick" in sys.argv).markdown())
