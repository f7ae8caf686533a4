"""A dbt project, read from the artifacts dbt leaves in its target directory; build, run and test it.

dbt overwrites ``run_results.json`` with every command, so the project row always tells of the last
invocation, whatever it selected (the reason says what it selected). ``manifest.json`` holds the DAG: what
depends on a node, which is what an operator asks about a failing one. Both files are parsed again only when
their size or mtime changed: a big project's manifest runs to tens of megabytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from ..actions import Action, ActionResult, Emit, Tier
from ..model import Listing, PipelineItem, PipelineReading, Reading, State
from .pipeline_base import PipelineError, PipelineSource
from .text import one_line, os_error_text, seconds

COMMANDS = {"build": "building", "run": "running", "test": "testing"}  # action id -> the row's transition
EXECUTING = frozenset({"build", "run", "test", "seed", "snapshot"})  # a clean `dbt compile` refreshes nothing
OK_STATUSES = frozenset({"success", "pass", "no-op"})
FAILED_STATUSES = frozenset({"fail", "error", "runtime error"})
# A skipped node did not run because something upstream failed: its data is stale, and we know why (WARN),
# which is not the "cannot tell" of UNKNOWN. The failure itself is CRITICAL on its own row.
WARN_STATUSES = frozenset({"warn", "partial success", "skipped"})
DBT_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DO_NOT_TRACK": "1", "DBT_USE_COLORS": "False"}
RUN_TIMEOUT = 2 * 3600.0  # a real project's build takes many minutes; the runner kills it past this
MAX_FAILURE_ROWS = 25  # failing nodes shown as rows of the pane; the project row counts them all
MAX_TREE = 200  # nodes listed downstream, and again upstream
WRITE_GRACE = 2.0  # dbt writes its JSON in place: a file this fresh that does not parse is half written
# "Runtime Error in model broken (models/broken.sql)\n  Catalog Error: ...": the row already names the node
ERROR_HEADING = re.compile(r"^(\w+ Error) in \w+ \S+ \([^)\n]*\)\s*\n")
TESTS = ("test.", "unit_test.")  # unique_id prefixes; a list puts tests after the models
SELECTABLE = frozenset({"model", "seed", "snapshot", "test", "unit_test"})  # by name, in a --select
SELECTOR = re.compile(r"[\w+@:.*,/-]+")
MAX_SELECT = 2000


class ArtifactError(Exception):
    """A file dbt wrote cannot be used; ``str()`` is one line for the operator."""


# -- what the artifacts say ------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    started: float | None
    duration: float | None
    message: str
    failures: int | None


@dataclass(frozen=True)
class RunResults:
    """One invocation of dbt, from ``run_results.json``."""

    invocation_id: str
    command: str  # args.which: build, run, test, seed, compile...
    selected: tuple[str, ...]
    started: float | None
    ended: float | None
    elapsed: float | None
    results: tuple[NodeResult, ...]

    @cached_property
    def failing(self) -> tuple[NodeResult, ...]:
        return tuple(r for r in self.results if r.status in FAILED_STATUSES)

    @property
    def clean(self) -> bool:
        return self.command in EXECUTING and not self.failing

    @cached_property
    def by_id(self) -> dict[str, NodeResult]:
        return {r.unique_id: r for r in self.results}


@dataclass(frozen=True)
class Graph:
    """The DAG from ``manifest.json``, without the rest of it (compiled code, macros, docs)."""

    project_name: str
    names: Mapping[str, str]
    kinds: Mapping[str, str]  # unique_id -> resource_type
    attached: Mapping[str, str]  # a test -> the model it tests
    # unique_id -> its fqn as a selector (shop.staging.orders): a bare name also selects any package or folder
    # of that name, and a model named like its project would select the whole project
    selectors: Mapping[str, str]
    parents: Mapping[str, tuple[str, ...]]
    children: Mapping[str, tuple[str, ...]]


def parse_time(text: Any) -> float | None:
    """dbt's ``2026-11-22T05:27:45.128872Z`` as epoch seconds."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _started(timing: Any) -> float | None:
    """When the node's execute step started (compile comes first and is quick), else its first step."""
    steps = [t for t in timing or () if isinstance(t, dict)]
    execute = [t for t in steps if t.get("name") == "execute"]
    return parse_time((execute or steps or [{}])[0].get("started_at"))


def _node_result(raw: dict) -> NodeResult:
    failures, status = raw.get("failures"), str(raw.get("status") or "").lower()
    ran = raw.get("execution_time") is not None and status != "skipped"  # dbt gives a skipped node 0 seconds
    return NodeResult(
        unique_id=str(raw["unique_id"]), status=status, started=_started(raw.get("timing")),
        duration=float(raw["execution_time"]) if ran else None,
        message=one_line(ERROR_HEADING.sub(r"\1: ", str(raw.get("message") or ""))), failures=int(failures) if failures is not None else None)


