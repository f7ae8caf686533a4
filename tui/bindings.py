"""Bindings made from the key registry, each with its id so that config can remap it."""

from __future__ import annotations

from textual.binding import Binding

from backends.keymap import KEYS


def bindings(screen: bool) -> list[Binding]:
    """The app's bindings, or (``screen=True``) those the dashboard screen holds."""
    return [
        Binding(spec.keys, f"app.{spec.action}" if screen else spec.action, spec.description, show=spec.show,
                id=spec.id, tooltip=spec.description)
        for spec in KEYS if spec.screen == screen and not spec.log_view
    ]
