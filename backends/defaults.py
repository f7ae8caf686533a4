"""The built-in default: watch this machine when no config file is named or found."""

from __future__ import annotations

import glob
import os
from typing import Any

import yaml

from .config import Config, parse

LOG_GLOBS = ("/var/log/*.log", "/var/log/syslog", "/var/log/messages", "/var/log/*/*.log")
MAX_LOGS = 6
MAX_SERVICES = 24


def listening_services() -> list[dict[str, Any]]:
    """A TCP check for every port something listens on here, named after the process that owns it."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return []
    found: dict[int, dict[str, Any]] = {}
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        port = conn.laddr.port
        if port in found:
            continue
        host = conn.laddr.ip
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        found[port] = {"name": f"{_owner(conn.pid)}:{port}", "kind": "tcp", "host": host, "port": port}
    return [found[port] for port in sorted(found)][:MAX_SERVICES]


def _owner(pid: int | None) -> str:
    import psutil

    if not pid:
        return "tcp"
    try:
        return psutil.Process(pid).name()
    except (psutil.Error, OSError):
        return "tcp"


def readable_logs() -> list[dict[str, Any]]:
    """The most recently written, readable, non-empty logs under /var/log."""
    paths = {p for pattern in LOG_GLOBS for p in glob.glob(pattern)}
    candidates = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        if stat.st_size > 0 and os.path.isfile(path) and os.access(path, os.R_OK):
            candidates.append((stat.st_mtime, path))
    newest = [path for _, path in sorted(candidates, reverse=True)[:MAX_LOGS]]
    names: set[str] = set()
    logs = []
    for path in sorted(newest):
        name = os.path.relpath(path, "/var/log")
        if name not in names:
            names.add(name)
            logs.append({"name": name, "kind": "file", "path": path})
    return logs


def default_raw() -> dict[str, Any]:
    return {
        "hosts": [{"name": "local", "kind": "local"}],
        "services": listening_services(),
        "logs": readable_logs(),
    }


def default_config() -> Config:
    """The default as a Config, made through the same schema as a file so that it obeys the same rules."""
    text = yaml.safe_dump(default_raw(), sort_keys=False)
    return parse(text, "<built-in default>", environ={})