def parse_run_results(data: Any) -> RunResults:
    try:
        metadata, args = data.get("metadata") or {}, data.get("args") or {}
        ended, elapsed = parse_time(metadata.get("generated_at")), data.get("elapsed_time")
        elapsed = float(elapsed) if elapsed is not None else None
        started = parse_time(metadata.get("invocation_started_at"))
        if started is None and ended is not None and elapsed is not None:
            started = ended - elapsed
        select = args.get("select") or ()
        return RunResults(
            invocation_id=str(metadata.get("invocation_id") or ""), command=str(args.get("which") or "?"),
            selected=(select,) if isinstance(select, str) else tuple(map(str, select)),
            started=started, ended=ended, elapsed=elapsed,
            results=tuple(_node_result(raw) for raw in data["results"]))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"run_results.json is not what dbt writes ({_shape_error(exc)})") from None


def parse_manifest(data: Any) -> Graph:
    try:
        names: dict[str, str] = {}
        kinds: dict[str, str] = {}
        attached: dict[str, str] = {}
        selectors: dict[str, str] = {}
        for section in ("nodes", "sources", "exposures", "metrics", "semantic_models", "unit_tests", "snapshots"):
            for uid, node in (data.get(section) or {}).items():
                names[uid] = str(node.get("name") or uid_name(uid))
                kinds[uid] = str(node.get("resource_type") or uid.split(".")[0])
                if node.get("attached_node"):
                    attached[uid] = str(node["attached_node"])
                if node.get("fqn"):
                    selectors[uid] = ".".join(map(str, node["fqn"]))

        def edges(key: str) -> dict[str, tuple[str, ...]]:
            return {uid: tuple(sorted(map(str, ids), key=lambda i: (i.startswith(TESTS), i)))
                    for uid, ids in (data.get(key) or {}).items()}

        return Graph(project_name=str((data.get("metadata") or {}).get("project_name") or ""), names=names,
                     kinds=kinds, attached=attached, selectors=selectors, parents=edges("parent_map"), children=edges("child_map"))
    except (AttributeError, TypeError, ValueError) as exc:
        raise ArtifactError(f"manifest.json is not what dbt writes ({_shape_error(exc)})") from None


def _shape_error(exc: Exception) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else one_line(str(exc), 80)


def uid_name(unique_id: str) -> str:
    """``test.shop.not_null_orders_amount.106140f9fd`` -> ``not_null_orders_amount``,
    ``unit_test.shop.order_totals.totals_add_up`` -> ``totals_add_up`` (when no manifest is at hand)."""
    parts = unique_id.split(".")
    if len(parts) < 3:
        return unique_id
    return parts[-1] if parts[0] == "unit_test" else parts[2]


def state_of(status: str) -> State:
    if status in OK_STATUSES:
        return State.OK
    if status in FAILED_STATUSES:
        return State.CRITICAL
    return State.WARN if status in WARN_STATUSES else State.UNKNOWN


# -- reading the files -----------------------------------------------------------------------------


