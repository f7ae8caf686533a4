"""Bindings made from the key registry, each with its id so that config can remap it."""

from __future__ import annotations

from typing import Iterable, Mapping

from textual.binding import Binding

from backends.keymap import KEYS
from widgets.key_bar import KeyBar


def bindings(screen: bool) -> list[Binding]:
    """The app's bindings, or (``screen=True``) those the dashboard screen holds."""
    return [
        Binding(spec.keys, f"app.{spec.action}" if screen else spec.action, spec.description, show=spec.show,
                id=spec.id, tooltip=spec.description)
        for spec in KEYS if spec.screen == screen and not spec.log_view
    ]


def key_bar(app, key_ids: Iterable[str], words: Mapping[str, str] = {}) -> KeyBar:
    """A screen's key bar: each binding id's first key as the app displays it (rebound keys too), and its word."""
    labels = {spec.id: spec.label for spec in KEYS}
    return KeyBar([(app.key_display(key_id).split(" or ")[0], words.get(key_id) or labels[key_id])
                   for key_id in key_ids])
