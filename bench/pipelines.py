"""7. The Pipelines pane holding 1,000 DAGs from three Airflow-shaped sources: time on the UI thread per refresh.

    python bench/pipelines.py [--quick]

bench/airflow_shaped.py (a process of its own) answers Airflow 3's REST API for three instances of 333, 333 and
334 DAGs; every 2 s three DAGs of each get a new run. The console polls them every 2 s through the real airflow
adapter, with the Pipelines pane full screen (key 3) at 160x50, headless (Textual's own test driver: the frame
is composed, not written to a terminal). On the UI thread, per refresh: the time the console spends putting the
engine's readings into the table, plus the frames Textual draws after it (only changed rows are redrawn).
Baseline, same run: Textual's stock DataTable holding the same 1,000 rows, the same number of rows changed per
refresh with ``update_cell``, measured the same way.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, Row, Section, listing, median, ratio

SHAPED = str(Path(__file__).resolve().parent / "airflow_shaped.py")
DAGS = (333, 333, 334)
CHANGES = 3  # new runs per instance per tick
TICK = 2.0
TARGET_MS = 16.0  # one frame at 60 Hz


class Timeline:
    """Wall time of the console's refreshes (``_flush``) and of Textual's frames after each."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self.recording = False

    def wrap(self, owner: object, name: str, kind: str) -> None:
        original = getattr(owner, name)
        timeline = self

        def timed(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                if timeline.recording:
                    timeline.events.append((kind, time.perf_counter() - started))
        setattr(owner, name, timed)

    def per_refresh(self) -> list[float]:
        """Seconds of each refresh: its update and the frames until the next update."""
        found: list[float] = []
        for kind, seconds in self.events:
            if kind == "update":
                found.append(seconds)
            elif found:
                found[-1] += seconds
        return found[1:-1]  # the first and last may be cut by the window


def start_servers(folder: Path) -> tuple[subprocess.Popen, list[int]]:
    port_file = folder / "ports"
    port_file.unlink(missing_ok=True)  # a previous run's ports are dead ones
    server = subprocess.Popen([PYTHON, SHAPED, str(port_file), *map(str, DAGS), "--tick", str(TICK),
                               "--changes", str(CHANGES)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.exists() and len(port_file.read_text().split()) == len(DAGS):
            return server, [int(p) for p in port_file.read_text().split()]
        time.sleep(0.05)
    server.kill()
    raise RuntimeError("the Airflow-shaped servers did not start")


def console_config(ports: list[int]):
    from backends.config import parse

    sources = "\n".join(f"  - {{name: af{i + 1}, kind: airflow, url: 'http://127.0.0.1:{port}', username: admin, "
                        f"password: admin, refresh: 2s, timeout: 1.8s}}" for i, port in enumerate(ports))
    return parse(f"audit_log: {tempfile.gettempdir()}/lakedeck-bench-audit.jsonl\npipelines:\n{sources}\n", "bench")


async def console_run(ports: list[int], window: float) -> tuple[list[float], float, int, float]:
    """(seconds per refresh, UI-thread CPU per tick, rows drawn per refresh, seconds until all 1,000 were read)."""
    from textual.screen import Screen

    from backends.model import PipelineReading
    from tui.app import LakedeckApp
    from widgets.status_table import StatusTable

    timeline = Timeline()
    timeline.wrap(LakedeckApp, "_flush", "update")
    timeline.wrap(Screen, "_on_timer_update", "frame")
    app = LakedeckApp(console_config(ports), hostname="bench")
    started = time.monotonic()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("3")
        while time.monotonic() - started < 120:
            rows = [r for r in app.engine.readings.values() if isinstance(r, PipelineReading)]
            if len(rows) == sum(DAGS) and all(r.status or r.reason == "paused" for r in rows if r.ref):
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError("the console did not read all 1,000 DAGs within 120 s: the figures would be of failures")
        all_read = time.monotonic() - started
        await asyncio.sleep(2 * TICK)  # settle: the first full table is drawn
        table = app.dashboard.query_one("#pipelines-table", StatusTable)
        drawn_before, cpu_before = table.rows_rendered, time.thread_time()
        timeline.recording = True
        await asyncio.sleep(window)
        timeline.recording = False
        cpu = time.thread_time() - cpu_before
        drawn = table.rows_rendered - drawn_before
    refreshes = timeline.per_refresh()
    return refreshes, cpu / (window / TICK), round(drawn / max(1, len(refreshes) + 2)), all_read


async def datatable_run(window: float) -> list[float]:
    """The baseline: a stock DataTable of the same size, the same rows changed per refresh."""
    import random

    from textual.app import App
    from textual.screen import Screen
    from textual.widgets import DataTable

    rng = random.Random(7)
    timeline = Timeline()
    timeline.wrap(Screen, "_on_timer_update", "frame")

    class Baseline(App):
        def compose(self):
            yield DataTable(id="table")

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            self.columns = table.add_columns("State", "Pipeline", "Status", "Last run", "Took", "Next", "Fails",
                                             "Reason")
            for i in range(sum(DAGS)):
                table.add_row("● OK", f"af{i % 3 + 1}:af_dag_{i:04d}", "success", "12m ago", "4m12s", "in 40m", "",
                              "", key=str(i))
            table.focus()

        def change(self) -> None:
            started = time.perf_counter()
            table = self.query_one(DataTable)
            for i in rng.sample(range(sum(DAGS)), CHANGES * len(DAGS)):
                state = rng.choice(["● OK", "✖ CRITICAL"])
                changed = (state, "failed" if "CRIT" in state else "success", "<1m ago", f"{rng.randint(20, 600)}s")
                for column, value in zip((self.columns[0], *self.columns[2:5]), changed):
                    table.update_cell(str(i), column, value)
            if timeline.recording:
                timeline.events.append(("update", time.perf_counter() - started))

    app = Baseline()
    async with app.run_test(size=(160, 50)):
        app.set_interval(TICK, app.change)
        await asyncio.sleep(2 * TICK)
        timeline.recording = True
        await asyncio.sleep(window)
        timeline.recording = False
    return timeline.per_refresh()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def run(quick: bool = False) -> Section:
    runs, window = (1, 12.0) if quick else (3, 30.0)
    ours: list[float] = []
    theirs: list[float] = []
    cpu_ticks, drawn, read_in = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(runs):
            server, ports = start_servers(Path(folder))
            try:
                refreshes, cpu, rows, all_read = asyncio.run(console_run(ports, window))
            finally:
                server.kill()
                server.wait()
            ours += refreshes
            cpu_ticks.append(cpu)
            drawn.append(rows)
            read_in.append(all_read)
            theirs += asyncio.run(datatable_run(window))
    ms = median(ours) * 1000
    base_ms = median(theirs) * 1000
    return Section(
        "7. Pipelines pane: 1,000 DAGs from three Airflow-shaped sources (160x50, headless)",
        __doc__.split("\n\n", 2)[2].replace("\n", " ").strip() + f" {runs} run(s) of {window:g} s; each refresh "
        f"counted from its update to the next.",
        [
            Row("UI thread per refresh (update + frames)", f"{ms:.1f} ms", f"{base_ms:.1f} ms (DataTable)",
                ratio(ms, base_ms), f"< {TARGET_MS:g} ms", ms < TARGET_MS),
            Row("same, 95th percentile", f"{percentile(ours, 0.95) * 1000:.1f} ms",
                f"{percentile(theirs, 0.95) * 1000:.1f} ms", ratio(percentile(ours, 0.95), percentile(theirs, 0.95))),
            Row("UI-thread CPU per 2 s tick, everything (three polls' JSON, the refresh, the frames, the clock)",
                f"{median(cpu_ticks) * 1000:.0f} ms"),
            Row("table rows drawn per refresh", f"{median(drawn):.0f} of {sum(DAGS)}"),
            Row("until every DAG's runs were read (first polls)", f"{median(read_in):.1f} s"),
        ],
        [f"Refreshes measured: {len(ours)} (lakedeck), {len(theirs)} (DataTable). "
         f"Per-run CPU per tick: {listing([c * 1000 for c in cpu_ticks], '{:.0f}')} ms."],
    )


if __name__ == "__main__":
    print(run("--quick" in sys.argv).markdown())
