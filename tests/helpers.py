"""Build adapters the way the engine does: through the real config schema, so every option has its default."""

from __future__ import annotations

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
