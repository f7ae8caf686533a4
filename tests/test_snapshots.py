"""A few SVG snapshots at fixed sizes, with the clock, hostname and data injected (tests/ui_support.py).

Update them after an intended change of look with: pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from ui_support import load, make_app


async def _loaded(pilot) -> None:
    await load(pilot.app, pilot)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_dashboard(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=_loaded)


def test_resources_full_screen(snap_compare):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=_loaded, press=["2"])


def test_dashboard_light_theme(snap_compare):
    assert snap_compare(make_app(theme="light"), terminal_size=(80, 24), run_before=_loaded)


def test_details(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_loaded, press=["enter"])
