"""backends/ powers the headless commands too: it must never pull in the UI."""

from __future__ import annotations

import subprocess
import sys

MODULES = ["backends", "backends.config", "backends.engine", "backends.check", "backends.defaults",
           "backends.adapters.host", "backends.adapters.http_check", "backends.adapters.tcp_check",
           "backends.adapters.process_check", "backends.adapters.command_check", "backends.adapters.log_file",
           "backends.adapters.systemd", "backends.adapters.compose", "backends.adapters.supervisor",
           "backends.adapters.kubernetes", "backends.log_pager", "backends.adapters.log_command",
           "backends.adapters.log_journald", "backends.adapters.log_compose", "backends.adapters.log_supervisor"]


def test_backends_never_import_textual():
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
