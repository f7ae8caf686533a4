"""Jobs and their lineage from Marquez, the OpenLineage reference server (read only: no actions).

What it reads (Marquez API v1, as in MarquezProject/marquez ``spec/openapi.yml``):

    GET /api/v1/namespaces?limit=&offset=            {"namespaces": [{"name": ...}]}
    GET /api/v1/namespaces/{ns}/jobs?limit=&offset=  {"jobs": [{"name", "namespace", "latestRun": {"state",
            "startedAt", "endedAt", "durationMs", "facets": {"errorMessage": {"message"}}} | null,
            "latestRuns": [the 10 newest runs]}], "totalCount": n}
    GET /api/v1/lineage?nodeId=job:{ns}:{name}&depth=N   (or nodeId=dataset:{ns}:{name})
            {"graph": [{"id", "type": "JOB" | "DATASET", "data": {...},
                        "inEdges": [{"origin", "destination"}], "outEdges": [...]}]}

A run's state is NEW, RUNNING, COMPLETED, FAILED or ABORTED. Opening a job or a dataset lists its upstream
tree, then its downstream tree, as far as ``depth`` jobs away (Marquez's own meaning of depth); each node
shows once per tree, so a cycle ends. The datasets a failed job did not refresh, and everything downstream of
an opened failed job, are WARN, and the listing's note counts what the failure affects.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import replace
from typing import Any

from ..model import Listing, PipelineItem, PipelineReading, Reading, State
from .json_api import ApiError, JsonApi, segment
from .pipeline_base import PipelineError, PipelineSource, is_number, time_or_none
from .text import one_line

RUN_STATES = {"NEW": State.OK, "RUNNING": State.OK, "COMPLETED": State.OK, "ABORTED": State.WARN,
              "FAILED": State.CRITICAL}
PAGE_SIZE = 100  # Marquez's default limit
MAX_PAGES = 50  # at most 5,000 namespaces, and jobs per namespace, a poll
MAX_AT_ONCE = 4  # namespaces read at once: Marquez lists every dataset source as a namespace too
DRILL_TIMEOUT = 10.0  # a deep lineage graph takes Marquez a while: an opening may wait longer than a poll
DAY = 86_400.0
# Marquez splits a node id at the first colon that does not start "//" or a port: "dataset:postgres://db:5432:t"
NODE_ID_COLON = re.compile(r":(?!//|\d)")

UP, DOWN = "↑", "↓"


class MarquezLineage(PipelineSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.url: str = options["url"]
        self.namespaces: list[str] = list(options.get("namespaces") or [])
        self.depth: int = options.get("depth") or 5
        self.page_size = PAGE_SIZE
        self.api: JsonApi | None = None
        self.bad_url = ""
        base = self.url.rstrip("/")
        try:
            self.api = JsonApi(base if base.endswith("/api/v1") else f"{base}/api/v1", options.get("headers") or {})
        except ValueError as exc:
            self.bad_url = one_line(f"bad url {self.url!r}: {exc}")

    def describe(self) -> str:
        return self.url

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()

    async def get(self, path: str, timeout: float, **params: Any) -> Any:
        if self.api is None:
            raise ApiError(self.bad_url)
        return await self.api.request("GET", path, timeout=timeout, params=params or None)

    async def paged(self, path: str, key: str) -> tuple[list[Any], bool]:
        """Every entry of a paged list (``limit``/``offset``), and whether all of them were read."""
        entries: list[Any] = []
        for _ in range(MAX_PAGES):
            answer = await self.get(path, self.timeout, limit=self.page_size, offset=len(entries))
            page = answer.get(key) if isinstance(answer, dict) else None
            if not isinstance(page, list):
                raise ApiError(f"the answer to GET {path} has no {key!r} list")
            entries.extend(page)
            total = answer.get("totalCount")
            if len(page) < self.page_size or (isinstance(total, int) and len(entries) >= total):
                return entries, True
        return entries, False

    # -- reading -----------------------------------------------------------------------------------

    async def read(self) -> list[Reading]:
        try:
            namespaces = self.namespaces or await self.all_namespaces()
        except ApiError as exc:
            return self.failed(str(exc))
        gate = asyncio.Semaphore(MAX_AT_ONCE)
        found = await asyncio.gather(*(self.jobs_of(ns, gate) for ns in namespaces))
        if namespaces and all(isinstance(jobs, ApiError) for jobs, _ in found):
            return self.failed(str(found[0][0]))
        readings: list[Reading] = []
        for ns, (jobs, complete) in zip(namespaces, found):
            if isinstance(jobs, ApiError):
                readings.append(self.reading(ns, State.UNKNOWN, f"namespace {ns}: {jobs}", can_open=False))
                continue
            readings.extend(self.job_reading(ns, job, index) for index, job in enumerate(jobs))
            if not complete:
                readings.append(self.reading(f"{ns}/…", State.WARN, f"only the first {len(jobs)} jobs of {ns} are "
                                             f"watched ({MAX_PAGES} pages of {self.page_size} a poll)", can_open=False))
        return readings

    async def all_namespaces(self) -> list[str]:
        entries, _ = await self.paged("/namespaces", "namespaces")
        return [e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)]

    async def jobs_of(self, ns: str, gate: asyncio.Semaphore) -> tuple[list[Any] | ApiError, bool]:
        try:
            async with gate:
                return await self.paged(f"/namespaces/{segment(ns)}/jobs", "jobs")
        except ApiError as exc:
            return exc, False

    def job_reading(self, ns: str, job: Any, index: int) -> PipelineReading:
        name = job.get("name") if isinstance(job, dict) else None
        if not isinstance(name, str) or not name:
            return self.reading(f"{ns}/#{index + 1}", State.UNKNOWN, f"job {index + 1} of {ns} has no name",
                                can_open=False)
        shown = name if len(self.namespaces) == 1 else f"{ns}/{name}"
        run = job.get("latestRun") if isinstance(job.get("latestRun"), dict) else None
        runs = [r for r in job.get("latestRuns") or [] if isinstance(r, dict)] or ([run] if run else [])
        state, reason = run_verdict(run)
        return self.reading(shown, state, reason, status=str(run.get("state") or "").lower() if run else "no runs",
                            last_start=time_of(run, "startedAt"), last_duration=duration_of(run),
                            last_success=last_success(runs), failures=self.recent_failures(runs),
                            ref=("job", ns, name))

    def recent_failures(self, runs: list[dict]) -> int:
        since = self.clock() - DAY
        return sum(1 for r in runs if r.get("state") == "FAILED" and (time_of(r, "startedAt") or 0) >= since)

    # -- lineage -----------------------------------------------------------------------------------

    async def open(self, ref: tuple[str, ...]) -> Listing:
        """The upstream tree, then the downstream tree, of a job or a dataset: ``ref`` is (kind, namespace, name),
        maybe followed by a marker that only keeps a row's ref distinct."""
        if len(ref) < 3 or ref[0] not in ("job", "dataset"):
            return await super().open(ref)
        kind, ns, name = ref[:3]
        root_id = f"{kind}:{ns}:{name}"
        try:
            answer = await self.get("/lineage", max(self.timeout, DRILL_TIMEOUT), nodeId=root_id, depth=self.depth)
        except ApiError as exc:
            raise PipelineError(str(exc)) from None
        graph = answer.get("graph") if isinstance(answer, dict) else None
        if not isinstance(graph, list):
            raise PipelineError("the answer to GET /lineage has no \"graph\" list")
        nodes = {n["id"]: n for n in graph if isinstance(n, dict) and isinstance(n.get("id"), str)}
        if root_id not in nodes:
            raise PipelineError(f"Marquez's lineage graph of {kind} {ns}/{name} does not hold it")
        return LineageView(nodes, root_id, self.depth).listing(f"{self.name} · {kind} {name}")


