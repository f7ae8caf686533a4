"""Prometheus' HTTP API (v1) over JsonApi: instant and range queries, scrape targets and alerts.

Answers come back as plain Python: labels as a dict, values as floats (Prometheus writes ``NaN``, ``+Inf`` and
``-Inf`` as strings; they stay floats here and the adapters decide what they mean). When Prometheus itself
refuses or fails a query, ``QueryError`` carries its own words on one line ("bad PromQL: 1:5: parse error: ...");
anything else (refused, timed out, another HTTP status) stays the ``ApiError`` of JsonApi.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .json_api import ApiError, JsonApi
from .text import one_line

QUERY, QUERY_RANGE, TARGETS, ALERTS = "/api/v1/query", "/api/v1/query_range", "/api/v1/targets", "/api/v1/alerts"
POINTS = 60  # a range query asks for about this many points: a sparkline's worth
MIN_STEP = 5.0  # seconds; a step shorter than the scrape interval only repeats samples


Points = tuple[tuple[float, float], ...]  # (epoch seconds, value), oldest first


class QueryError(ApiError):
    """Prometheus answered, and refused or failed the query (bad PromQL, an execution error)."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels and its value at ``ts``."""

    labels: Mapping[str, str]
    value: float
    ts: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its finite (ts, value) points, oldest first."""

    labels: Mapping[str, str]
    points: Points


def number(text: Any) -> float:
    """A value as Prometheus writes it ("1e+00", "NaN", "+Inf"); NaN when it is not a number at all."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def range_step(window: float) -> float:
    return max(MIN_STEP, window / POINTS)


def aligned(points: Points, server_now: float, local_now: float) -> Points:
    """Points on Prometheus' clock moved onto ours, strictly before ``local_now``: a sparkline's past must come
    before the reading it leads up to, even when the two clocks disagree."""
    shift = local_now - server_now
    return tuple((ts + shift, value) for ts, value in points if ts + shift < local_now)


def _labels(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _refusal(error: str, path: str, status: int | None) -> str:
    error = error.removeprefix('invalid parameter "query": ')
    if path in (QUERY, QUERY_RANGE) and status == 400:
        return one_line(f"bad PromQL: {error}")
    return one_line(f"query failed: {error}" if path in (QUERY, QUERY_RANGE) else f"{path}: {error}")


class PrometheusApi:
    """One Prometheus server; ``base_url`` may carry a path prefix (a Prometheus behind a reverse proxy)."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None, verify_tls: bool = True,
                 ca_file: str | None = None) -> None:
        self.api = JsonApi(base_url, headers, verify_tls, ca_file)  # ValueError when the URL is bad

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> PrometheusApi:
        """From a source's options (``_http_api`` fields); ValueError when the URL is bad."""
        return cls(options["url"], options.get("headers"), options.get("verify_tls", True), options.get("ca_file"))

    @property
    def where(self) -> str:
        return self.api.where

    async def close(self) -> None:
        await self.api.close()

    async def get(self, path: str, timeout: float, params: Mapping[str, Any] | None = None) -> Any:
        """The ``data`` of an answer; QueryError when Prometheus said no, ApiError when it could not be asked."""
        try:
            answer = await self.api.request("GET", path, timeout=timeout, params=params)
        except ApiError as exc:
            if exc.status in (400, 422):  # Prometheus' own error JSON, which JsonApi put after the status
                said = str(exc).removeprefix(f"HTTP {exc.status} from GET {path}: ")
                raise QueryError(_refusal(said, path, exc.status), exc.status) from None
            raise
        if not isinstance(answer, dict) or "status" not in answer:
            raise ApiError(f"the answer to GET {path} is not from a Prometheus API (no status)")
        if answer["status"] != "success":
            raise QueryError(_refusal(str(answer.get("error") or answer.get("errorType") or "error"), path, None))
        return answer.get("data")

    async def instant(self, query: str, timeout: float) -> list[Sample]:
        """Every series an instant query returns now; a scalar is one series without labels."""
        data = await self.get(QUERY, timeout, {"query": query}) or {}
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [Sample({}, number(result[1]), number(result[0]))]
        if kind != "vector":
            raise QueryError(f"the query returns a {kind or 'nothing usable'}, not an instant vector: "
                             f"{one_line(query, 80)}")
        samples = []
        for item in result or ():
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, list) and len(value) == 2:
                samples.append(Sample(_labels(item.get("metric")), number(value[1]), number(value[0])))
        return samples

    async def range_query(self, query: str, window: float, timeout: float, end: float | None = None) -> list[Series]:
        """The series of ``query`` over the last ``window`` seconds, about POINTS points each."""
        end = time.time() if end is None else end
        params = {"query": query, "start": f"{end - window:.3f}", "end": f"{end:.3f}",
                  "step": f"{range_step(window):g}"}
        data = await self.get(QUERY_RANGE, timeout, params) or {}
        found = []
        for item in data.get("result") or ():
            if not isinstance(item, dict):
                continue
            points = tuple((number(p[0]), v) for p in item.get("values") or ()
                           if isinstance(p, list) and len(p) == 2 and math.isfinite(v := number(p[1])))
            found.append(Series(_labels(item.get("metric")), points))
        return found

    async def targets(self, timeout: float) -> list[dict[str, Any]]:
        data = await self.get(TARGETS, timeout, {"state": "active"}) or {}
        return [t for t in data.get("activeTargets") or () if isinstance(t, dict)]

    async def alerts(self, timeout: float) -> list[dict[str, Any]]:
        data = await self.get(ALERTS, timeout) or {}
        return [a for a in data.get("alerts") or () if isinstance(a, dict)]


class ReadsPrometheus:
    """What every source reading one Prometheus shares: its client (or why the URL cannot be used), how it is
    described, and closing it. Mixed in before Source."""

    url: str
    api: PrometheusApi | None
    bad_url: str

    def connect(self, options: Mapping[str, Any]) -> None:
        self.url = options["url"]
        self.api, self.bad_url = None, ""
        try:
            self.api = PrometheusApi.of(options)
        except ValueError as exc:
            self.bad_url = one_line(f"bad url {self.url!r}: {exc}")

    def describe(self) -> str:
        return f"prometheus {self.api.where}" if self.api else self.url

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()