class Artifact:
    """One file dbt writes, parsed again only when its size or mtime changed (its error is kept too)."""

    def __init__(self, path: Path, parse: Callable[[bytes], Any], clock: Callable[[], float]) -> None:
        self.path, self.parse, self.clock = path, parse, clock
        self._stamp: tuple[int, int] | None = None
        self._value: Any = None
        self._error = ""

    def load(self) -> Any:
        """The parsed file; FileNotFoundError when it is not there, ArtifactError when it cannot be used."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._value, self._error = None, None, ""
            raise
        except OSError as exc:
            raise ArtifactError(f"cannot read {self.path}: {os_error_text(exc)}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            value, error = self._parse_file()
            if error and self._value is not None and self.clock() - stat.st_mtime < WRITE_GRACE:
                return self._value  # being written: keep the last good one and look again next poll
            self._stamp, self._value, self._error = stamp, value, error
        if self._error:
            raise ArtifactError(self._error)
        return self._value

    def _parse_file(self) -> tuple[Any, str]:
        try:
            return self.parse(self.path.read_bytes()), ""
        except FileNotFoundError:
            return None, f"{self.path.name} vanished while being read"
        except OSError as exc:
            return None, f"cannot read {self.path}: {os_error_text(exc)}"
        except json.JSONDecodeError as exc:
            return None, one_line(f"{self.path.name} is not valid JSON ({exc.msg.lower()} at line {exc.lineno} "
                                  f"column {exc.colno}): run dbt again or remove it")
        except UnicodeDecodeError:
            return None, f"{self.path.name} is not UTF-8 text: run dbt again or remove it"
        except yaml.YAMLError as exc:
            return None, one_line(f"{self.path} is not valid YAML: {exc}")
        except ArtifactError as exc:
            return None, str(exc)


def _project_name(raw: bytes) -> str:
    data = yaml.safe_load(raw)
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else ""


@dataclass(frozen=True)
class Snapshot:
    """What the files said at one poll."""

    name: str
    results: RunResults | None = None
    graph: Graph | None = None
    problem: str = ""  # why there are no results: missing directory, no run yet, corrupt file
    status: str = "no runs"
    graph_problem: str = ""

    def name_of(self, unique_id: str) -> str:
        return (self.graph.names.get(unique_id) if self.graph else None) or uid_name(unique_id)

    def selector_of(self, unique_id: str) -> str:
        return (self.graph.selectors.get(unique_id) if self.graph else None) or self.name_of(unique_id)

    def kind_of(self, unique_id: str) -> str:
        return (self.graph.kinds.get(unique_id) if self.graph else None) or unique_id.split(".")[0]

    def result_of(self, unique_id: str) -> NodeResult | None:
        return self.results.by_id.get(unique_id) if self.results else None


# -- words -----------------------------------------------------------------------------------------


def parse_selectors(text: str) -> tuple[str, ...]:
    """The words of a ``--select``, each a dbt selector; ValueError (one line) for anything else."""
    if len(text) > MAX_SELECT:
        raise ValueError(f"a selection of {len(text)} characters is too long (at most {MAX_SELECT})")
    words = tuple(text.split())
    for word in words:
        if word.startswith("-"):
            raise ValueError(f"{one_line(word, 40)} is an option, not a selector: give models, tags (tag:x), "
                             f"paths or graph operators (orders+)")
        bad = SELECTOR.sub("", word)
        if bad:
            raise ValueError(f"{one_line(word, 40)}: dbt selectors never use {one_line(bad[0])!r}")
    return words


def _names(snapshot: Snapshot, results: Iterable[NodeResult], limit: int = 2) -> str:
    names = [snapshot.name_of(r.unique_id) for r in results]
    more = f", +{len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def invocation_words(results: RunResults) -> str:
    select = f" --select {' '.join(results.selected)}" if results.selected else ""
    return f"dbt {results.command}{select}"


def summary(snapshot: Snapshot, results: RunResults) -> str:
    """``dbt build: 6 ok, 1 failed (not_null_orders_amount), 2 skipped · 2.4s · invocation 14ec24d5``"""
    counts: dict[str, list[NodeResult]] = {}
    for result in results.results:
        word = {State.OK: "ok", State.CRITICAL: "failed"}.get(state_of(result.status), result.status)
        counts.setdefault(word, []).append(result)
    parts = []
    for word in ("ok", "failed", *sorted(set(counts) - {"ok", "failed"})):
        if word in counts:
            named = f" ({_names(snapshot, counts[word])})" if word in ("failed", "warn") else ""
            parts.append(f"{len(counts[word])} {'warned' if word == 'warn' else word}{named}")
    tally = ", ".join(parts) or "nothing selected"
    took = f" · {seconds(results.elapsed)}" if results.elapsed is not None else ""
    return f"{invocation_words(results)}: {tally}{took} · invocation {results.invocation_id[:8] or '?'}"


def _clock(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts is not None else "at an unknown time"


def anchors_of(graph: Graph, unique_id: str) -> tuple[str, ...]:
    """What a test tests (its model): where its failure holds dbt build back. Empty for anything else."""
    if graph.kinds.get(unique_id) not in ("test", "unit_test"):
        return ()
    attached = graph.attached.get(unique_id)
    return (attached,) if attached else graph.parents.get(unique_id, ())


def held_back(graph: Graph, unique_id: str) -> list[str]:
    """The first nodes dbt build skips when ``unique_id`` fails: its children, or for a test, what depends
    on its model (the model's other tests still run)."""
    anchors = anchors_of(graph, unique_id)
    if graph.kinds.get(unique_id) == "unit_test":
        return list(anchors)  # a unit test runs before its model: failing, it stops the model being built
    if anchors:
        return [child for a in anchors for child in graph.children.get(a, ()) if graph.kinds.get(child) != "test"]
    return list(graph.children.get(unique_id, ()))


def skip_causes(graph: Graph, failing: Iterable[NodeResult]) -> dict[str, str]:
    """Each node a failure held back -> that failure (the first that reaches it); every edge walked once."""
    causes: dict[str, str] = {}
    for failure in failing:
        stack = held_back(graph, failure.unique_id)
        while stack:
            uid = stack.pop()
            if uid not in causes:
                causes[uid] = failure.unique_id
                stack.extend(graph.children.get(uid, ()))
    return causes


def _walk(start: Iterable[str], edges: Mapping[str, tuple[str, ...]], skip: set[str]) -> list[tuple[str, int]]:
    """Depth first from ``start`` (depth 1), each node once, at most MAX_TREE of them."""
    out: list[tuple[str, int]] = []
    seen = set(skip)
    stack = [(uid, 1) for uid in reversed(tuple(start))]
    while stack and len(out) < MAX_TREE:
        uid, depth = stack.pop()
        if uid in seen:
            continue
        seen.add(uid)
        out.append((uid, depth))
        stack.extend((child, depth + 1) for child in reversed(edges.get(uid, ())))
    return out


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
        self._project_file = Artifact(self.project_dir / "dbt_project.yml", _project_name, self.clock)
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
        note = (f"{invocation_words(results)} · ended {_clock(results.ended)} · invocation "
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
        down = _walk(roots, graph.children, {unique_id, *anchors})
        up = _walk(graph.parents.get(unique_id, ()), graph.parents, {unique_id, *(uid for uid, _ in down)})
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
