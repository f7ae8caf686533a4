"""1. Launch to the first complete frame with data, in tmux, beside a bare Textual hello-world.

    python bench/launch.py [--quick]
"""

from __future__ import annotations

import re
import sys
import time

from common import (HELLO, OUT, Row, Section, Session, http_server, lakedeck_argv, listing, median, ratio,
                    tmux_server, write_config)

TARGET = 1.5  # lakedeck within 1.5x the hello-world


def hello_ready(screen: str) -> bool:
    return "hello-world-ready" in screen


def lakedeck_painted(screen: str) -> bool:
    """The first complete frame: header, every pane and the footer drawn (the polls may not have answered yet)."""
    return ("lakedeck" in screen.split("\n", 1)[0] and all(f"{n} " in screen for n in ("1 Services", "2 Resources", "4 Logs"))
            and "Quit" in screen)


def lakedeck_ready(screen: str) -> bool:
    """The header has its summary of real data and the service row shows its state."""
    header = screen.split("\n", 1)[0]
    return "lakedeck" in header and "newest data" in header and re.search(r"\bOK\s+bench-tcp\b", screen) is not None


def gauges_ready(screen: str) -> bool:
    """The host's first sample is on screen too (it takes a priming sample first, by design)."""
    return lakedeck_ready(screen) and re.search(r"\b(OK|WARN|CRITICAL)\s+cpu\s", screen) is not None


def measure(name: str, argv: list[str], *markers) -> list[float]:
    """Seconds from launch until each marker in turn is on screen."""
    session = Session(name, argv)
    started = session.start()
    try:
        return [session.wait_for(marker) - started for marker in markers]
    finally:
        session.stop()
        time.sleep(0.3)


def run(quick: bool = False) -> Section:
    runs = 3 if quick else 7
    hello: list[float] = []
    painted: list[float] = []
    first: list[float] = []
    gauges: list[float] = []
    failed: list[str] = []
    with http_server() as port:  # something listening, for the tcp check
        config = write_config(OUT / "launch.yaml", services=[{"name": "bench-tcp", "kind": "tcp", "port": port}],
                              hosts=[{"name": "local"}])
        lakedeck = lakedeck_argv("-c", str(config))
        measure("launch-warmup-hello", HELLO, hello_ready)  # warm the page cache and .pyc files: not counted
        measure("launch-warmup-lakedeck", lakedeck, lakedeck_ready)
        for i in range(runs):
            order = ("hello", "lakedeck") if i % 2 == 0 else ("lakedeck", "hello")
            for which in order:
                try:
                    if which == "hello":
                        hello += measure(f"launch-hello-{i}", HELLO, hello_ready)
                    else:
                        p, a, b = measure(f"launch-lakedeck-{i}", lakedeck,
                                          lakedeck_painted, lakedeck_ready, gauges_ready)
                        painted.append(p)
                        first.append(a)
                        gauges.append(b)
                except RuntimeError as exc:  # one bad run is reported, and does not end the benchmark
                    failed.append(" / ".join(line.strip() for line in str(exc).splitlines() if line.strip()))
    h, p, f, g = median(hello), median(painted), median(first), median(gauges)
    return Section(
        "1. Launch to first complete frame (tmux 120x40)",
        f"Each program starts in a detached tmux session; `tmux capture-pane -p` is polled every 10 ms from just "
        f"before `tmux new-session` until the marker is on screen. lakedeck runs a config of one tcp check (against a "
        f"local listening socket) and `hosts: [{{name: local}}]`. Its first complete frame is the header, every pane's "
        f"title and the footer on screen; its first data is the header with \"newest data\" plus the row "
        f"`OK bench-tcp`; then the host's gauges (after a 250 ms priming sample). The baseline is `bench/hello.py` (a Textual App with one Static, marker "
        f"\"hello-world-ready\"). {runs} runs each, interleaved, after one uncounted warm-up run of each.",
        [Row("first complete frame (header, all panes, footer)", f"{p:.3f} s", f"{h:.3f} s", ratio(p, h),
             f"≤ {TARGET}x hello-world", p / h <= TARGET),
         Row("first data on screen: service row OK (informational)", f"{f:.3f} s", f"{h:.3f} s", ratio(f, h)),
         Row("host gauges on screen too (informational)", f"{g:.3f} s", f"{h:.3f} s", ratio(g, h))],
        [f"- runs (s): lakedeck first paint {listing(painted)}; first frame with data {listing(first)}; "
         f"host gauges {listing(gauges)}; hello-world {listing(hello)}"]
        + [f"- FAILED run (not counted): `{failure[:300]}`" for failure in failed],
    )


if __name__ == "__main__":
    with tmux_server():
        print(run("--quick" in sys.argv).markdown())
