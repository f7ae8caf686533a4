"""Bad backends in the real console: each is a row with its reason, the UI keeps answering keys, and the
healthy sources keep their rhythm. Real adapters against a real HTTP server, real ports and real commands."""

from __future__ import annotations

import socket
import time

import yaml

from backends import config as cfg
from backends.model import State
from ui_support import screen_text
from tui.app import LakedeckApp
from widgets.status_table import StatusTable


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


async def test_bad_backends_are_rows_with_reasons_and_the_console_keeps_going(http_server, tmp_path):
    services = [
        {"name": "healthy", "kind": "http", "url": f"{http_server}/healthy", "expect_json": {"status": "UP"}},
        {"name": "hung", "kind": "http", "url": f"{http_server}/hung"},
        {"name": "error-500", "kind": "http", "url": f"{http_server}/error"},
        {"name": "bad-json", "kind": "http", "url": f"{http_server}/badjson", "expect_json": {"status": "UP"}},
        {"name": "refused", "kind": "tcp", "port": closed_port()},
        {"name": "never-exits", "kind": "command", "command": ["sleep", "3600"]},
        {"name": "[/usr/lib/x]", "kind": "command", "command": ["sh", "-c", "echo 'near [/ \x1b[2J'; exit 2"]},
    ]
    text = yaml.safe_dump({"refresh": "1s", "timeout": "500ms", "services": services})
    config = cfg.parse(text, str(tmp_path / "lakedeck.yaml"), {})
    app = LakedeckApp(config, hostname="bastion-1")
    async with app.run_test(size=(160, 40)) as pilot:
        started = time.monotonic()
        await pilot.pause(0.3)
        for _ in range(10):  # the UI answers keys while polls hang and time out
            await pilot.press("2")
            await pilot.press("escape")
        await pilot.pause(max(0.0, 3.2 - (time.monotonic() - started)))
        readings = app.engine.readings
        assert readings["healthy"].state is State.OK
        assert app.engine.health["healthy"].polls >= 3  # every second, whatever the others do
        expected = {
            "hung": "no answer within",
            "error-500": "HTTP 500",
            "bad-json": "not JSON",
            "refused": "connection refused",
            "never-exits": "killed",
            "[/usr/lib/x]": "near [/ ␛[2J",
        }
        for name, words in expected.items():
            assert readings[name].state is State.CRITICAL, (name, readings[name])
            assert words in readings[name].reason, (name, readings[name].reason)
        await pilot.press("1")
        table = app.query_one("#services-table", StatusTable)
        assert table.row_count == 7
        screen = screen_text(app)
        assert "[/usr/lib/x]" in screen and "near [/ ␛[2J" in screen
