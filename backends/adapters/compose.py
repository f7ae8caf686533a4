"""A Docker Compose service: its containers from ``docker compose ps``; start, stop, restart, up and scale.

Compose v2 is the ``docker compose`` plugin; where the docker client lacks it, the v1 ``docker-compose`` binary
is used instead (its ``ps`` has no JSON, so its table is read).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..actions import Action
from ..config import SourceSpec
from ..model import CheckReading, State
from .service_base import Captured, PollFailed, ServiceSource

V2 = ("docker", "compose")
V1 = ("docker-compose",)
VERBS = (("start", "Start", "starting"), ("stop", "Stop", "stopping"), ("restart", "Restart", "restarting"))
# A v1 table row: name, command, then the state column ("Up (healthy)", "Exit 1", "Restarting"), then ports.
V1_STATE = re.compile(r"\s{2,}(Up(?: \([^)]*\))?|Exit -?\d+|Restarting|Paused|Ghost)(?=\s{2,}|\s*$)")


@dataclass(frozen=True)
class Container:
    name: str
    state: str  # running, exited, restarting, paused, created, dead
    health: str = ""  # healthy, unhealthy, starting, or "" without a healthcheck
    status: str = ""  # "Up 2 hours (healthy)", "Exited (1) 5 minutes ago"
    ports: str = ""

    @property
    def summary(self) -> str:
        """``exited (1) 5 minutes ago``: docker's own status, lower-cased the way the panes read."""
        text = self.status or self.state
        return text[:1].lower() + text[1:]


def parse_v2(text: str) -> list[Container]:
    """``docker compose ps --format json``: a JSON array (before 2.21) or one object per line (since)."""
    text = text.strip()
    if not text:
        return []
    rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]
    containers = []
    for row in rows:
        if not isinstance(row, dict):
            raise TypeError(f"not a container: {row!r:.40}")
        publishers = [p for p in row.get("Publishers") or [] if isinstance(p, dict) and p.get("PublishedPort")]
        ports = ", ".join(f"{p.get('URL', '')}:{p['PublishedPort']}->{p.get('TargetPort')}/{p.get('Protocol', 'tcp')}"
                          for p in publishers)
        state = str(row.get("State", ""))
        status = str(row.get("Status") or "")
        if not status and state == "exited":  # older compose has no Status: make one from the exit code
            status = f"Exited ({row.get('ExitCode', '?')})"
        containers.append(Container(str(row.get("Name", "?")), state, str(row.get("Health") or ""), status, ports))
    return containers


def parse_v1(text: str) -> list[Container]:
    """The table of ``docker-compose ps``: a header, a line of dashes, then one row per container."""
    containers = []
    rows = text.splitlines()
    start = next((i + 1 for i, line in enumerate(rows) if line.startswith("---")), len(rows))
    for row in rows[start:]:
        matches = list(V1_STATE.finditer(row))
        if not row.strip() or not matches:
            continue
        column = matches[-1].group(1)
        ports = row[matches[-1].end():].strip()
        health = column[4:-1] if column.startswith("Up (") else ""
        health = "starting" if health == "health: starting" else health
        state = {"Up": "running", "Exit": "exited", "Restarting": "restarting", "Paused": "paused"}.get(
            column.split()[0].split("(")[0], column.lower())
        status = f"Exited ({column.split()[1]})" if state == "exited" else column
        containers.append(Container(row.split()[0], state, health, status, ports))
    return containers


Capture = Callable[[Sequence[str], str], Awaitable[Captured]]


async def find_cli(capture: Capture) -> tuple[str, ...]:
    """``docker compose`` when the docker client has the plugin, else the v1 ``docker-compose``.

    ``capture(argv, what)`` runs a command (``ServiceSource.capture``); raises PollFailed when neither works."""
    present: set[tuple[str, ...]] = set()  # installed, but `version` failed
    for cli in (V2, V1):
        try:
            if (await capture([*cli, "version"], " ".join(cli) + " version")).code == 0:
                return cli
            present.add(cli)
        except PollFailed as failed:
            if not failed.missing:
                raise
    if V2 not in present:
        raise PollFailed(State.UNKNOWN, "docker is not installed here", missing=True)
    raise PollFailed(State.UNKNOWN, "docker compose is not available here: the docker client has no compose "
                                    "plugin and docker-compose is not installed")


