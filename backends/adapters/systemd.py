"""A systemd unit: its state from ``systemctl show``, and start/stop/restart/reload through systemctl."""

from __future__ import annotations

from typing import Any

from ..actions import Action, ActionResult, Emit
from ..config import SourceSpec
from ..model import CheckReading, State
from .service_base import Captured, PollFailed, ServiceSource, plural

# LoadState is asked for too: without it a unit that does not exist looks merely "inactive (dead)".
PROPERTIES = ("LoadState", "ActiveState", "SubState", "MainPID", "ExecMainStartTimestamp", "NRestarts", "Result",
              "Description")
VERBS = (("start", "Start", "starting"), ("stop", "Stop", "stopping"), ("restart", "Restart", "restarting"),
         ("reload", "Reload", "reloading"))
NO_SYSTEMD = "has not been booted with systemd"
SUDO_WANTS_PASSWORD = "a password is required"
SUDO_PASSWORD_ERROR = ("sudo needs a password here: allow it with NOPASSWD for systemctl, "
                       "or run lakedeck as that user")
NO_SYSTEMD_REASON = "systemctl: System has not been booted with systemd (no systemd here)"


def parse_show(text: str) -> dict[str, str]:
    """``systemctl show`` prints ``Key=value`` lines; a value may itself contain ``=``."""
    properties: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            properties[key.strip()] = value.strip()
    return properties


class SystemdUnit(ServiceSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.unit: str = options["unit"]
        self.user: bool = options["user"]
        self.sudo: bool = options["sudo"]

    def describe(self) -> str:
        return f"{self.unit} (user)" if self.user else self.unit

    def log_spec(self) -> SourceSpec:
        return self.log_spec_of("journald", unit=self.unit, user=self.user)

    def systemctl(self, *args: str) -> list[str]:
        return ["systemctl", *(["--user"] if self.user else []), *args]

    def journal_hint(self) -> str:
        return f"journalctl {'--user ' if self.user else ''}-u {self.unit}"

    async def check(self) -> CheckReading:
        argv = self.systemctl("show", self.unit, "--property=" + ",".join(PROPERTIES))
        captured = await self.capture(argv, what="systemctl show")
        if captured.code != 0:
            raise PollFailed(State.UNKNOWN, self._failure(captured))
        return self._verdict(parse_show(captured.stdout))

    def _failure(self, captured: Captured) -> str:
        if NO_SYSTEMD in captured.stderr + captured.stdout:
            return NO_SYSTEMD_REASON
        line = captured.first_line() or "no output"
        if self.user and "Failed to connect to bus" in line:
            return (f"systemctl --user cannot reach the user's systemd ({line}) — run lakedeck in that user's "
                    "login session (XDG_RUNTIME_DIR set)")
        return f"systemctl show failed: {line} (exit {captured.code})"

    def _verdict(self, props: dict[str, str]) -> CheckReading:
        load, active, sub = props.get("LoadState", ""), props.get("ActiveState", ""), props.get("SubState", "")
        pid, since = props.get("MainPID", "0"), props.get("ExecMainStartTimestamp", "")
        result, restarts = props.get("Result", ""), int(props.get("NRestarts", "0") or 0)
        details = tuple((label, value) for label, value in (
            ("state", f"{active}/{sub}" if active else ""), ("pid", pid if pid not in ("", "0") else ""),
            ("since", since), ("restarts", str(restarts)), ("result", result), ("load", load),
            ("description", props.get("Description", ""))) if value)
        if load == "not-found":
            where = "user units" if self.user else "system units"
            return self.reading(State.UNKNOWN, f"unit {self.unit} not found ({where}) — check the name with "
                                               f"systemctl{' --user' if self.user else ''} list-unit-files", details)
        if load == "masked":
            return self.reading(State.CRITICAL, f"masked — systemctl unmask {self.unit} to allow it to start", details)
        if load and load != "loaded":
            return self.reading(State.CRITICAL, f"unit file cannot be loaded (LoadState={load}) — see "
                                                f"systemctl status {self.unit}", details)
        state_text = f"{active} ({sub})" if sub else active
        if active == "active":
            pieces = [state_text]
            if pid not in ("", "0"):
                pieces[0] += f", pid {pid}"
            if since:
                pieces[0] += f" since {since}"
            if sub != "exited":
                pieces.append(plural(restarts, "restart"))
            return self.reading(State.OK, ", ".join(pieces), details)
        if active == "failed":
            return self.reading(State.CRITICAL, f"failed (Result={result or 'unknown'}) — see {self.journal_hint()}",
                                details)
        if active == "inactive":
            return self.reading(State.CRITICAL, state_text, details)
        if active == "activating" and restarts:
            return self.reading(State.WARN, f"{state_text}, {plural(restarts, 'restart')} (Result={result}) — "
                                            f"see {self.journal_hint()}", details)
        if active:  # activating, reloading, deactivating, maintenance, refreshing: on its way somewhere
            return self.reading(State.WARN, state_text, details)
        return self.reading(State.UNKNOWN, f"systemctl show gave no ActiveState for {self.unit}", details)

    def actions(self) -> list[Action]:
        prefix = ["sudo", "-n"] if self.sudo else []
        return [self.action(verb, title, [*prefix, *self.systemctl(verb, self.unit)], expect)
                for verb, title, expect in VERBS]

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        result = await super().run(action, emit)
        if result.ok:
            return result
        output = "\n".join(result.output)
        if action.argv[:1] == ("sudo",) and SUDO_WANTS_PASSWORD in output:
            result.error = SUDO_PASSWORD_ERROR
        elif NO_SYSTEMD in output:
            result.error = NO_SYSTEMD_REASON
        else:
            return result
        emit(result.error)
        return result
