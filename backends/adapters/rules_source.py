"""The source that evaluates the config's ``rules:`` over every other source's latest readings.

It reads nothing itself: the engine hands it its live readings with ``watch()`` right after building it,
and polls it after the others in a sweep. The rules' logic is backends.rules (pure, tested apart).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..model import Reading
from ..rules import Rule, RuleBook
from .alert_base import AlertSource


class RulesSource(AlertSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.book = RuleBook((Rule.from_options(o) for o in self.spec.options.get("rules", ())), source=self.name)
        self._readings: Mapping[str, Reading] | None = None

    def watch(self, readings: Mapping[str, Reading]) -> None:
        """The engine's latest reading per key (a live mapping, read at each poll)."""
        self._readings = readings

    def describe(self) -> str:
        count = len(self.book)
        return f"{count} rule{'' if count == 1 else 's'}"

    async def poll(self) -> list[Reading]:
        if self._readings is None:
            return []
        return self.with_acks(self.book.evaluate(self._readings, self.clock()))
