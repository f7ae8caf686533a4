"""An HTTP endpoint: status code, optional JSON fields, latency."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any

from ..model import CheckReading, Reading, State
from ..redact import hide
from .base import Source
from .http_wire import Pool, ProtocolError, Response, Target, parse_url, tls_context
from .text import connect_error_reason, one_line, os_error_text, seconds

MAX_BODY = 1024 * 1024

# One pool of keep-alive connections per event loop, shared by every HttpCheck on it, and closed
# when the last check closes. TLS contexts do not belong to a loop: one per setting, for the process.
_POOLS: dict[asyncio.AbstractEventLoop, tuple[Pool, list[int]]] = {}
_TLS: dict[tuple[bool, str | None], asyncio.Future[ssl.SSLContext]] = {}


def _acquire_pool() -> Pool:
    loop = asyncio.get_running_loop()
    for gone in [old for old in _POOLS if old.is_closed()]:
        del _POOLS[gone]
    pool, users = _POOLS.setdefault(loop, (Pool(), [0]))
    users[0] += 1
    return pool


def _release_pool() -> None:
    loop = asyncio.get_running_loop()
    entry = _POOLS.get(loop)
    if entry is None:
        return
    pool, users = entry
    users[0] -= 1
    if users[0] <= 0:
        del _POOLS[loop]
        pool.close()


async def shared_tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """The process's TLS context for this setting, built once in a thread (checks and actions share it)."""
    key = (verify, ca_file)
    building = _TLS.get(key)
    if building is None or building.get_loop().is_closed():
        building = _TLS[key] = asyncio.ensure_future(asyncio.to_thread(tls_context, verify, ca_file))
    try:
        return await asyncio.shield(building)
    except (OSError, ssl.SSLError):
        if _TLS.get(key) is building:
            del _TLS[key]  # a missing CA file may appear later: try again at the next poll
        raise


def json_field(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``checks.0.status``); raises KeyError when it is not there."""
    if isinstance(document, dict) and path in document:
        return document[path]
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def json_text(value: Any) -> str:
    """A JSON value as the config writes it: strings as-is, ``true``/``false``, ``null``, numbers."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def same_value(actual: str, expected: str) -> bool:
    if actual == expected:
        return True
    try:
        return float(actual) == float(expected)  # 1 and 1.0 are the same number
    except ValueError:
        return False


class HttpCheck(Source):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.url: str = options["url"]
        self.method: str = options["method"]
        self.expect_status: frozenset[int] | None = (
            frozenset(options["expect_status"]) if options["expect_status"] is not None else None
        )
        self.expect_json: dict[str, str] = dict(options["expect_json"] or {})
        self.headers: dict[str, str] = dict(options["headers"])
        self.verify_tls: bool = options["verify_tls"]
        self.ca_file: str | None = options["ca_file"]
        self.warn_latency: float | None = options["warn_latency"]
        try:
            self.target: Target | None = parse_url(self.url)
            self.bad_url = ""
        except ValueError as exc:
            self.target, self.bad_url = None, str(exc)
        self.host = self.target.host if self.target else "?"
        self.port = self.target.port if self.target else "?"
        self._pool: Pool | None = None

    def describe(self) -> str:
        url = hide(self.url)  # ?token=...: shown as ***
        return url if self.method == "GET" else f"{self.method} {url}"

    async def close(self) -> None:
        if self._pool is not None:
            self._pool = None
            _release_pool()

    async def poll(self) -> list[Reading]:
        if self.target is None:
            return [self._reading(State.UNKNOWN, f"bad URL {hide(self.url)}: {self.bad_url} (expected http:// or https://)")]
        limit = self.timeout * 0.9
        started = time.perf_counter()
        if self._pool is None:
            self._pool = _acquire_pool()
        tls = None
        if self.target.scheme == "https":
            try:
                tls = await shared_tls_context(self.verify_tls, self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                return [self._reading(State.UNKNOWN, f"cannot load CA file {self.ca_file}: {os_error_text(exc)}")]
        left = max(0.01, limit - (time.perf_counter() - started))
        try:
            response = await asyncio.wait_for(
                self._pool.fetch(self.method, self.target, self.headers, tls, MAX_BODY), left)
        except asyncio.TimeoutError:
            return [self._reading(State.CRITICAL, f"no answer within {seconds(limit)}")]
        except (ProtocolError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            what = "the connection closed mid-answer" if isinstance(exc, asyncio.IncompleteReadError) else exc
            return [self._reading(State.CRITICAL, f"broken HTTP answer from {self.host}:{self.port}: {what}")]
        except OSError as exc:  # before ValueError: a TLS verification error is both
            return [self._reading(State.CRITICAL, connect_error_reason(exc, self.host, self.port))]
        except ValueError as exc:
            return [self._reading(State.UNKNOWN, f"cannot send the request: {exc}")]
        latency_ms = (time.perf_counter() - started) * 1000
        return [self._judge(response, latency_ms)]

    def _judge(self, response: Response, latency_ms: float) -> CheckReading:
        code = response.status
        status_text = f"HTTP {code} {response.reason}".rstrip()
        details: list[tuple[str, str]] = [("status", str(code))]
        wanted = self.expect_status
        if not (code in wanted if wanted is not None else 200 <= code < 300):
            expected = ", ".join(map(str, sorted(wanted))) if wanted is not None else "2xx"
            location = response.headers.get("location")
            moved = f" → {location}" if location and 300 <= code < 400 else ""
            return self._reading(State.CRITICAL, f"{status_text}{moved} (expected {expected})", latency_ms, details)
        if self.expect_json:
            problem = self._check_json(response.body, response.complete, details)
            if problem:
                return self._reading(State.CRITICAL, problem, latency_ms, details)
        if self.warn_latency is not None and latency_ms / 1000 > self.warn_latency:
            took = seconds(latency_ms / 1000)
            return self._reading(State.WARN, f"slow: {status_text} in {took} (warn above {seconds(self.warn_latency)})",
                                 latency_ms, details)
        # the latency has its own column: keeping it out of the reason keeps the row still between polls
        fields = ", ".join(f"{path} {value}" for path, value in self.expect_json.items())
        reason = status_text + (f", {fields}" if fields else "")
        return self._reading(State.OK, reason, latency_ms, details)
    def _check_json(self, body: bytes, complete: bool, details: list[tuple[str, str]]) -> str:
        """What is wrong with the JSON fields, or "" when they all match (their values go into ``details``)."""
        if not complete:
            return f"response is over {MAX_BODY // (1024 * 1024)} MB; JSON fields not checked"
        try:
            document = json.loads(body)
        except ValueError as exc:
            start = body[:40].decode("utf-8", errors="replace")
            return f"response is not JSON: {exc} (body starts {start!r})"
        for path, expected in self.expect_json.items():
            try:
                actual = json_text(json_field(document, path))
            except KeyError:
                return f"field {path} missing in response"
            details.append((path, one_line(actual, 60)))
            if not same_value(actual, expected):
                return f"{path} is '{one_line(actual, 80)}' (expected '{expected}')"
        return ""

    def _reading(self, state: State, reason: str, latency_ms: float | None = None,
                 details: list[tuple[str, str]] | tuple[()] = ()) -> CheckReading:
        return CheckReading(key=self.name, source=self.name, state=state, reason=one_line(reason), ts=self.clock(),
                            kind="http", target=hide(self.url), latency_ms=latency_ms, details=tuple(details))
