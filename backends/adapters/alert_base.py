"""What every source of alerts shares: one identity per alert, severity to state, and local acks."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Iterable, Mapping

from ..actions import Action, ActionResult, Emit, Tier, Transcript
from ..model import AlertReading, Reading, State
from ..text import one_line
from .base import Source

ACTIVE = ("pending", "firing", "silenced")
SEVERITY_ALIASES = {"page": "critical", "error": "critical", "high": "critical", "warn": "warning",
                    "medium": "warning", "low": "info", "none": "info", "notice": "info"}


def fingerprint(labels: Mapping[str, str]) -> str:
    """The same alert from Prometheus and from Alertmanager gets the same identity: a hash of its labels."""
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def alert_key(source: str, name: str, mark: str) -> str:
    """``am:DiskAlmostFull:6707f3e9``: readable in menus and `lakedeck action`, unique by the fingerprint."""
    return f"{source}:{name}:{mark[:8]}"


def severity_of(labels: Mapping[str, str], default: str = "warning") -> str:
    """info, warning or critical, from a ``severity`` label in any of the usual words."""
    word = str(labels.get("severity") or default).lower()
    word = SEVERITY_ALIASES.get(word, word)
    return word if word in ("info", "warning", "critical") else default


def alert_state(severity: str, status: str) -> State:
    """What an alert counts as: its severity while it fires, OK while pending, silenced or resolved."""
    if status != "firing":
        return State.OK
    return {"critical": State.CRITICAL, "warning": State.WARN}.get(severity, State.OK)


def labelled_alert(source: str, origin: str, labels: Mapping[str, Any], annotations: Mapping[str, Any], status: str,
                   since: float | None, now: float, amount: float | None = None,
                   held: tuple[str, ...] = ()) -> AlertReading:
    """An alert as Prometheus and Alertmanager describe one: labels, annotations and a status."""
    labels = {str(k): str(v) for k, v in labels.items()}
    severity = severity_of(labels)
    name = labels.get("alertname", "alert")
    target = labels.get("instance") or labels.get("job") or ""
    why = one_line(str(annotations.get("summary") or annotations.get("description") or ""), 160)
    mark = fingerprint(labels)
    held_note = f" (silenced by {len(held)})" if held else ""
    return AlertReading(
        key=alert_key(source, name, mark), source=source, state=alert_state(severity, status),
        reason=one_line(f"{severity} {name} {status}{held_note}" + (f" on {target}" if target else "")
                        + (f": {why}" if why else "")),
        ts=now, origin=origin, name=name, severity=severity, status=status, since=since, target=target, why=why,
        amount=amount, fingerprint=mark, labels=tuple(sorted(labels.items())), silenced_by=held)


class AlertSource(Source):
    """A source whose readings are alerts. An operator's ``ack`` is local: it marks the alert as seen
    (no bell, shown as acked) until the alert stops firing; it changes nothing on the server."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acked: set[str] = set()

    def failed(self, reason: str, state: State = State.UNKNOWN) -> list[Reading]:
        """A source that cannot be read is a red row in the Alerts pane: silence there is not "all clear"."""
        return [AlertReading(key=self.name, source=self.name, state=state, reason=reason, ts=self.clock(),
                             origin=self.kind, name=self.name, severity="critical", status="error",
                             target=self.describe(), why=reason, fingerprint=f"error:{self.name}")]

    def with_acks(self, readings: Iterable[Reading]) -> list[Reading]:
        """Mark acked alerts, and forget acks of alerts that are no longer active (an ack lasts until resolved)."""
        out: list[Reading] = []
        active: set[str] = set()
        for reading in readings:
            if isinstance(reading, AlertReading) and reading.status in ACTIVE:
                active.add(reading.fingerprint)
                if reading.fingerprint in self.acked:
                    reading = replace(reading, acked=True)
            out.append(reading)
        self.acked &= active
        return out

    def item_actions(self, reading: Reading) -> list[Action]:
        """What can be done to one alert row: ack or un-ack it here (read tier: it is local)."""
        if not isinstance(reading, AlertReading) or reading.status not in ACTIVE:
            return []
        if reading.acked:
            verb, title, call = "unack", "Un-ack", f"unack {reading.name}: counted and rung for again"
        else:
            verb, title, call = "ack", "Ack", f"ack {reading.name}: seen, no bell, until it resolves (this console only)"
        return [Action(target=reading.key, id=verb, title=title, tier=Tier.READ, source=self.name,
                       ref=(reading.fingerprint,), call=call)]

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        if action.id in ("ack", "unack"):
            transcript = Transcript(action, emit)
            (self.acked.add if action.id == "ack" else self.acked.discard)(action.ref[0])
            transcript.say(f"{action.target}: {'acked' if action.id == 'ack' else 'no longer acked'}")
            return transcript.result(True)
        return await super().run(action, emit)
