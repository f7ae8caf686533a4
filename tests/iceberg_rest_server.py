"""A stand-in Iceberg REST catalog on loopback: the routes and JSON shapes of the Iceberg REST Catalog API
(apache/iceberg, ``open-api/rest-catalog-open-api.yaml``) over a REAL pyiceberg ``SqlCatalog`` on SQLite.

No Iceberg REST server can run here (they are Java or Docker). This one implements the subset that pyiceberg
0.12's ``RestCatalog`` uses for what lakedeck does, and nothing is canned: every answer comes from the SQL
catalog, and every commit is applied to it.

- ``GET /v1/config`` -> CatalogConfig: ``defaults``, ``overrides`` (``prefix`` when the server has one) and the
  ``endpoints`` implemented here, so pyiceberg refuses any other route before sending it. The ``warehouse``
  query is recorded, not interpreted (one SQL catalog serves every warehouse).
- ``GET /v1/{prefix}/namespaces[?parent=a%1Fb]`` -> ListNamespacesResponse.
- ``GET /v1/{prefix}/namespaces/{namespace}/tables`` -> ListTablesResponse (404 NoSuchNamespaceException).
- ``GET /v1/{prefix}/namespaces/{namespace}/tables/{table}`` -> LoadTableResult: ``metadata-location``, the
  table's real ``metadata`` as its metadata file holds it, ``config`` (404 NoSuchTableException).
- ``POST /v1/{prefix}/namespaces/{namespace}/tables/{table}`` with a CommitTableRequest -> CommitTableResponse.
  The body is parsed with pyiceberg's own ``CommitTableRequest`` model and applied with the SQL catalog's
  ``commit_table``: requirements are checked there (a failed one is 409 CommitFailedException), and a new
  metadata file is written and pointed at, as a real catalog does. A commit on a missing table is 404, not a
  create; a body that does not parse, or names another table than the path, is 400.

Namespaces in paths are split on the unit separator 0x1F (``%1F``), the spec's default ``namespace-separator``.
Paging (``pageToken`` / ``pageSize``) is not supported, which the spec allows: every list comes in one page,
without ``next-page-token``. ``snapshots=refs`` on a load is ignored (every snapshot is returned).

Auth: given a ``token``, every route (``/v1/config`` too) requires ``Authorization: Bearer <token>`` and
answers 401 otherwise, in the spec's error shape (``{"error": {"message", "type", "code"}}``, its
UnauthorizedResponse example). Other methods answer 406 UnsupportedOperationException; unknown paths 404.

Every request is recorded (method, path, query, Authorization header, JSON body) for the tests to inspect.
Catalog calls are serialised by a lock: the SQL catalog is shared with the test's own thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from helpers import LoopbackServer

SEPARATOR = "\x1f"  # the spec's default namespace separator, %1F in a URL
ENDPOINTS = [  # what /v1/config advertises: exactly the routes below
    "GET /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
]


class RestError(Exception):
    """An error answer in the spec's IcebergErrorResponse shape."""

    def __init__(self, code: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.code, self.type, self.message = code, type_, message

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any = field(default=None, repr=False)


class IcebergRestStandIn:
    """Serve ``catalog`` (a pyiceberg SqlCatalog) as an Iceberg REST catalog on 127.0.0.1; ``url`` is its URI."""

    def __init__(self, catalog: Any, *, token: str | None = None, prefix: str = "") -> None:
        self.catalog = catalog
        self.token = token
        self.prefix = prefix
        self.requests: list[Request] = []
        self._lock = threading.Lock()  # the requests list, and every call into the SQL catalog
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = standin.answer(self.command, self.path, self.headers.get("Authorization"), raw)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = do_PATCH = _serve

        self._http = LoopbackServer(Handler)
        self.url = self._http.root

    # -- dispatch ----------------------------------------------------------------------------------

    def answer(self, method: str, raw_path: str, authorization: str | None, raw: bytes) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        query = parse_qs(url.query)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            self.requests.append(Request(method, url.path, query, authorization, body))
        try:
            if self.token is not None and authorization != f"Bearer {self.token}":
                raise RestError(401, "NotAuthorizedException", "Not authorized to make this request")
            return 200, self.route(method, url.path, query, raw)
        except RestError as exc:
            return exc.code, exc.body()

    def route(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Any:
        if path == "/v1/config":
            self._only(method, "GET")
            return self.config()
        parts = path.split("/")[1:]  # the raw segments: a %2F inside a name is no separator
        if parts[:1] != ["v1"]:
            raise RestError(404, "NotFoundException", f"no route {path}")
        parts = parts[1:]
        if self.prefix:
            if parts[:1] != [self.prefix]:
                raise RestError(404, "NotFoundException", f"no catalog {unquote(parts[0]) if parts else ''!r}")
            parts = parts[1:]
        if parts == ["namespaces"]:
            self._only(method, "GET")
            return self.list_namespaces(query)
        if len(parts) == 3 and parts[0] == "namespaces" and parts[2] == "tables":
            self._only(method, "GET")
            return self.list_tables(self._namespace(parts[1]))
        if len(parts) == 4 and parts[0] == "namespaces" and parts[2] == "tables":
            namespace, table = self._namespace(parts[1]), unquote(parts[3])
            self._only(method, "GET", "POST")
            return self.load_table(namespace, table) if method == "GET" else self.commit(namespace, table, raw)
        raise RestError(404, "NotFoundException", f"no route {path}")

    @staticmethod
    def _only(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise RestError(406, "UnsupportedOperationException", f"the server does not support {method} here")

    @staticmethod
    def _namespace(segment: str) -> tuple[str, ...]:
        return tuple(unquote(segment).split(SEPARATOR))

    # -- the routes --------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        overrides = {"prefix": self.prefix} if self.prefix else {}
        return {"defaults": {}, "overrides": overrides, "endpoints": ENDPOINTS}

    def list_namespaces(self, query: dict[str, list[str]]) -> dict[str, Any]:
        from pyiceberg.exceptions import NoSuchNamespaceError

        parent = query.get("parent", [""])[0]
        try:
            with self._lock:
                found = self.catalog.list_namespaces(tuple(parent.split(SEPARATOR)) if parent else ())
        except NoSuchNamespaceError:
            raise RestError(404, "NoSuchNamespaceException", f"Namespace does not exist: {parent}") from None
        return {"namespaces": [list(ns) for ns in found]}

    def list_tables(self, namespace: tuple[str, ...]) -> dict[str, Any]:
        from pyiceberg.exceptions import NoSuchNamespaceError

        try:
            with self._lock:
                found = self.catalog.list_tables(namespace)
        except NoSuchNamespaceError:
            raise RestError(404, "NoSuchNamespaceException",
                            f"Namespace does not exist: {'.'.join(namespace)}") from None
        return {"identifiers": [{"namespace": list(ident[:-1]), "name": ident[-1]} for ident in found]}

    def _load(self, namespace: tuple[str, ...], table: str) -> Any:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        try:
            return self.catalog.load_table((*namespace, table))
        except (NoSuchTableError, NoSuchNamespaceError):
            raise RestError(404, "NoSuchTableException",
                            f"Table does not exist: {'.'.join((*namespace, table))}") from None

    def load_table(self, namespace: tuple[str, ...], table: str) -> dict[str, Any]:
        with self._lock:
            loaded = self._load(namespace, table)
        metadata = json.loads(loaded.metadata.model_dump_json())  # as pyiceberg writes it to the metadata file
        return {"metadata-location": loaded.metadata_location, "metadata": metadata, "config": {}}

    def commit(self, namespace: tuple[str, ...], table: str, raw: bytes) -> dict[str, Any]:
        from pydantic import ValidationError
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.table import CommitTableRequest

        try:
            request = CommitTableRequest.model_validate_json(raw)
        except ValidationError as exc:
            raise RestError(400, "BadRequestException", f"Malformed request: {exc.errors()[0]['msg']}") from None
        named = (*request.identifier.namespace.root, request.identifier.name)
        if named != (*namespace, table):
            raise RestError(400, "BadRequestException",
                            f"the body names {'.'.join(named)}, the path {'.'.join((*namespace, table))}")
        with self._lock:
            current = self._load(namespace, table)
            try:
                response = self.catalog.commit_table(current, request.requirements, request.updates)
            except CommitFailedException as exc:
                raise RestError(409, "CommitFailedException", str(exc)) from None
            except ValueError as exc:  # an update the metadata cannot take (an unknown snapshot, ...)
                raise RestError(400, "ValidationException", str(exc)) from None
        return json.loads(response.model_dump_json())

    # -- for the tests -----------------------------------------------------------------------------

    def sent(self, method: str | None = None, ending: str = "") -> list[Request]:
        """The requests received, optionally only those of ``method`` whose path ends with ``ending``."""
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method) and r.path.endswith(ending)]

    def start(self) -> IcebergRestStandIn:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()


@pytest.fixture
def iceberg_rest(iceberg_lake) -> Iterator[IcebergRestStandIn]:
    """The stand-in over the module's SQL catalog (tests/conftest_iceberg.py), with a token and a prefix."""
    server = IcebergRestStandIn(iceberg_lake.catalog, token="s3cret-token", prefix="lake").start()
    try:
        yield server
    finally:
        server.stop()
