"""An HTTP endpoint: status code, optional JSON fields, latency."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..model import CheckReading, Reading, State
from .base import Source
from .text import connect_error_reason, one_line, os_error_text, seconds

MAX_BODY = 1024 * 1024
MAX_CONNECTIONS = 1000


@dataclass
class _SharedClient:
    client: httpx.AsyncClient
    users: int = 0


# One client (one connection pool) per event loop and TLS setting, shared by every HttpCheck:
# 200 checks then reuse keep-alive connections instead of each building its own pool.
ClientKey = tuple[Any, bool, str | None]  # (event loop, verify_tls, ca_file)
_CLIENTS: dict[ClientKey, _SharedClient] = {}
_BUILDING: dict[ClientKey, asyncio.Future[httpx.AsyncClient]] = {}


def _new_client(verify_tls: bool, ca_file: str | None) -> httpx.AsyncClient:
    verify: bool | ssl.SSLContext = verify_tls
    if verify_tls and ca_file:
        verify = ssl.create_default_context(cafile=ca_file)
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS // 2)
    return httpx.AsyncClient(verify=verify, limits=limits)


async def _acquire_client(verify_tls: bool, ca_file: str | None) -> tuple[ClientKey, httpx.AsyncClient]:
    loop = asyncio.get_running_loop()
    for stale in [k for k in _CLIENTS if k[0].is_closed()]:
        del _CLIENTS[stale]  # its loop is gone; nothing can close it any more
    key = (loop, verify_tls, ca_file)
    if key not in _CLIENTS:
        building = _BUILDING.get(key)
        if building is None:
            # a verifying client loads the CA bundle (30-50 ms): in a thread, once, whoever asks first
            building = _BUILDING[key] = asyncio.ensure_future(asyncio.to_thread(_new_client, verify_tls, ca_file))
        try:
            await asyncio.shield(building)
        finally:
            if building.done() and _BUILDING.get(key) is building:
                del _BUILDING[key]  # a failure (say, a missing CA file) is retried at the next poll
                if not building.cancelled() and building.exception() is None:
                    _CLIENTS[key] = _SharedClient(building.result())
    shared = _CLIENTS[key]
    shared.users += 1
    return key, shared.client


async def _release_client(key: ClientKey) -> None:
    shared = _CLIENTS.get(key)
    if shared is None:
        return
    shared.users -= 1
    if shared.users <= 0:
        del _CLIENTS[key]
        if key[0] is asyncio.get_running_loop():
            await shared.client.aclose()


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
        parts = urlsplit(self.url)
        self.host = parts.hostname or "?"
        try:
            self.port: int | str = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            self.port = "?"
        self._client_key: ClientKey | None = None
        self._client: httpx.AsyncClient | None = None

    def describe(self) -> str:
        return self.url if self.method == "GET" else f"{self.method} {self.url}"

    async def close(self) -> None:
        if self._client_key is not None:
            key, self._client_key, self._client = self._client_key, None, None
            await _release_client(key)

    async def poll(self) -> list[Reading]:
        limit = self.timeout * 0.9
        deadline = time.perf_counter() + limit
        if self._client is None:
            try:
                self._client_key, self._client = await _acquire_client(self.verify_tls, self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                return [self._reading(State.UNKNOWN, f"cannot load CA file {self.ca_file}: {os_error_text(exc)}")]
        started = time.perf_counter()
        left = max(0.01, deadline - started)
        try:
            response, body, complete = await asyncio.wait_for(self._fetch(self._client, left), left)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            return [self._reading(State.CRITICAL, f"no answer within {seconds(limit)}")]
        except httpx.ConnectError as exc:
            return [self._reading(State.CRITICAL, connect_error_reason(exc, self.host, self.port))]
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return [self._reading(State.UNKNOWN, f"bad URL {self.url}: {exc} (expected http:// or https://)")]
        except httpx.RemoteProtocolError as exc:
            return [self._reading(State.CRITICAL, f"broken HTTP answer from {self.host}:{self.port}: {exc}")]
        except httpx.HTTPError as exc:
            return [self._reading(State.CRITICAL, f"request failed: {type(exc).__name__}: {exc}")]
        latency_ms = (time.perf_counter() - started) * 1000
        return [self._judge(response, body, complete, latency_ms)]

    async def _fetch(self, client: httpx.AsyncClient, limit: float) -> tuple[httpx.Response, bytes, bool]:
        async with client.stream(self.method, self.url, headers=self.headers, timeout=limit) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY:
                    return response, b"".join(chunks)[:MAX_BODY], False
            return response, b"".join(chunks), True

    def _judge(self, response: httpx.Response, body: bytes, complete: bool, latency_ms: float) -> CheckReading:
        code = response.status_code
        status_text = f"HTTP {code} {response.reason_phrase}".rstrip()
        details: list[tuple[str, str]] = [("status", str(code))]
        wanted = self.expect_status
        if not (code in wanted if wanted is not None else 200 <= code < 300):
            expected = ", ".join(map(str, sorted(wanted))) if wanted is not None else "2xx"
            location = response.headers.get("location")
            moved = f" → {location}" if location and 300 <= code < 400 else ""
            return self._reading(State.CRITICAL, f"{status_text}{moved} (expected {expected})", latency_ms, details)
        if self.expect_json:
            problem = self._check_json(body, complete, details)
            if problem:
                return self._reading(State.CRITICAL, problem, latency_ms, details)
        took = seconds(latency_ms / 1000)
        if self.warn_latency is not None and latency_ms / 1000 > self.warn_latency:
            return self._reading(State.WARN, f"slow: {status_text} in {took} (warn above {seconds(self.warn_latency)})",
                                 latency_ms, details)
        fields = ", ".join(f"{path} {value}" for path, value in self.expect_json.items())
        reason = f"{status_text} in {took}" + (f", {fields}" if fields else "")
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
                            kind="http", target=self.url, latency_ms=latency_ms, details=tuple(details))
