"""A small JSON-over-HTTP client for the pipeline adapters (Airflow, a pipeline REST API, Marquez).

Every failure becomes ``ApiError`` with one line an operator can act on: refused, timed out, HTTP 403 with
the server's own words, an answer that is not JSON.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from .http_check import shared_tls_context
from .http_wire import Pool, ProtocolError, Target, parse_url
from .text import connect_error_reason, one_line, os_error_text, seconds

MAX_BODY = 16 * 1024 * 1024


class ApiError(Exception):
    """A request that did not give the JSON asked for; ``str()`` is the one-line reason."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


def segment(value: str) -> str:
    """One path segment, quoted: a run id has ``+`` and ``:``, a job name may have ``/``."""
    return quote(value, safe="")


def error_detail(body: bytes) -> str:
    """What a server said about an error: JSON ``detail``/``message``/``title``/``error``, else the text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        document = json.loads(text)
    except ValueError:
        return one_line(text, 160)
    if isinstance(document, dict):
        for key in ("detail", "message", "title", "error"):
            value = document.get(key)
            if value:
                return one_line(value if isinstance(value, str) else json.dumps(value), 160)
    return one_line(text, 160)


class JsonApi:
    """Requests to one base URL over a keep-alive pool; ``headers`` are sent with every request."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None, verify_tls: bool = True,
                 ca_file: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.target: Target = parse_url(self.base_url)  # ValueError when the URL is bad: the adapter says so
        self.headers = dict(headers or {})
        self.verify_tls = verify_tls
        self.ca_file = ca_file
        self._pool: Pool | None = None

    @property
    def where(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = f"?{urlencode(params, doseq=True)}" if params else ""
        return f"{self.base_url}{path}{query}"

    async def request(self, method: str, path: str, *, timeout: float, params: Mapping[str, Any] | None = None,
                      body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        """The decoded JSON answer (None for an empty one); ``ApiError`` for anything else."""
        target = parse_url(self.url(path, params))
        sent = {"Accept": "application/json", **self.headers, **(headers or {})}
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        tls: ssl.SSLContext | None = None
        what = f"{method} {path}"
        try:
            if target.scheme == "https":
                tls = await shared_tls_context(self.verify_tls, self.ca_file)
            if self._pool is None:
                self._pool = Pool()
            response = await asyncio.wait_for(self._pool.fetch(method, target, sent, tls, MAX_BODY, payload), timeout)
        except asyncio.TimeoutError:
            raise ApiError(f"no answer from {self.where} within {seconds(timeout)} ({what})") from None
        except (ProtocolError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            broken = "the connection closed mid-answer" if isinstance(exc, asyncio.IncompleteReadError) else exc
            raise ApiError(f"broken HTTP answer from {self.where}: {broken}") from None
        except (OSError, ssl.SSLError) as exc:
            if tls is None and target.scheme == "https" and self.ca_file:
                raise ApiError(f"cannot load CA file {self.ca_file}: {os_error_text(exc)}") from None
            raise ApiError(connect_error_reason(exc, target.host, target.port)) from None
        if response.status >= 400:
            detail = error_detail(response.body)
            raise ApiError(one_line(f"HTTP {response.status} from {what}" + (f": {detail}" if detail else "")),
                           response.status)
        if not response.complete:
            raise ApiError(f"the answer to {what} is over {MAX_BODY // (1024 * 1024)} MiB (cut)")
        if not response.body.strip():
            return None
        try:
            return json.loads(response.body)
        except ValueError:
            raise ApiError(f"the answer to {what} is not JSON: {one_line(response.body[:80].decode('utf-8', 'replace'))}") from None

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
