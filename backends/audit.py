"""The audit log: every action requested, confirmed, cancelled, refused, failed or done, one JSON line each.

Appended, flushed and fsynced per entry, so that a crash or a power cut loses nothing already written.
Secrets named in the config are replaced by ``***`` before anything is written.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from .actions import Action, ActionResult

OUTPUT_LINES = 20
SECRET_OPTION_NAMES = ("password", "token", "secret", "api_key", "apikey")


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    state = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(state) / "lakedeck" / "audit.jsonl"


def who(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The person behind the keyboard: the sudo caller first, and where their SSH session comes from."""
    environ = os.environ if environ is None else environ
    ssh = environ.get("SSH_CLIENT", "").split()
    return {
        "user": environ.get("SUDO_USER") or environ.get("USER") or environ.get("LOGNAME") or _login_name(),
        "ssh_origin": ssh[0] if ssh else "",
        "host": socket.gethostname(),
    }


def _login_name() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def secrets_in(options: Iterable[Mapping[str, Any]]) -> set[str]:
    """Values the log must never show: passwords and tokens, header values (Authorization...), and the
    secret part of URLs with credentials."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, "headers" if key == "headers" else k.lower())  # every header value is a secret
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and value:
            if "://" in value and "@" in value:
                password = urlsplit(value).password
                if password:
                    found.add(password)
            if key == "headers" or any(name in key for name in SECRET_OPTION_NAMES):
                found.add(value)
                if " " in value:  # "Bearer abc": the token alone must go too
                    found.add(value.split(" ", 1)[1])

    for option in options:
        walk(option)
    return {s for s in found if len(s) >= 3}


@dataclass
class AuditLog:
    path: Path
    secrets: set[str] = field(default_factory=set)
    environ: Mapping[str, str] | None = None

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def entry(self, event: str, action: Action, result: ActionResult | None = None, reason: str = "",
              now: float | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now if now is not None else time.time())),
            **who(self.environ),
            "event": event,
            "target": action.target,
            "action": action.id,
            "tier": action.tier.label,
            "command": self.redact(action.describe()),
        }
        if reason:
            record["reason"] = self.redact(reason)
        if result is not None:
            record["exit_code"] = result.exit_code
            record["duration"] = round(result.duration, 3)
            record["output"] = [self.redact(line) for line in result.output[-OUTPUT_LINES:]]
            if result.error:
                record["error"] = self.redact(result.error)
        return record

    def append(self, record: dict[str, Any]) -> None:
        """One line, flushed and fsynced before returning. Blocking: call it from a thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, since: float | None = None, now: float | None = None) -> list[dict[str, Any]]:
        """Entries newer than ``since`` seconds ago (all when None); a damaged line is skipped, not fatal."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        cutoff = None
        if since is not None:
            cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((now or time.time()) - since))
        entries = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and (cutoff is None or str(record.get("time", "")) >= cutoff):
                entries.append(record)
        return entries
