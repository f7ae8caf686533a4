"""Alertmanager (API v2): its alerts and silences; silence an alert for a while, or expire a silence."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import json
import socket
from dataclasses import replace
from typing import Any

from ..actions import Action, ActionResult, Emit, Tier, Transcript
from ..durations import format_duration, parse_duration
from ..model import AlertReading, Reading, State
from ..text import one_line
from .alert_base import AlertSource, labelled_alert
from .json_api import ApiError, JsonApi, segment
from .pipeline_base import epoch

ALERTS = "/api/v2/alerts"
SILENCES = "/api/v2/silences"
MIN_SILENCE = 60.0
MAX_SILENCE = 30 * 86400.0


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def matchers_text(matchers: list[dict[str, Any]]) -> str:
    """``alertname="DiskFull", instance=~"web-.*"`` as Alertmanager writes a silence's matchers."""
    parts = []
    for m in matchers:
        op = ("=~" if m.get("isRegex") else "=") if m.get("isEqual", True) else ("!~" if m.get("isRegex") else "!=")
        parts.append(f"{m.get('name')}{op}{json.dumps(str(m.get('value', '')))}")
    return ", ".join(parts)


def parse_silence(text: str, default: float) -> tuple[float, str]:
    """``4h disk replaced in INC-42`` -> (14400, "disk replaced in INC-42"); without a leading duration the
    whole text is the comment and the silence lasts ``default``. ValueError says what is wrong."""
    head, _, rest = text.strip().partition(" ")
    try:
        seconds, comment = parse_duration(head), rest
    except ValueError:
        seconds, comment = default, text
    if not MIN_SILENCE <= seconds <= MAX_SILENCE:
        raise ValueError(f"a silence of {format_duration(seconds)} (expected between 1m and 30d)")
    if not comment.strip():
        raise ValueError("say why it is silenced, after the duration (Alertmanager requires a comment)")
    return seconds, comment.strip()


