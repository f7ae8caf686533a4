"""Build adapters the way the engine does (through the real config schema, so every option has its default),
and serve test HTTP APIs on loopback."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any

import yaml

from backends.config import Config, SourceSpec, parse


def config_for(section: str, kind: str, *, root: dict[str, Any] | None = None, **options: Any) -> Config:
    item = {"name": options.pop("name", "t"), "kind": kind, **options}
    return parse(yaml.safe_dump({**(root or {}), section: [item]}), "test.yaml")


def spec_for(section: str, kind: str, **options: Any) -> SourceSpec:
    """The SourceSpec the schema makes of one item, e.g. ``spec_for("services", "tcp", port=80)``."""
    return config_for(section, kind, **options).sources[0]


def source_for(section: str, kind: str, *, root: dict[str, Any] | None = None, **options: Any):
    """The adapter the engine would build for one item."""
    from backends.adapters import build_source

    config = config_for(section, kind, root=root, **options)
    return build_source(config.sources[0], config)


async def read_all(source) -> dict:
    """One poll of a pipeline source, by pipeline name; every reason is one line an operator can read."""
    readings = await source.poll()
    for reading in readings:
        assert "\n" not in reading.reason and len(reading.reason) <= 200
    return {r.name: r for r in readings}


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 with a free port, served from a thread until ``stop()``."""

    def __init__(self, handler: type) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.root = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
