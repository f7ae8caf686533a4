"""Secrets in the audit log and on screen: one rule (backends/redact.py) for the confirmation, the output, the
error and every audit line, through a real HTTP server and a real command."""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from backends import config as cfg
from backends.actions import Action, HttpRequest, Tier
from backends.engine import Engine
from backends.redact import Redactor, hide, option_secrets, secret_field, secret_var
from helpers import LoopbackServer
from tui.app import LakedeckApp
from ui_support import screen_text, until
from widgets.confirm import ConfirmModal

DB_PASSWORD = "s3cr3t-from-the-environment"
BODY = '{"password": "p", "nested": {"api_key": "k", "keep": "visible"}}'


class Echo(BaseHTTPRequestHandler):
    """Answers with what it was sent: a server that echoes a secret must not get it into the log either."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = f"got {self.path} {body.decode()}".encode()
        self.send_response(500 if "fail" in self.path else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def echo():
    server = LoopbackServer(Echo).start()
    yield server.root
    server.stop()


@pytest.fixture
def port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def secret_config(tmp_path: Path, root: str, port: int = 1) -> cfg.Config:
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "refresh": "1s", "services": [{
        "name": "api", "kind": "tcp", "port": port, "actions": [
            {"id": "refresh", "http": {"url": f"{root}/refresh?token=abc&x=1", "body": BODY}},
            {"id": "fail", "http": {"url": f"{root}/fail?token=abc&x=1", "body": BODY}},
            {"id": "dump", "command": ["sh", "-c", 'echo "connecting with $1"; echo done', "sh",
                                       "--password=${DB_PASSWORD}"]},
        ]}]})
    return cfg.parse(text, "lakedeck.yaml", {"DB_PASSWORD": DB_PASSWORD})


def assert_no_secret(text: str) -> None:
    assert "abc" not in text and DB_PASSWORD not in text
    assert '"p"' not in text and '"k"' not in text  # the body's values, as JSON strings
    assert "x=1" in text or "connecting" in text  # what is not secret is still shown


async def test_secrets_never_reach_the_audit_log_the_output_or_the_error(tmp_path, echo):
    engine = Engine(secret_config(tmp_path, echo))
    engine.build()
    lines: list[str] = []
    ok = await engine.run_action(engine.find_action("api", "refresh"), lines.append)
    assert ok.ok
    failed = await engine.run_action(engine.find_action("api", "fail"), lines.append)
    assert not failed.ok and failed.error == "HTTP 500 Internal Server Error"
    dumped = await engine.run_action(engine.find_action("api", "dump"), lines.append)
    assert dumped.ok and dumped.output == ["connecting with --password=***", "done"]
    # what the server echoed, streamed to the screen: the secrets are gone from it too
    assert lines[1] == 'got /refresh?token=***&x=1 {"password": "***", "nested": {"api_key": "***", "keep": "visible"}}'
    log = (tmp_path / "audit.jsonl").read_text()
    for line in log.splitlines():
        entry = json.loads(line)
        assert_no_secret(line)
        if entry["action"] in ("refresh", "fail"):
            assert entry["command"] == (f"POST {echo}/{entry['action']}?token=***&x=1 -d "
                                        "'{\"password\": \"***\", \"nested\": {\"api_key\": \"***\", \"keep\": \"visible\"}}'")
    events = [(e["event"], e["action"]) for e in map(json.loads, log.splitlines())]
    assert events == [("confirmed", "refresh"), ("succeeded", "refresh"), ("confirmed", "fail"), ("failed", "fail"),
                      ("confirmed", "dump"), ("succeeded", "dump")]
    assert json.loads(log.splitlines()[-1])["command"] == "sh -c 'echo \"connecting with $1\"; echo done' sh --password=***"


async def test_the_confirmation_shows_the_request_with_its_secrets_as_stars(tmp_path, port):
    app = LakedeckApp(secret_config(tmp_path, "http://127.0.0.1:9", port), hostname="bastion-1")
    async with app.run_test(size=(200, 40)) as pilot:
        assert await until(pilot, lambda: "api" in app.engine.readings, 5.0)
        app.refresh_view()
        for action_id in ("refresh", "dump"):
            app.actions.request(app.engine.find_action("api", action_id))
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            text = screen_text(app)
            assert "***" in text
            assert "abc" not in text and DB_PASSWORD not in text and '"p"' not in text and '"k"' not in text
            assert ("x=1" in text) if action_id == "refresh" else ("--password=***" in text)
            await pilot.press("escape")
            assert await until(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        await pilot.press("a")  # the action menu shows each command the same way
        text = screen_text(app)
        assert "token=***" in text and DB_PASSWORD not in text and "abc" not in text


def test_what_is_a_secret_name():
    for name in ("DB_PASSWORD", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "PGPASS", "api_key", "X_AUTH"):
        assert secret_var(name), name
    assert not secret_var("HOME") and not secret_var("PORT")
    for name in ("token", "password", "secret", "key", "api_key", "authorization", "Authorization", "X-Api-Key",
                 "accessToken", "client_secret", "PGPASSWORD", "refresh_token"):
        assert secret_field(name), name
    for name in ("author", "keyspace", "x", "user", "monkeys", "passenger"):
        assert not secret_field(name), name


@pytest.mark.parametrize("text, shown", [
    ("http://h/x?token=abc&x=1", "http://h/x?token=***&x=1"),
    ("http://h/x?x=1&Api_Key=a#bc", "http://h/x?x=1&Api_Key=***"),  # a '#' may be the secret's: it goes too
    ("https://user:hunter2@h:5432/db", "https://user:***@h:5432/db"),
    ('{"user": "u", "password": "p", "deep": [{"token": 12345}]}', '{"user": "u", "password": "***", "deep": [{"token": "***"}]}'),
    ('{"password": "with \\"quotes\\" inside"}', '{"password": "***"}'),
    ("user=u&password=p&next=/x", "user=u&password=***&next=/x"),
    ("--token=abc --user=u", "--token=*** --user=u"),
    ("author=alice keyspace=prod", "author=alice keyspace=prod"),
    ("nothing to hide here", "nothing to hide here"),
])
def test_secrets_are_hidden_by_their_shape(text, shown):
    assert hide(text) == shown


def test_known_values_are_hidden_wherever_they_appear_and_in_their_escaped_forms():
    redactor = Redactor({"s3cr3t/+", "ab"})  # too short to hunt in free text: its shape still hides it
    assert redactor.text("a s3cr3t/+ b s3cr3t%2F%2B c") == "a *** b *** c"
    assert redactor.text("ab cab") == "ab cab"
    request = HttpRequest("POST", "http://h/x", (("Authorization", "Bearer tok-123"), ("Content-Type", "text/plain")),
                          "form=1&secret=zz")
    action = Action("api", "x", "X", Tier.DISRUPTIVE, request=request)
    assert Redactor().command(action) == ("POST http://h/x -H 'Authorization: ***' -H 'Content-Type: text/plain' "
                                          "-d 'form=1&secret=***'")
    assert Redactor().for_action(action).text("echo: Bearer tok-123 / tok-123") == "echo: *** / ***"
    argv = Action("db", "y", "Y", Tier.DISRUPTIVE, argv=("psql", "--password", "hunter2", "-c", "select 1"))
    assert Redactor().command(argv) == "psql --password '***' -c 'select 1'"


def test_option_secrets_keep_the_rule_and_spare_plain_values():
    found = option_secrets([{"headers": {"Authorization": "Bearer abc123", "Accept": "application/json"},
                             "password": "pw-1", "author": "alice@bastion", "url": "http://u:hunter2@h/x?token=tk-9",
                             "actions": [{"http": {"headers": {"X-Key": "k-999"}, "body": '{"secret": "sss"}'}}]}])
    assert {"Bearer abc123", "abc123", "pw-1", "hunter2", "tk-9", "k-999", "sss"} <= found
    assert "application/json" not in found and "alice@bastion" not in found
