"""What dbt leaves in its target directory, as frozen records, and the DAG walks over them.

``run_results.json`` tells of the last invocation; ``manifest.json`` holds the DAG: what depends on a node,
which is what an operator asks about a failing one. Both files are parsed again only when their size or mtime
changed: a big project's manifest runs to tens of megabytes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from ..model import State
from .pipeline_base import epoch
from .text import one_line, os_error_text, seconds

EXECUTING = frozenset({"build", "run", "test", "seed", "snapshot"})  # a clean `dbt compile` refreshes nothing
OK_STATUSES = frozenset({"success", "pass", "no-op"})
FAILED_STATUSES = frozenset({"fail", "error", "runtime error"})
# A skipped node did not run because something upstream failed: its data is stale, and we know why (WARN),
# which is not the "cannot tell" of UNKNOWN. The failure itself is CRITICAL on its own row.
WARN_STATUSES = frozenset({"warn", "partial success", "skipped"})
MAX_TREE = 200  # nodes listed downstream, and again upstream
WRITE_GRACE = 2.0  # dbt writes its JSON in place: a file this fresh that does not parse is half written
# "Runtime Error in model broken (models/broken.sql)\n  Catalog Error: ...": the row already names the node
ERROR_HEADING = re.compile(r"^(\w+ Error) in \w+ \S+ \([^)\n]*\)\s*\n")
TESTS = ("test.", "unit_test.")  # unique_id prefixes; a list puts tests after the models
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


def _started(timing: Any) -> float | None:
    """When the node's execute step started (compile comes first and is quick), else its first step."""
    steps = [t for t in timing or () if isinstance(t, dict)]
    execute = [t for t in steps if t.get("name") == "execute"]
    return epoch((execute or steps or [{}])[0].get("started_at"))


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
        ended, elapsed = epoch(metadata.get("generated_at")), data.get("elapsed_time")
        elapsed = float(elapsed) if elapsed is not None else None
        started = epoch(metadata.get("invocation_started_at"))
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


def project_name(raw: bytes) -> str:
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


def clock_text(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts is not None else "at an unknown time"


# -- walking the graph -----------------------------------------------------------------------------


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


def walk(start: Iterable[str], edges: Mapping[str, tuple[str, ...]], skip: set[str]) -> list[tuple[str, int]]:
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
