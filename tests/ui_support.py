"""A console with fixed data, clock and hostname, for Pilot tests and snapshots.

The sources here are stand-ins for adapters so that what is on screen is the same on every run;
the adapters themselves are tested against real servers elsewhere.
"""

from __future__ import annotations

from backends.adapters.base import Source
from backends.config import Config, SourceSpec, Thresholds
from backends.engine import Engine
from backends.logtext import parse_level
from backends.model import CheckReading, GaugeReading, LogLine, LogReading, ProcessRow, ProcessTableReading, State
from tui.app import LakedeckApp

NOW = 1_800_000_000.0


def fixed_clock() -> float:
    return NOW


def sample_readings(name: str, now: float) -> list:
    if name == "web":
        return [
            CheckReading(key="spring-api", source="web", state=State.OK, reason="HTTP 200, status UP in 12ms", ts=now,
                         kind="http", target="http://127.0.0.1:8080/actuator/health", latency_ms=12.0),
            CheckReading(key="analytics", source="web", state=State.CRITICAL,
                         reason="connection refused on 127.0.0.1:8081 — is the service running?", ts=now,
                         kind="http", target="http://127.0.0.1:8081/api/v1/analytics/pipelines/status"),
            CheckReading(key="minio", source="web", state=State.WARN, reason="connected in 640ms (warn above 500ms)",
                         ts=now, kind="tcp", target="127.0.0.1:9000", latency_ms=640.0),
        ]
    if name == "odd":
        return [CheckReading(key="[/usr/lib/x]", source="odd", state=State.UNKNOWN,
                             reason="near [/ \x1b[2J [bold]x[/bold]", ts=now, kind="command", target="[/etc]")]
    if name == "local":
        return [
            GaugeReading(key="local:cpu", source="local", state=State.OK, reason="cpu 35%", ts=now, label="cpu",
                         amount=35.0, unit="%", percent=35.0),
            GaugeReading(key="local:memory", source="local", state=State.WARN, reason="memory 84% (warn at 80%)",
                         ts=now, label="memory", amount=6.7e9, unit="B", percent=84.0),
            GaugeReading(key="local:disk:/", source="local", state=State.CRITICAL, reason="/ 93% (critical at 90%)",
                         ts=now, label="disk /", amount=93e9, unit="B", percent=93.0),
            ProcessTableReading(key="local:processes", source="local", state=State.OK, reason="top 2", ts=now,
                                by_cpu=(ProcessRow(4242, "java", "nifi", 55.0, 2_000_000_000, now - 3600),
                                        ProcessRow(77, "postgres", "postgres", 3.5, 300_000_000, now - 86400)),
                                by_memory=()),
        ]
    if name == "app-log":
        lines = tuple(LogLine("app-log", text, now, level=parse_level(text)) for text in (
            "2026-11-21 10:00:00 INFO pipeline ingest started",
            "2026-11-21 10:00:01 WARN lag 1200 records",
            "2026-11-21 10:00:02 ERROR batch 17 failed: [/usr/lib/x] near [/",
        ))
        return [LogReading(key="app-log:/var/log/app.log", source="app-log", state=State.OK, reason="following",
                           ts=now, path="/var/log/app.log", lines=lines)]
    raise KeyError(name)


class FixedSource(Source):
    async def poll(self):
        self.polls = getattr(self, "polls", 0) + 1
        return sample_readings(self.name, self.clock())


SECTION = {"web": "services", "odd": "services", "local": "hosts", "app-log": "logs"}


def make_config(names=("web", "local", "app-log"), keys=None, refresh: float = 2.0) -> Config:
    specs = tuple(SourceSpec(SECTION[n], n, "fixed", refresh, refresh * 0.75, {}) for n in names)
    return Config(origin="test.yaml", refresh=refresh, theme="dark", keys=keys or {}, thresholds=Thresholds(),
                  history=300, sources=specs)


def make_app(names=("web", "local", "app-log"), keys=None, clock=fixed_clock, start_engine=False,
             theme: str | None = None, refresh: float = 2.0) -> LakedeckApp:
    config = make_config(names, keys, refresh)
    engine = Engine(config, clock=clock,
                    source_factory=lambda spec, cfg: FixedSource(spec, cfg.thresholds, clock=clock))
    return LakedeckApp(config, engine=engine, clock=clock, hostname="bastion-1", theme=theme,
                       start_engine=start_engine)


async def load(app: LakedeckApp, pilot) -> None:
    """One sweep of the fixed sources, drawn."""
    await app.engine.sweep()
    app.refresh_view()
    await pilot.pause()


def screen_text(app: LakedeckApp) -> str:
    """What a person would read on the screen right now, as plain text."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None,
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def until(pilot, condition, seconds: float = 5.0) -> bool:
    """Wait for what a key set off (an audit write in a thread, a modal, a poll) on a machine of any speed."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            await pilot.pause()  # and let the screen catch up: a pushed screen is drawn a moment later
            return True
        await pilot.pause(0.05)
    return condition()


async def choose(pilot, app, label: str, tries: int = 8) -> None:
    """Move the open action menu's highlight to the option whose label holds ``label`` and press enter."""
    for _ in range(tries):
        if label in app.screen.query_one("OptionList").highlighted_option.prompt.plain:
            break
        await pilot.press("down")
    await pilot.press("enter")