class LineageView:
    """The trees of one lineage graph around its root node; every walk visits a node once, so cycles end."""

    def __init__(self, nodes: dict[str, dict], root_id: str, depth: int) -> None:
        self.nodes = nodes
        self.root_id = root_id
        self.depth = depth
        self.root_ns = identity(nodes[root_id])[0]

    def listing(self, title: str) -> Listing:
        root = self.nodes[self.root_id]
        upstream = self.tree("inEdges", "origin")
        downstream = self.tree("outEdges", "destination")
        root_failed = run_state(root) == "FAILED"
        items = [self.item(root, 0, "", root_failed=False, can_open=False)]
        listed = {self.root_id}
        for arrow, tree in ((UP, upstream), (DOWN, downstream)):
            for node_id, depth in tree:
                item = self.item(self.nodes[node_id], depth, arrow, root_failed=root_failed and arrow == DOWN)
                if node_id in listed:  # in a cycle a node is both upstream and downstream: rows need distinct refs
                    item = replace(item, ref=(*item.ref, "downstream"))
                listed.add(node_id)
                items.append(item)
        return Listing(title=title, items=tuple(items), note=self.note(root, upstream, downstream))

    def tree(self, edges: str, end: str) -> list[tuple[str, int]]:
        """The nodes reached from the root along ``edges``, breadth first (each once, at its shortest distance,
        at most ``depth`` jobs away), laid out depth first as (node id, depth) rows."""
        children: dict[str, list[str]] = {}
        jobs_away = {self.root_id: 0}
        queue = deque([self.root_id])
        while queue:
            current = queue.popleft()
            for edge in self.nodes[current].get(edges) or ():
                following = edge.get(end) if isinstance(edge, dict) else None
                if not isinstance(following, str) or following in jobs_away or following not in self.nodes:
                    continue
                away = jobs_away[current] + (self.nodes[following].get("type") == "JOB")
                if away > self.depth:
                    continue
                jobs_away[following] = away
                children.setdefault(current, []).append(following)
                queue.append(following)
        rows: list[tuple[str, int]] = []
        stack = [(child, 1) for child in sorted(children.get(self.root_id, ()), reverse=True)]
        while stack:
            node_id, depth = stack.pop()
            rows.append((node_id, depth))
            stack.extend((child, depth + 1) for child in sorted(children.get(node_id, ()), reverse=True))
        return rows

    def item(self, node: dict, depth: int, arrow: str, root_failed: bool, can_open: bool = True) -> PipelineItem:
        kind = "job" if node.get("type") == "JOB" else "dataset"
        ns, name = identity(node)
        label = f"{arrow} {kind} {name}" if arrow else f"{kind} {name}"
        if kind == "job":
            run = (node.get("data") or {}).get("latestRun")
            run = run if isinstance(run, dict) else None
            state, reason = run_verdict(run)
            failed = reason if run is not None and run.get("state") == "FAILED" else ""
            return PipelineItem(ref=("job", ns, name), name=label, state=state,
                                status=str(run.get("state") or "").lower() if run else "no runs",
                                started=time_of(run, "startedAt"), duration=duration_of(run),
                                note=self.with_namespace(failed, ns), depth=depth, can_open=can_open)
        state, status, note = self.dataset_verdict(node, root_failed)
        return PipelineItem(ref=("dataset", ns, name), name=label, state=state, status=status,
                            note=self.with_namespace(note, ns), depth=depth, can_open=can_open)

    def with_namespace(self, note: str, ns: str) -> str:
        """The note, naming the namespace when it is not the root's (a job's input from another system)."""
        return " · ".join(p for p in (note, f"namespace {ns}" if ns != self.root_ns else "") if p)

    def dataset_verdict(self, node: dict, root_failed: bool) -> tuple[State, str, str]:
        """State, status and note of a dataset: WARN when the job that writes it failed, or when it is
        downstream of the failed job opened."""
        writers = [self.nodes[e["origin"]] for e in node.get("inEdges") or ()
                   if isinstance(e, dict) and isinstance(e.get("origin"), str) and e["origin"] in self.nodes]
        failed = [identity(w)[1] for w in writers if run_state(w) == "FAILED"]
        if failed:
            return State.WARN, "writer failed", f"not refreshed: {', '.join(sorted(failed))} failed"
        if root_failed:
            _, root_name = identity(self.nodes[self.root_id])
            return State.WARN, "affected", f"downstream of failed {root_name}"
        return State.OK, "", ""

    def note(self, root: dict, upstream: list[tuple[str, int]], downstream: list[tuple[str, int]]) -> str:
        depth = f"depth {self.depth}"
        if run_state(root) == "FAILED":
            jobs = sum(1 for node_id, _ in downstream if self.nodes[node_id].get("type") == "JOB")
            datasets = len(downstream) - jobs
            return (f"FAILED: {plural(datasets, 'downstream dataset')} and {plural(jobs, 'job')} affected · "
                    f"{len(upstream)} upstream · {depth}")
        return f"{len(upstream)} upstream · {len(downstream)} downstream · {depth}"


