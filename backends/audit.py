"""The audit log: every action requested, confirmed, cancelled, refused, failed or done, one JSON line each.

Appended, flushed and fsynced per entry, so that a crash or a power cut loses nothing already written.
Secrets (see ``redact``) are replaced by ``***`` before anything is written. A log that cannot be written
refuses the action: ``AuditUnwritable`` says where and why in one line.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .actions import Action, ActionRefused, ActionResult
from .redact import Redactor

OUTPUT_LINES = 20


class AuditUnwritable(ActionRefused):
    """The audit log cannot be written: no action runs without it."""

    def __init__(self, path: Path, exc: OSError) -> None:
        reason = exc.strerror or str(exc) or type(exc).__name__
        super().__init__(f"cannot write the audit log at {path}: {reason}; no action runs without it")


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


@dataclass
class AuditLog:
    path: Path
    secrets: set[str] = field(default_factory=set)
    environ: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        self.redactor = Redactor(self.secrets)

    def redact(self, text: str) -> str:
        return self.redactor.text(text)

    def command(self, action: Action) -> str:
        """What ``action`` runs, as shown before it runs and written here: its secrets as ``***``."""
        return self.redactor.command(action)

    def entry(self, event: str, action: Action, result: ActionResult | None = None, reason: str = "",
              now: float | None = None) -> dict[str, Any]:
        redact = self.redactor.for_action(action).text
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now if now is not None else time.time())),
            **who(self.environ),
            "event": event,
            "target": action.target,
            "action": action.id,
            "tier": action.tier.label,
            "command": self.command(action),
        }
        if reason:
            record["reason"] = redact(reason)
        if result is not None:
            record["exit_code"] = result.exit_code
            record["duration"] = round(result.duration, 3)
            record["output"] = [redact(line) for line in result.output[-OUTPUT_LINES:]]
            if result.error:
                record["error"] = redact(result.error)
        return record

    def append(self, record: dict[str, Any]) -> None:
        """One line, flushed and fsynced before returning; AuditUnwritable when it cannot be. Blocking: call it
        from a thread (or where a few milliseconds do not matter: on the way out)."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            if not os.path.lexists(self.path.parent):  # a file in its place: the open below says "Not a directory"
                self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise AuditUnwritable(self.path, exc) from None

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
