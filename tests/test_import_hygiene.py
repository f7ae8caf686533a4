"""backends/ powers the headless commands too: it must never pull in the UI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# every module of backends/, so that a new adapter is covered without being listed here
MODULES = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                 for path in (ROOT / "backends").rglob("*.py"))


def test_backends_never_import_textual():
    assert {"backends.engine", "backends.adapters.airflow", "backends.adapters.http_check"} <= set(MODULES)
    code = ("import sys\n" + "".join(f"import {m}\n" for m in MODULES)
            + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui', 'widgets'))\n"
            + "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_headless_check_does_not_import_textual():
    code = ("import sys\nfrom tui.cli import main\nimport backends.check\n"
            "print(any(m.startswith('textual') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_widgets_never_import_the_engine_or_adapters():
    """Widgets take plain data: the data types and pure helpers of backends, never the engine, an adapter,
    the config loader or the console wiring."""
    code = ("import sys\nimport widgets.status_table, widgets.log_view, widgets.pane, widgets.status_bar\n"
            "print(','.join(sorted(m for m in sys.modules if m.startswith(('backends', 'tui')))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(filter(None, out.stdout.strip().split(",")))
    forbidden = {m for m in loaded if m.startswith(("tui", "backends.adapters", "backends.engine", "backends.config",
                                                   "backends.runner", "backends.audit"))}
    assert "backends.model" in loaded and forbidden == set()