# -- reading Marquez's shapes ------------------------------------------------------------------------


def identity(node: dict) -> tuple[str, str]:
    """(namespace, name) of a graph node: from its data, else from its id (``job:<ns>:<name>``)."""
    data = node.get("data") if isinstance(node.get("data"), dict) else {}
    ident = data.get("id") if isinstance(data.get("id"), dict) else {}
    ns, name = ident.get("namespace") or data.get("namespace"), ident.get("name") or data.get("name")
    if isinstance(ns, str) and isinstance(name, str):
        return ns, name
    rest = str(node.get("id", "")).split(":", 1)[-1]
    parts = NODE_ID_COLON.split(rest, maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else ("", rest)


def run_state(node: dict) -> str:
    run = (node.get("data") or {}).get("latestRun") if isinstance(node.get("data"), dict) else None
    return str(run.get("state") or "") if isinstance(run, dict) else ""


def run_verdict(run: dict | None) -> tuple[State, str]:
    """The state and one line for a job from its latest run."""
    if run is None:
        return State.OK, "no runs yet"
    word = str(run.get("state") or "")
    if word not in RUN_STATES:
        return State.UNKNOWN, f"run state {word!r} is not one of {', '.join(RUN_STATES)}"
    said = word.lower()
    if word == "FAILED":
        said = f"failed: {error_message(run)}" if error_message(run) else "failed"
    return RUN_STATES[word], one_line(said)


def error_message(run: dict) -> str:
    """The OpenLineage ``errorMessage`` run facet's message, if the run has one."""
    facet = (run.get("facets") or {}).get("errorMessage") if isinstance(run.get("facets"), dict) else None
    return one_line(str(facet.get("message") or ""), 160) if isinstance(facet, dict) else ""


def time_of(run: dict | None, key: str) -> float | None:
    return time_or_none(run.get(key)) if run is not None else None


def duration_of(run: dict | None) -> float | None:
    if run is None:
        return None
    if is_number(run.get("durationMs")):
        return run["durationMs"] / 1000
    started, ended = time_of(run, "startedAt"), time_of(run, "endedAt")
    return ended - started if started is not None and ended is not None else None


def last_success(runs: list[dict]) -> float | None:
    """When the newest COMPLETED run among ``runs`` ended."""
    ends = [time_of(r, "endedAt") for r in runs if r.get("state") == "COMPLETED"]
    return max((e for e in ends if e is not None), default=None)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