class Alertmanager(AlertSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.api = JsonApi(options["url"], options["headers"], options["verify_tls"], options.get("ca_file"))
        self.author = options.get("author") or f"{getpass.getuser()}@{socket.gethostname()}"
        self.silence_for: float = options["silence"]

    def describe(self) -> str:
        return f"alertmanager {self.api.where}"

    async def close(self) -> None:
        await self.api.close()

    async def poll(self) -> list[Reading]:
        budget = self.timeout * 0.9
        try:
            alerts, silences = await asyncio.gather(
                self.api.request("GET", ALERTS, timeout=budget), self.api.request("GET", SILENCES, timeout=budget))
        except ApiError as exc:
            return self.failed(f"alertmanager {self.api.where}: {exc}")
        now = self.clock()
        readings: list[Reading] = [self._alert(a, now) for a in alerts or () if isinstance(a, dict)]
        readings += [self._silence(s, now) for s in silences or ()
                     if isinstance(s, dict) and (s.get("status") or {}).get("state") in ("active", "pending")]
        return self.with_acks(readings)

    def _alert(self, alert: dict[str, Any], now: float) -> AlertReading:
        status = alert.get("status") or {}
        held = tuple(status.get("silencedBy") or ()) + tuple(status.get("inhibitedBy") or ())
        state = "silenced" if status.get("state") == "suppressed" or held else "firing"
        return labelled_alert(self.name, "alertmanager", alert.get("labels") or {}, alert.get("annotations") or {},
                              state, epoch(alert.get("startsAt")), now, held=held)

    def _silence(self, silence: dict[str, Any], now: float) -> AlertReading:
        matchers = silence.get("matchers") or []
        named = [m for m in matchers if m.get("name") == "alertname" and m.get("isEqual", True)
                 and not m.get("isRegex")]
        others = [m for m in matchers if m not in named]
        name = str(named[0].get("value")) if named else matchers_text(matchers)
        comment = one_line(str(silence.get("comment") or ""), 120)
        by = str(silence.get("createdBy") or "")
        ends = epoch(silence.get("endsAt"))
        sid = str(silence.get("id") or "")
        left = f"{format_duration(max(0.0, ends - now))} left" if ends else ""
        return AlertReading(
            key=f"{self.name}:silence:{sid[:8]}", source=self.name, state=State.OK,
            reason=one_line(f"silence {matchers_text(matchers)} · {left} · {comment} ({by})"), ts=now,
            origin="alertmanager", name=name, severity="info", status="silence", since=epoch(silence.get("startsAt")),
            until=ends, target=matchers_text(others) if named else "", why=f"{comment} — {by}" if by else comment,
            fingerprint=sid, labels=tuple((str(m.get("name")), str(m.get("value"))) for m in matchers))

    # -- actions ------------------------------------------------------------------------------------

    def item_actions(self, reading: Reading) -> list[Action]:
        if not isinstance(reading, AlertReading):
            return []
        if reading.status == "silence":
            return [Action(target=reading.key, id="expire", title="Expire", tier=Tier.DISRUPTIVE,
                           source=self.name, ref=(reading.fingerprint,), expect="expiring",
                           call=f"DELETE {self.api.url('/api/v2/silence/' + segment(reading.fingerprint))}")]
        actions = super().item_actions(reading)
        if reading.status in ("firing", "silenced"):
            actions.append(Action(
                target=reading.key, id="silence", title="Silence", tier=Tier.DISRUPTIVE,
                source=self.name, ref=(reading.fingerprint, *(f"{k}={v}" for k, v in reading.labels)),
                ask=f"Why, after how long if not {format_duration(self.silence_for)} (e.g. 4h disk swap INC-42)",
                expect="silencing", call=f"POST {self.api.url(SILENCES)}"))
        return actions

    def with_value(self, action: Action, value: str) -> Action:
        if action.id != "silence":
            raise ValueError(f"{action.id} takes no value")
        seconds, comment = parse_silence(value, self.silence_for)
        body = self._silence_body(action, seconds, comment, self.clock())
        return replace(action, value=value, call=f"POST {self.api.url(SILENCES)} {json.dumps(body)}")

    def _silence_body(self, action: Action, seconds: float, comment: str, now: float) -> dict[str, Any]:
        matchers = [{"name": pair.partition("=")[0], "value": pair.partition("=")[2], "isRegex": False,
                     "isEqual": True} for pair in action.ref[1:]]
        return {"matchers": matchers, "startsAt": iso(now), "endsAt": iso(now + seconds),
                "createdBy": self.author, "comment": comment}

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        if action.id not in ("silence", "expire") or not action.ref or action.argv or action.request is not None:
            return await super().run(action, emit)
        transcript = Transcript(action, emit)
        try:
            if action.id == "silence":
                shown = action.call.partition(f"{self.api.url(SILENCES)} ")[2]
                if shown:  # exactly the request the operator confirmed
                    body = json.loads(shown)
                else:
                    seconds, comment = parse_silence(action.value, self.silence_for)
                    body = self._silence_body(action, seconds, comment, self.clock())
                transcript.say(f"POST {SILENCES} {json.dumps(body)}")
                answer = await self.api.request("POST", SILENCES, timeout=action.timeout, body=body)
                sid = (answer or {}).get("silenceID", "?") if isinstance(answer, dict) else "?"
                transcript.say(f"silence {sid} until {body['endsAt']}")
            else:
                path = f"/api/v2/silence/{segment(action.ref[0])}"
                transcript.say(f"DELETE {path}")
                await self.api.request("DELETE", path, timeout=action.timeout)
                transcript.say(f"silence {action.ref[0]} expired")
        except (ApiError, ValueError) as exc:
            reason = str(exc)
            transcript.say(reason)
            return transcript.result(False, one_line(reason))
        return transcript.result(True)
