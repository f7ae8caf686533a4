"""A Docker Compose service's logs: ``docker compose logs -f --timestamps``, resumed with ``--since``.

Each output line is ``web-1  | 2024-04-25T05:32:35.584725130Z message``: the container, the time Docker
received the line (UTC, nanoseconds), then the line. The container and the time are taken off the text
(so JSON lines stay JSON and the level is read from the message); the container comes back as a
``web-2 | `` prefix once the service has shown more than one, when it is needed to tell them apart.

After a restart, v2 asks for ``--since`` the newest time seen, which Docker treats as inclusive, so lines
not newer than the last one seen from their container are skipped, counting lines that share a stamp. The
v1 ``docker-compose logs`` has no ``--since``: it asks for the same backlog again, with the same skipping.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..log_reading import Piece
from ..model import LogLine
from .compose import V2, find_cli
from .log_stream import StreamSource
from .service_base import capture

PREFIX = re.compile(r"([^\s|]+) *\| ?")
STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z ?")
MAX_CONTAINERS = 200  # names remembered for the prefix decision and de-duplication (bounded)


def stamp_ns(match: re.Match[str]) -> int:
    """Nanoseconds since the epoch of a ``--timestamps`` stamp (always UTC, ``Z``)."""
    year, month, day, hour, minute, second, fraction = match.groups()
    whole = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0))
    return whole * 1_000_000_000 + int((fraction or "").ljust(9, "0"))


@dataclass
class Seen:
    """The newest stamp read from one container, and how many of its lines carried exactly that stamp."""

    ns: int
    count: int = 1


class LogCompose(StreamSource):
    missing_hint = "install docker compose"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.file: str = options["file"]
        self.service: str = options["service"]
        self.project: str | None = options["project"]
        self.backlog: int = options["lines"]
        self.cli: tuple[str, ...] | None = None
        self.last_stamp = ""  # the newest stamp seen, as compose wrote it: where --since resumes
        self._last_ns = -1
        self._seen: dict[str, Seen] = {}  # per container, updated by the reader thread
        self._replay: dict[str, Seen] = {}  # per container, what a restart will show again
        self._containers: set[str] = set()

    def describe(self) -> str:
        return f"logs of {self.service} in {self.file}"

    def program(self, argv: Sequence[str]) -> str:
        return " ".join(self.cli or V2)

    async def argv(self) -> list[str]:
        if self.cli is None:
            deadline = time.monotonic() + self.timeout * 0.9
            self.cli = await find_cli(lambda argv, what: capture(argv, max(0.05, deadline - time.monotonic()), what))
        argv = [*self.cli, "-f", self.file, *(["-p", self.project] if self.project else []),
                "logs", "-f", "--no-color", "--timestamps"]
        if self.last_stamp and self.cli == V2:
            return [*argv, "--since", self.last_stamp, "--tail", "all", self.service]
        return [*argv, "--tail", str(self.backlog), self.service]

    def started(self) -> None:
        self._replay = {name: Seen(seen.ns, seen.count) for name, seen in self._seen.items()}

    def missing(self) -> None:
        self.cli = None  # the client was removed or replaced: look again next time

    def to_lines(self, piece: Piece, read_at: float) -> list[LogLine]:
        text = piece.text()
        prefix = PREFIX.match(text)
        if prefix is None:  # not a container's line (compose's own words): shown as it is
            return [self.stamper.line(text, read_at, cut=piece.cut)]
        container = prefix.group(1)
        rest = text[prefix.end():]
        stamp = STAMP.match(rest)
        ts = None
        if stamp is not None:
            ns = stamp_ns(stamp)
            if self._already_seen(container, ns):
                return []
            self._remember(container, ns, stamp.group(0).rstrip())
            ts = ns / 1e9
            rest = rest[stamp.end():]
        if len(self._containers) < MAX_CONTAINERS:
            self._containers.add(container)
        if len(self._containers) > 1:
            rest = f"{container} | {rest}"
        return [self.stamper.line(rest, read_at, ts=ts, cut=piece.cut)]

    def _already_seen(self, container: str, ns: int) -> bool:
        replay = self._replay.get(container)
        if replay is None:
            return False
        if ns < replay.ns:
            return True
        if ns == replay.ns and replay.count > 0:
            replay.count -= 1
            return True
        del self._replay[container]  # past what was shown before: everything from here is new
        return False

    def _remember(self, container: str, ns: int, raw: str) -> None:
        seen = self._seen.get(container)
        if seen is not None and seen.ns == ns:
            seen.count += 1
        elif seen is not None or len(self._seen) < MAX_CONTAINERS:
            self._seen[container] = Seen(ns)
        if ns >= self._last_ns:
            self._last_ns, self.last_stamp = ns, raw
