"""supervisord's XML-RPC endpoint, over HTTP (basic auth) or a unix socket, with the standard library only.

Every call is blocking (run it in a thread) and bounded by a socket timeout. Problems reaching supervisord
become ``PollFailed`` with a reason; ``xmlrpc.client.Fault`` (supervisord said no) is left to the caller.
"""

from __future__ import annotations

import http.client
import re
import socket
import xmlrpc.client
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from xml.parsers.expat import ExpatError

from ..model import State
from .service_base import PollFailed
from .text import connect_error_reason, os_error_text, seconds

# supervisor.xmlrpc.Faults
BAD_NAME = 10
ABNORMAL_TERMINATION = 40
SPAWN_ERROR = 50
ALREADY_STARTED = 60
NOT_RUNNING = 70


# supervisord writes a program's output into its XML as it is, but XML 1.0 cannot hold most control
# characters (ESC of a colour code): expat rejects the whole answer. They are sheltered in private-use
# characters for the parse and put back after, so a log with colours reads like any other.
_XML_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHELTERED = re.compile("[\ue000-\ue01f]")


def _shelter(match: re.Match[bytes]) -> bytes:
    return chr(0xE000 + match.group()[0]).encode("utf-8")


def _restore(value: Any) -> Any:
    if isinstance(value, str):
        return _SHELTERED.sub(lambda m: chr(ord(m.group()) - 0xE000), value)
    if isinstance(value, (list, tuple)):
        return type(value)(_restore(item) for item in value)
    if isinstance(value, dict):
        return {key: _restore(item) for key, item in value.items()}
    return value


class ControlCharactersSurvive:
    """Mixed into the transports: ``parse_response`` as the standard library's, control characters kept."""

    def parse_response(self, response: http.client.HTTPResponse) -> Any:
        stream: Any = response
        if response.getheader("Content-Encoding", "") == "gzip":
            stream = xmlrpc.client.GzipDecodedResponse(response)
        data = stream.read()
        if stream is not response:
            stream.close()
        parser, unmarshaller = self.getparser()  # type: ignore[attr-defined]
        parser.feed(_XML_FORBIDDEN.sub(_shelter, data))
        parser.close()
        return _restore(unmarshaller.close())


class UnixStreamHTTPConnection(http.client.HTTPConnection):
    """HTTP over an AF_UNIX stream socket (``[unix_http_server] file=...``)."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class UnixStreamTransport(ControlCharactersSurvive, xmlrpc.client.Transport):
    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        _, self._extra_headers, _ = self.get_host_info(host)  # the Authorization header, from user:pw@ in the URL
        self._connection = host, UnixStreamHTTPConnection(self.socket_path, self.timeout)
        return self._connection[1]


class TimeoutTransport(ControlCharactersSurvive, xmlrpc.client.Transport):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = self.timeout  # not connected yet: connect() uses it
        return connection


class TimeoutSafeTransport(ControlCharactersSurvive, xmlrpc.client.SafeTransport):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = self.timeout
        return connection


@dataclass(frozen=True)
class Endpoint:
    """Where supervisord listens, and how to authenticate; ``shown`` never carries the password."""

    scheme: str  # http, https or unix
    address: str  # host:port, or the socket's path
    path: str
    username: str
    password: str

    @classmethod
    def parse(cls, url: str, username: str | None, password: str | None) -> Endpoint:
        if url.startswith("unix://"):
            if not url[len("unix://"):].startswith("/"):
                raise ValueError(f"url {url!r}: a unix socket URL needs an absolute path, e.g. "
                                 "unix:///run/supervisor.sock")
            return cls("unix", url[len("unix://"):], "/RPC2", username or "", password or "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url {url!r} is not http://HOST:PORT/RPC2 nor unix:///path/to/supervisor.sock")
        address = parts.netloc.rpartition("@")[2]
        return cls(parts.scheme, address, parts.path if parts.path not in ("", "/") else "/RPC2",
                   username if username is not None else unquote(parts.username or ""),
                   password if password is not None else unquote(parts.password or ""))

    @property
    def shown(self) -> str:
        return f"unix://{self.address}" if self.scheme == "unix" else f"{self.scheme}://{self.address}{self.path}"

    def proxy(self, timeout: float) -> xmlrpc.client.ServerProxy:
        auth = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@" if self.username else ""
        if self.scheme == "unix":
            return xmlrpc.client.ServerProxy(f"http://{auth}localhost{self.path}",
                                             transport=UnixStreamTransport(self.address, timeout))
        transport = TimeoutSafeTransport(timeout) if self.scheme == "https" else TimeoutTransport(timeout)
        return xmlrpc.client.ServerProxy(f"{self.scheme}://{auth}{self.address}{self.path}", transport=transport)

    def call(self, timeout: float, method: str, *args: Any) -> Any:
        """``supervisor.<method>(*args)``; raises Fault, or PollFailed when supervisord cannot be asked."""
        try:
            with self.proxy(timeout) as proxy:
                return getattr(proxy.supervisor, method)(*args)
        except xmlrpc.client.Fault:
            raise
        except (OSError, xmlrpc.client.ProtocolError, xmlrpc.client.ResponseError, ExpatError,
                http.client.HTTPException) as exc:
            raise PollFailed(*self.problem(exc, timeout)) from exc  # the cause tells a log reader what to skip

    def problem(self, exc: BaseException, timeout: float) -> tuple[State, str]:
        if isinstance(exc, xmlrpc.client.ProtocolError):
            if exc.errcode == 401:
                hint = "" if self.username else " (none given: set username and password)"
                return State.UNKNOWN, f"supervisord refused the credentials{hint}"
            return State.UNKNOWN, f"{self.shown} answered HTTP {exc.errcode} {exc.errmsg} — is it supervisord's RPC URL?"
        if isinstance(exc, (xmlrpc.client.ResponseError, ExpatError, http.client.HTTPException)):
            return State.UNKNOWN, f"{self.shown} does not speak supervisord's XML-RPC ({type(exc).__name__})"
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return State.UNKNOWN, f"supervisord at {self.shown} gave no answer within {seconds(timeout)}"
        if self.scheme != "unix":
            host, _, port = self.address.rpartition(":")
            reason = connect_error_reason(exc, host or self.address, port)
            return State.CRITICAL, reason.replace("is the service running?", "is supervisord running?")
        if isinstance(exc, FileNotFoundError):
            return State.CRITICAL, f"no socket at {self.address} — is supervisord running?"
        if isinstance(exc, ConnectionRefusedError):
            return State.CRITICAL, f"nothing listens on {self.address} — is supervisord running?"
        if isinstance(exc, PermissionError):
            return State.UNKNOWN, (f"cannot open {self.address}: permission denied — run lakedeck as a user "
                                   "allowed by [unix_http_server] chown/chmod")
        return State.CRITICAL, f"cannot connect to {self.address}: {os_error_text(exc)}"
