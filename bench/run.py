"""Run every lakedeck benchmark and (re)write bench/RESULTS.md.

    python bench/run.py [--quick] [--only launch,idle,sweep,memory,log_scan,logs] [--out FILE]

--quick is a smoke check (fewer runs, shorter windows: ~5 min); the full run takes ~21 min on 2 cores.
Each measurement is also a script of its own (bench/launch.py, idle.py, sweep.py, memory.py, log_scan.py,
logs.py). logs.py writes 100 MiB and 1 GiB logs into bench/out/ on first use and installs toolong (from PyPI)
into bench/out/toolong-venv to compare against.
run.py first copies lakedeck's packages to bench/out/lakedeck-src and measures that copy throughout,
so that edits made while it runs cannot mix two versions into one report.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from common import BENCH, OUT, freeze, load_average, machine, tmux_server

BENCHMARKS = ("launch", "idle", "sweep", "memory", "log_scan", "logs", "pipelines", "store", "prom_fleet", "tables", "backups")  # modules of bench/, each with run(quick) -> Section


def report(sections, quick: bool, version: str, minutes: float, loads: tuple[str, str]) -> str:
    lines = ["# lakedeck benchmarks", "",
             "Written by `python bench/run.py" + (" --quick`: a SMOKE RUN with fewer, shorter runs; "
                                                 "do not compare its figures." if quick else "` (`make bench`)."),
             "Figures are medians; each baseline was measured in the same run. Regenerate, don't edit.", "",
             "## Machine", "", *machine(version),
             f"- load average (1/5/15 min) at start: {loads[0]}; at end: {loads[1]}",
             f"- wall time {minutes:.1f} min", "",
             "## Summary", "",
             "| measurement | figure | baseline | ratio | target | result |", "|---|---|---|---|---|---|"]
    for section in sections:
        number = section.title.split(".", 1)[0]
        lines += [f"| {number}. {r.what} | {r.figure} | {r.baseline} | {r.ratio} | {r.target} | {r.verdict} |"
                  for r in section.rows if r.passed is not None]
    return "\n".join(lines) + "\n\n" + "\n".join(section.markdown() for section in sections)


def updated(old: str, sections, version: str, minutes: float) -> str:
    """``old`` with the re-measured sections (and their summary rows) replaced, and a line saying which and when."""
    numbers = {section.title.split(".", 1)[0] for section in sections}
    head, _, body = old.replace("\n## ## 1.", "\n## 1.").partition("\n## 1.")
    parts = ("1." + body).split("\n## ")  # each part without its "## "
    kept = {part.split(".", 1)[0].lstrip("# "): part for part in parts}
    for section in sections:
        kept[section.title.split(".", 1)[0]] = section.markdown().removeprefix("## ").rstrip("\n") + "\n"
    ordered = [kept[k] for k in sorted(kept, key=int)]
    summary = [line for line in head.splitlines() if not any(line.startswith(f"| {n}. ") for n in numbers)]
    rows = [f"| {section.title.split('.', 1)[0]}. {r.what} | {r.figure} | {r.baseline} | {r.ratio} | {r.target} | "
            f"{r.verdict} |" for section in sections for r in section.rows if r.passed is not None]
    table_end = max(i for i, line in enumerate(summary) if line.startswith("|")) + 1
    summary[table_end:table_end] = rows
    rows_sorted = sorted((line for line in summary if line.startswith("| ") and line[2].isdigit()),
                         key=lambda line: int(line[2:].split(".", 1)[0]))
    it = iter(rows_sorted)
    summary = [next(it) if line.startswith("| ") and line[2].isdigit() else line for line in summary]
    stamp = time.strftime("%Y-%m-%d %H:%M")
    note = (f"- sections {', '.join(sorted(numbers, key=int))} re-measured by `bench/run.py --update` at {version} on "
            f"{stamp} ({minutes:.1f} min); the others are from the run described above")
    machine_end = next(i for i, line in enumerate(summary) if line.startswith("- wall time"))
    summary.insert(machine_end + 1, note)
    return "\n".join(summary).rstrip("\n") + "\n\n## " + "\n## ".join(ordered)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter windows, for a smoke check")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of: %(default)s")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md", help="where to write (default: %(default)s)")
    parser.add_argument("--update", action="store_true",
                        help="re-measure only the --only sections and put them into the existing file, which says so")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    started, load_start = time.monotonic(), load_average()
    version = freeze()  # before the benchmarks import backends: all of them measure this copy
    print(f"[bench] lakedeck {version}, copied to {OUT.name}/", file=sys.stderr, flush=True)
    sections = []
    with tmux_server():
        for name in chosen:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            load = load_average()
            section = importlib.import_module(name).run(args.quick)
            section.notes += ["", f"- load average (1/5/15 min) before this section: {load}; after: {load_average()} "
                                 f"(other work on the machine shows here)"]
            print(section.markdown(), flush=True)
            sections.append(section)
    minutes = (time.monotonic() - started) / 60
    if args.update and args.out.exists():
        text = updated(args.out.read_text(encoding="utf-8"), sections, version, minutes)
    else:
        text = report(sections, args.quick, version, minutes, (load_start, load_average()))
    args.out.write_text(text, encoding="utf-8")
    print(f"[bench] wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
