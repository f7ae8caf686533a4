"""Run every lakedeck benchmark and (re)write bench/RESULTS.md.

    python bench/run.py [--quick] [--only launch,idle,sweep,memory] [--out FILE]

--quick is a smoke check (fewer runs, shorter windows: ~4 min); the full run takes ~25 min.
Each measurement is also a script of its own (bench/launch.py, idle.py, sweep.py, memory.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import idle
import launch
import memory
import sweep
from common import BENCH, OUT, load_average, machine, tmux_server

BENCHMARKS = {"launch": launch.run, "idle": idle.run, "sweep": sweep.run, "memory": memory.run}


def report(sections, quick: bool, minutes: float, loads: tuple[str, str]) -> str:
    lines = ["# lakedeck benchmarks", "",
             "Written by `python bench/run.py" + (" --quick`: a SMOKE RUN with fewer, shorter runs; "
                                                 "do not compare its figures." if quick else "` (`make bench`)."),
             "Figures are medians; each baseline was measured in the same run. Regenerate, don't edit.", "",
             "## Machine", "", *machine(),
             f"- load average (1/5/15 min) at start: {loads[0]}; at end: {loads[1]}; wall time {minutes:.1f} min", "",
             "## Summary", "", "| measurement | figure | baseline | ratio | target | result |", "|---|---|---|---|---|---|"]
    for section in sections:
        number = section.title.split(".", 1)[0]
        lines += [f"| {number}. {r.what} | {r.figure} | {r.baseline} | {r.ratio} | {r.target} | {r.verdict} |"
                  for r in section.rows if r.passed is not None]
    return "\n".join(lines) + "\n\n" + "\n".join(section.markdown() for section in sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter windows, for a smoke check")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of: %(default)s")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md", help="where to write (default: %(default)s)")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    started, load_start = time.monotonic(), load_average()
    sections = []
    with tmux_server():
        for name in chosen:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            section = BENCHMARKS[name](args.quick)
            print(section.markdown(), flush=True)
            sections.append(section)
    text = report(sections, args.quick, (time.monotonic() - started) / 60, (load_start, load_average()))
    args.out.write_text(text, encoding="utf-8")
    print(f"[bench] wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