class ComposeService(ServiceSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.file: str = options["file"]
        self.service: str = options["service"]
        self.project: str | None = options["project"]
        self.cli: tuple[str, ...] | None = None  # V2 or V1, found by the first poll
        self.running: int | None = None  # running containers at the last poll: what scaling starts from

    def describe(self) -> str:
        return f"{self.service} in {self.file}"

    def log_spec(self) -> SourceSpec:
        return self.log_spec_of("compose", file=self.file, service=self.service, project=self.project)

    def compose(self, *args: str) -> list[str]:
        return [*(self.cli or V2), "-f", self.file, *(["-p", self.project] if self.project else []), *args]

    async def check(self) -> CheckReading:
        if self.cli is None:
            self.cli = await find_cli(self.capture)
        json_format = self.cli == V2
        argv = self.compose("ps", "--all", "--format", "json", self.service) if json_format else \
            self.compose("ps", self.service)
        try:
            captured = await self.capture(argv, what=" ".join(self.cli) + " ps")
        except PollFailed as failed:
            if failed.missing:  # the client was removed or replaced: look again next time
                self.cli = None
            raise
        if captured.code != 0:
            line = captured.last_line() or "no output"
            hint = " — add this user to the docker group" if "permission denied" in line else ""
            raise PollFailed(State.UNKNOWN, f"{' '.join(self.cli)} ps failed: {line}{hint}")
        try:
            containers = parse_v2(captured.stdout) if json_format else parse_v1(captured.stdout)
        except (ValueError, TypeError):
            raise PollFailed(State.UNKNOWN, "docker compose ps printed something that is not JSON: "
                                            f"{captured.stdout.strip()[:80]!r}") from None
        return self._verdict(containers)

    def _verdict(self, containers: list[Container]) -> CheckReading:
        running = [c for c in containers if c.state == "running"]
        self.running = len(running)
        details = (("containers", ", ".join(f"{c.name} {c.summary}" for c in containers)),
                   ("ports", ", ".join(c.ports for c in containers if c.ports)),
                   ("project", self.project or ""), ("compose", " ".join(self.cli or V2)))
        details = tuple((label, value) for label, value in details if value)
        if not containers:
            return self.reading(State.CRITICAL, f"no container for {self.service} — not created yet (use up -d)",
                                details)
        count = f"{len(running)}/{len(containers)} running"
        if not running:
            worst = next((c for c in containers if c.state == "restarting"), containers[0])
            return self.reading(State.CRITICAL, worst.summary, details)
        unhealthy = [c for c in running if c.health == "unhealthy"]
        if unhealthy:
            state = State.CRITICAL if len(unhealthy) == len(running) else State.WARN
            return self.reading(state, f"{count}, {len(unhealthy)} unhealthy: {unhealthy[0].name}", details)
        others = [c for c in containers if c.state != "running"]
        if others:
            return self.reading(State.WARN, f"{count}; {others[0].name} {others[0].summary}", details)
        starting = [c for c in running if c.health == "starting"]
        if starting:
            return self.reading(State.WARN, f"{count}, health check starting on {starting[0].name}", details)
        return self.reading(State.OK, count, details)

    def actions(self) -> list[Action]:
        actions = [self.action(verb, title, self.compose(verb, self.service), expect) for verb, title, expect in VERBS]
        actions.append(self.action("up", "Up (create and start)", self.compose("up", "-d", self.service), "starting"))
        n = self.running
        if n is None:  # not polled yet: how many run is not known, so neither is the count to scale to
            return actions
        for action_id, title, count in (("scale-up", "Scale up", n + 1), ("scale-down", "Scale down", n - 1)):
            if count >= 0:
                argv = self.compose("up", "-d", "--no-recreate", "--scale", f"{self.service}={count}", self.service)
                actions.append(self.action(action_id, f"{title} to {count}", argv, "scaling"))
        return actions
