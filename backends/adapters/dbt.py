"""A dbt project, read from the artifacts dbt leaves in its target directory; build, run and test it.

dbt overwrites ``run_results.json`` with every command, so the project row always tells of the last
invocation, whatever it selected (the reason says what it selected). Reading the artifacts and walking the
DAG of ``manifest.json`` is ``dbt_artifacts``' part.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..actions import Action, ActionResult, Emit, Tier
from ..model import Listing, PipelineItem, PipelineReading, Reading, State
from .dbt_artifacts import (
    FAILED_STATUSES,
    MAX_TREE,
    Artifact,
    ArtifactError,
    Graph,
    NodeResult,
    RunResults,
    Snapshot,
    anchors_of,
    clock_text,
    held_back,
    invocation_words,
    parse_manifest,
    parse_run_results,
    parse_selectors,
    project_name,
    skip_causes,
    state_of,
    summary,
    walk,
)
from .pipeline_base import PipelineError, PipelineSource
from .text import seconds

COMMANDS = {"build": "building", "run": "running", "test": "testing"}  # action id -> the row's transition
DBT_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DO_NOT_TRACK": "1", "DBT_USE_COLORS": "False"}
RUN_TIMEOUT = 2 * 3600.0  # a real project's build takes many minutes; the runner kills it past this
MAX_FAILURE_ROWS = 25  # failing nodes shown as rows of the pane; the project row counts them all
SELECTABLE = frozenset({"model", "seed", "snapshot", "test", "unit_test"})  # by name, in a --select


# -- the adapter -----------------------------------------------------------------------------------


class DbtProject(PipelineSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.project_dir = Path(os.path.expanduser(options["project_dir"])).absolute()
        profiles = options.get("profiles_dir")
        self.profiles_dir = Path(os.path.expanduser(profiles)).absolute() if profiles else self.project_dir
        self.target_dir = self.project_dir / os.path.expanduser(options.get("target_path") or "target")
        self.dbt: str = options.get("dbt") or "dbt"
        self.target: str | None = options.get("target")
        self._project_file = Artifact(self.project_dir / "dbt_project.yml", project_name, self.clock)
        self._run_results = Artifact(self.target_dir / "run_results.json", self._json(parse_run_results), self.clock)
        self._manifest = Artifact(self.target_dir / "manifest.json", self._json(parse_manifest), self.clock)
        self._lock = threading.Lock()  # a poll's thread and an open()'s thread share the caches
        self._last_success: float | None = None
        self._snapshot = Snapshot(self.project_dir.name)

    @staticmethod
    def _json(parse: Callable[[Any], Any]) -> Callable[[bytes], Any]:
        return lambda raw: parse(json.loads(raw))

    def describe(self) -> str:
        return f"dbt project {self.project_dir}"

    # -- reading -----------------------------------------------------------------------------------

    async def read(self) -> list[Reading]:
        snapshot = await self.in_thread(self._load)
        return self._readings(snapshot)

    async def _current(self) -> Snapshot:
        """The files as they are now, for a drill-down (which may come between two polls)."""
        return await asyncio.to_thread(self._load)

    def _load(self) -> Snapshot:
        with self._lock:
            self._snapshot = snapshot = self._read_files()
        return snapshot

    def _read_files(self) -> Snapshot:
        directory = self.project_dir.name
        if not self.project_dir.is_dir():
            return Snapshot(directory, problem=f"project directory {self.project_dir} does not exist",
                            status="missing")
        try:
            declared = self._project_file.load()
        except FileNotFoundError:
            return Snapshot(directory, problem=f"no dbt_project.yml in {self.project_dir}: is project_dir right?",
                            status="missing")
        except ArtifactError:  # dbt itself will say what is wrong with it when it runs
            declared = ""
        graph, graph_problem = self._graph()
        # dbt_project.yml names the project before any manifest exists: the row keeps one key from the start
        name = declared or (graph.project_name if graph else "") or directory
        try:
            results = self._run_results.load()
        except FileNotFoundError:
            return Snapshot(name, graph=graph, graph_problem=graph_problem,
                            problem=f"no run_results.json in {self.target_dir} yet (run dbt build)")
        except ArtifactError as exc:
            return Snapshot(name, graph=graph, graph_problem=graph_problem, problem=str(exc), status="unreadable")
        return Snapshot(name, results, graph, graph_problem=graph_problem,
                        status="failed" if results.failing else "success")

    def _graph(self) -> tuple[Graph | None, str]:
        try:
            return self._manifest.load(), ""
        except FileNotFoundError:
            return None, f"no manifest.json in {self.target_dir} (run dbt parse or build)"
        except ArtifactError as exc:
            return None, str(exc)

    def _readings(self, snapshot: Snapshot) -> list[Reading]:
        results = snapshot.results
        if results is None:
            return [self.reading(snapshot.name, State.UNKNOWN, snapshot.problem, status=snapshot.status,
                                 last_success=self._last_success, ref=("project",))]
        if results.clean and results.ended is not None:
            self._last_success = max(self._last_success or results.ended, results.ended)
        worst = max((state_of(r.status) for r in results.results), default=State.OK)
        project = self.reading(
            snapshot.name, State.WARN if worst is State.UNKNOWN else worst, summary(snapshot, results),
            status=snapshot.status, last_start=results.started, last_duration=results.elapsed,
            last_success=self._last_success, failures=len(results.failing), ref=("project",))
        return [project, *self._failure_rows(snapshot, results)]

    def _failure_rows(self, snapshot: Snapshot, results: RunResults) -> list[PipelineReading]:
        taken = {snapshot.name}
        rows = []
        for result in results.failing[:MAX_FAILURE_ROWS]:
            name = snapshot.name_of(result.unique_id)
            name = result.unique_id if name in taken else name
            taken.add(name)
            rows.append(self.reading(
                name, State.CRITICAL, result.message or f"{snapshot.kind_of(result.unique_id)} {result.status}",
                status=result.status, last_start=result.started, last_duration=result.duration,
                ref=("node", result.unique_id)))
        return rows

    def judge_freshness(self, reading: PipelineReading, now: float) -> PipelineReading:
        """Only the project is late or not: a failing node's row is about that failure."""
        return super().judge_freshness(reading, now) if reading.ref == ("project",) else reading

    # -- drill-down --------------------------------------------------------------------------------

    async def open(self, ref: tuple[str, ...]) -> Listing:
        snapshot = await self._current()
        if ref == ("project",):
            return self._project_listing(snapshot)
        if len(ref) == 2 and ref[0] == "node":
            return self._node_listing(snapshot, ref[1])
        return await super().open(ref)

    def _project_listing(self, snapshot: Snapshot) -> Listing:
        results = snapshot.results
        if results is None:
            raise PipelineError(snapshot.problem)
        ordered = sorted(results.results, key=lambda r: (r.status not in FAILED_STATUSES, -(r.duration or -1.0)))
        causes = skip_causes(snapshot.graph, results.failing) if snapshot.graph else {}
        items = tuple(self._item(snapshot, result.unique_id, result, causes=causes) for result in ordered)
        models = sorted((r for r in results.results if snapshot.kind_of(r.unique_id) == "model" and r.duration),
                        key=lambda r: -(r.duration or 0))[:3]
        slowest = ", ".join(f"{snapshot.name_of(r.unique_id)} {seconds(r.duration or 0)}" for r in models)
        note = (f"{invocation_words(results)} · ended {clock_text(results.ended)} · invocation "
                f"{results.invocation_id[:8] or '?'}" + (f" · slowest models: {slowest}" if slowest else ""))
        return Listing(title=f"{snapshot.name} · dbt {results.command}", items=items, note=note)

    def _item(self, snapshot: Snapshot, unique_id: str, result: NodeResult | None, depth: int = 0,
              arrow: str = "", causes: Mapping[str, str] | None = None) -> PipelineItem:
        kind = snapshot.kind_of(unique_id)
        ref, name = ("node", unique_id), f"{arrow}{snapshot.name_of(unique_id)}"
        if result is None:
            return PipelineItem(ref, name, State.UNKNOWN, note=f"{kind} · not in the last invocation", depth=depth,
                                can_open=True)
        if result.status == "skipped":
            cause = (causes or {}).get(unique_id)
            why = f"skipped: {snapshot.name_of(cause)} failed upstream" if cause else "skipped"
        else:
            why = result.message or (f"failures: {result.failures}" if result.failures else result.status)
        return PipelineItem(ref, name, state_of(result.status), status=result.status, started=result.started,
                            duration=result.duration, note=f"{kind} · {why}", depth=depth, can_open=True)

    def _node_listing(self, snapshot: Snapshot, unique_id: str) -> Listing:
        graph = snapshot.graph
        name = snapshot.name_of(unique_id)
        if graph is None:
            raise PipelineError(f"cannot show what depends on {name}: {snapshot.graph_problem}")
        if unique_id not in graph.parents and unique_id not in graph.children:
            raise PipelineError(f"{unique_id} is not in manifest.json any more (the project changed)")
        roots = held_back(graph, unique_id)
        anchors = tuple(a for a in anchors_of(graph, unique_id) if a not in roots)
        down = walk(roots, graph.children, {unique_id, *anchors})
        up = walk(graph.parents.get(unique_id, ()), graph.parents, {unique_id, *(uid for uid, _ in down)})
        causes = skip_causes(graph, snapshot.results.failing) if snapshot.results else {}
        items = [self._item(snapshot, unique_id, snapshot.result_of(unique_id), causes=causes)]
        items += [self._item(snapshot, uid, snapshot.result_of(uid), depth, "↓ ", causes) for uid, depth in down]
        items += [self._item(snapshot, uid, snapshot.result_of(uid), depth, "↑ ", causes) for uid, depth in up]
        of = f" of {', '.join(snapshot.name_of(a) for a in anchors)}" if anchors else ""
        cut = f" (the first {MAX_TREE})" if MAX_TREE in (len(down), len(up)) else ""
        note = (f"↓ {len(down)} downstream{of}: what dbt build skips when {name} fails · "
                f"↑ {len(up)} upstream{cut}")
        return Listing(title=f"{name} · downstream and upstream", items=tuple(items), note=note)

    # -- actions -----------------------------------------------------------------------------------

    def item_actions(self, row: PipelineReading | PipelineItem) -> list[Action]:
        if row.ref == ("project",):
            return [self._action(command, command.capitalize(), ask="--select (empty for all)")
                    for command in COMMANDS]
        if len(row.ref) == 2 and row.ref[0] == "node":
            return self._node_actions(row.ref[1])
        return []

    def _node_actions(self, unique_id: str) -> list[Action]:
        """The operator's next steps on one node: rebuild it (a test: its model) and what depends on it, run
        that model alone, test it again. None for a source or an exposure: dbt does not build those."""
        snapshot = self._snapshot
        if snapshot.kind_of(unique_id) not in SELECTABLE:
            return []
        anchors = anchors_of(snapshot.graph, unique_id) if snapshot.graph else ()
        anchor = anchors[0] if anchors else unique_id
        model, node = snapshot.name_of(anchor), snapshot.name_of(unique_id)
        model_selector = snapshot.selector_of(anchor)
        actions = [self._action("build", f"Build {model}+", value=f"{model_selector}+")]
        if snapshot.kind_of(anchor) == "model":  # dbt run runs models only
            actions.append(self._action("run", f"Run {model}", value=model_selector))
        return [*actions, self._action("test", f"Test {node}", value=snapshot.selector_of(unique_id))]

    def _action(self, command: str, title: str, ask: str = "", value: str = "") -> Action:
        # Every action targets the project: one dbt at a time, since two would overwrite each other's
        # target/ and fight over the warehouse (DuckDB lets one process write).
        return Action(target=f"{self.name}:{self._snapshot.name}", id=command, title=title, tier=Tier.DISRUPTIVE,
                      argv=self._argv(command, tuple(value.split())), timeout=RUN_TIMEOUT, expect=COMMANDS[command],
                      cwd=str(self.project_dir), source=self.name, ref=("project",), ask=ask, value=value)

    def _argv(self, command: str, selectors: tuple[str, ...]) -> tuple[str, ...]:
        argv = [self.dbt, command, "--project-dir", str(self.project_dir), "--profiles-dir", str(self.profiles_dir)]
        if self.target:
            argv += ["--target", self.target]
        if selectors:
            argv += ["--select", *selectors]
        return tuple(argv)

    def with_value(self, action: Action, value: str) -> Action:
        if action.id not in COMMANDS or not action.argv:
            return super().with_value(action, value)
        return replace(action, value=value, argv=self._argv(action.id, parse_selectors(value)))

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        from ..runner import run_argv

        if not action.argv:
            return await super().run(action, emit)
        cwd = action.cwd or str(self.project_dir)
        if not os.path.isdir(cwd):
            return ActionResult(action, False, None, error=f"project directory {cwd} does not exist")
        return await run_argv(action, emit, cwd=cwd, env=DBT_ENV)
