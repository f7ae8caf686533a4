"""A lean HTTP/1.1 client for health checks: keep-alive connections over asyncio streams.

Measured here (bench/RESULTS.md): httpx spends ~3 ms of CPU per request, so 200 checks every 2 s
cost a third of a core, and its single pool serialises 200 concurrent requests. A health check needs
one GET or HEAD, a status, a few headers and a small body: this does that and nothing more (no
redirects, no proxies, no compression, no HTTP/2).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_HEADERS = 100
MAX_IDLE_PER_ORIGIN = 512
_NO_BODY_METHODS = {"HEAD"}


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as expected."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def origin(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """The parts of an http(s) URL; ``ValueError`` says what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"scheme {parts.scheme or 'missing'!r} is not http or https")
    if not parts.hostname:
        raise ValueError("no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)  # .port raises ValueError when bad
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path)


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    complete: bool = True  # False when the body was longer than the limit and was cut


def tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """Loading the system CA bundle takes 30–50 ms: build once per setting, in a thread."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


def encode_request(method: str, target: Target, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.origin}", "User-Agent: lakedeck",
             "Accept: */*"]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n\0") or ":" in name:
            raise ValueError(f"header {name!r} has a line break or colon in it")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace") + body


async def read_response(reader: asyncio.StreamReader, method: str, max_body: int) -> tuple[Response, bool]:
    """One response from ``reader``; the flag says whether the connection can carry another request."""
    while True:
        version, status, reason = _status_line(await reader.readuntil(b"\r\n"))
        headers = await _headers(reader)
        if not 100 <= status < 200 or status == 101:
            break
    response = Response(status, reason, headers)
    connection = headers.get("connection", "").lower()
    reusable = (version == "HTTP/1.1" and connection != "close") or connection == "keep-alive"
    if method in _NO_BODY_METHODS or status in (204, 304) or 100 <= status < 200:
        return response, reusable
    if "chunked" in headers.get("transfer-encoding", "").lower():
        response.body, response.complete = await _chunked(reader, max_body)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProtocolError(f"bad Content-Length {headers['content-length']!r}") from None
        response.body = await reader.readexactly(min(length, max_body))
        response.complete = length <= max_body
    else:
        response.body = await reader.read(max_body)
        response.complete, reusable = reader.at_eof(), False
    return response, reusable and response.complete


def _status_line(line: bytes) -> tuple[str, int, str]:
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP answer: {line[:60]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProtocolError(f"bad header line {line[:60]!r}")
        headers[name.strip().lower()] = value.strip()
    raise ProtocolError(f"more than {MAX_HEADERS} headers")


async def _chunked(reader: asyncio.StreamReader, max_body: int) -> tuple[bytes, bool]:
    chunks, size = [], 0
    while True:
        try:
            length = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        except ValueError:
            raise ProtocolError("bad chunk size") from None
        if length == 0:
            await _headers(reader)  # trailers, then the blank line
            return b"".join(chunks), True
        if size + length > max_body:
            chunks.append(await reader.readexactly(max_body - size))
            return b"".join(chunks), False
        chunks.append(await reader.readexactly(length))
        size += length
        await reader.readexactly(2)


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Pool:
    """Idle keep-alive connections by origin, for one event loop."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int, int], list[Connection]] = {}

    async def fetch(self, method: str, target: Target, headers: dict[str, str], tls: ssl.SSLContext | None,
                    max_body: int, body: bytes = b"") -> Response:
        request = encode_request(method, target, headers, body)
        key = (target.scheme, target.host, target.port, id(tls))
        idle = self._idle.setdefault(key, [])
        while idle:
            connection = idle.pop()
            if connection[0].at_eof():
                connection[1].close()
                continue
            try:
                return await self._exchange(connection, request, method, max_body, idle)
            except (ConnectionError, asyncio.IncompleteReadError):
                continue  # the server closed an idle connection just now: try a fresh one
        use_tls = tls if target.scheme == "https" else None
        connection = await asyncio.open_connection(target.host, target.port, ssl=use_tls,
                                                   server_hostname=target.host if use_tls else None)
        return await self._exchange(connection, request, method, max_body, idle)

    @staticmethod
    async def _exchange(connection: Connection, request: bytes, method: str, max_body: int,
                        idle: list[Connection]) -> Response:
        reader, writer = connection
        reusable = False
        try:
            writer.write(request)
            await writer.drain()
            response, reusable = await read_response(reader, method, max_body)
            return response
        finally:
            # a connection cut mid-answer (timeout, error) cannot be reused: only a clean one goes back
            if reusable and len(idle) < MAX_IDLE_PER_ORIGIN:
                idle.append(connection)
            else:
                writer.close()

    def close(self) -> None:
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()
