"""Secrets in the audit log and on screen: one rule (backends/redact.py) for the confirmation, the output, the
error and every audit line, through a real HTTP server and a real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from backends import config as cfg
from backends.actions import Action, HttpRequest, Tier
from backends.engine import Engine
from backends.redact import Redactor, argv_secrets, hide, option_secrets, secret_field, secret_var
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
    for name in ("sessionid", "session_id", "X-Session-Id", "pwd", "DB_PWD", "cookie", "Cookie", "Set-Cookie",
                 "credentials", "private_key", "client_secret", "Proxy-Authorization", "X-Auth-Token", "pass_word"):
        assert secret_field(name), name
    for name in ("author", "keyspace", "x", "user", "monkeys", "passenger", "session", "cookies", "Accept", "path"):
        assert not secret_field(name), name
    for name in ("SESSION_COOKIE", "GCP_CREDENTIALS", "APP_SESSIONID"):
        assert secret_var(name), name


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
    # name = value, quoted values, Python literals
    ("db.password = hunter2 port = 5432", "db.password = *** port = 5432"),
    ("PGPASSWORD='two words' psql", "PGPASSWORD='***' psql"),
    ("{'password': 'abc', 'user': 'bob'}", "{'password': '***', 'user': 'bob'}"),
    ("session_id=s1 sessionid=s2 pwd=s3 path=/x", "session_id=*** sessionid=*** pwd=*** path=/x"),
    # header-shaped text anywhere: the value runs to the end of the line (or to a quote)
    ("> Authorization: Bearer SECRET1xyz", "> Authorization: ***"),
    ("Authorization: Basic YWRtaW46cHc=", "Authorization: ***"),
    ("proxy-authorization:Digest username=x, response=y", "proxy-authorization:***"),
    ("Cookie: sessionid=abc; theme=dark", "Cookie: ***"),
    ("< Set-Cookie: sid=abc; Path=/; HttpOnly", "< Set-Cookie: ***"),
    ("X-Auth-Token: SECRET10", "X-Auth-Token: ***"),
    ("-H 'X-Api-Key: k1' -H 'Accept: json'", "-H 'X-Api-Key: ***' -H 'Accept: json'"),
    ("password: SECRET14", "password: ***"),
    ('client_secret: "quoted" and more', 'client_secret: "***" and more'),
    ("Content-Type: application/json", "Content-Type: application/json"),
    ("Key::new() at 12:03:10 from http://h:80/x", "Key::new() at 12:03:10 from http://h:80/x"),
    # curl's user:password
    ("curl -u admin:SECRET9 -uroot:s2 --user=bob:s3 --user carol:s4 --proxy-user p:s5 -U q:s6",
     "curl -u admin:*** -uroot:*** --user=bob:*** --user carol:*** --proxy-user p:*** -U q:***"),
    ("curl -u admin -u :tok3n --user=bob", "curl -u admin -u :*** --user=bob"),  # no password; a token alone
    ("docker run -u 1000:1000 img", "docker run -u 1000:1000 img"),  # a uid:gid
    # a value glued to -p: a password, unless plainly a port or a cluster of short flags
    ("x -pSECRET6 -passSECRET16 -ph1 -p=s", "x -p*** -p*** -p*** -p***"),
    ("ssh -p2222 h; docker run -p8080:80 -p127.0.0.1:80:80/tcp i; patch -p1", "ssh -p2222 h; docker run -p8080:80 "
     "-p127.0.0.1:80:80/tcp i; patch -p1"),
    ("mkdir -pv /x; cp -pR a b; tar -pxzf f; openssl enc -pass pass:s7", "mkdir -pv /x; cp -pR a b; tar -pxzf f; "
     "openssl enc -pass pass:***"),
    # after mysql and its like, every -pVALUE is its password
    ("mysql -uroot -pqxzw -p123456 shop", "mysql -uroot -p*** -p*** shop"),
    ("/usr/bin/mysqldump -pabc db; mariadb-dump -p1 db; sshpass -pab ssh h", "/usr/bin/mysqldump -p*** db; "
     "mariadb-dump -p*** db; sshpass -p*** ssh h"),
    ("mysql -p shop", "mysql -p shop"),  # -p apart: mysql asks for it, and shop is the database
])
def test_secrets_are_hidden_by_their_shape(text, shown):
    assert hide(text) == shown
    assert hide(shown) == shown  # hiding twice changes nothing more


ATTACKER = ["echo", "curl", "-H", "Authorization: Bearer SECRET1xyz", "-pSECRET6", "-u", "admin:SECRET9",
            "X-Auth-Token: SECRET10", "password: SECRET14", "-passSECRET16"]
VARIANTS = ["echo", "curl", "-H", "Proxy-Authorization: Basic SECRET20", "-H", "Cookie: sessionid=SECRET21; theme=dark",
            "-H", "X-Api-Key: SECRET22", "--user=bob:SECRET23", "--proxy-user", "p:SECRET24", "pwd=SECRET25",
            "client_secret: SECRET26", "private_key = SECRET27", "-H", "Accept: json", "-u", "admin", "-p5432", "-pR"]
MYSQL = ["echo", "mysqldump", "-uroot", "-pqxzw", "-p123456", "--single-transaction", "shop"]


@pytest.mark.parametrize("argv, secrets, shown", [
    (ATTACKER, ["SECRET1xyz", "SECRET6", "SECRET9", "SECRET10", "SECRET14", "SECRET16"],
     "echo curl -H 'Authorization: ***' -p*** -u admin:*** 'X-Auth-Token: ***' 'password: ***' -p***"),
    (VARIANTS, [f"SECRET{n}" for n in range(20, 28)],
     "echo curl -H 'Proxy-Authorization: ***' -H 'Cookie: ***' -H 'X-Api-Key: ***' --user=bob:*** --proxy-user p:*** "
     "pwd=*** 'client_secret: ***' 'private_key = ***' -H 'Accept: json' -u admin -p5432 -pR"),
    (MYSQL, ["qxzw", "123456"], "echo mysqldump -uroot -p*** -p*** --single-transaction shop"),
], ids=["the attacker's command", "near variants", "mysqldump"])
def test_secrets_in_an_actions_arguments_never_leave_lakedeck(tmp_path, argv, secrets, shown):
    """Through the real CLI: the confirmation, the output the command printed (echo prints every secret back),
    audit.jsonl and `audit --json` hold none of the secrets; what is not secret is shown as it is."""
    config = tmp_path / "lakedeck.yaml"
    config.write_text(yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "locks": str(tmp_path / "locks"),
                                      "services": [{"name": "svc", "kind": "command", "command": ["true"],
                                                    "actions": [{"id": "c1", "command": argv}]}]}))
    env = {**{k: v for k, v in os.environ.items() if k != "LAKEDECK_CONFIG"}, "XDG_STATE_HOME": str(tmp_path / "state")}

    def lakedeck(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tui.cli", *args, "-c", str(config)], cwd=Path(__file__).parent.parent,
                              env=env, capture_output=True, text=True, timeout=60)

    acted = lakedeck("action", "svc", "c1", "--yes")
    assert acted.returncode == 0, acted.stderr
    listed = lakedeck("audit", "--json")
    everything = acted.stdout + acted.stderr + listed.stdout + listed.stderr + (tmp_path / "audit.jsonl").read_text()
    assert [secret for secret in secrets if secret in everything] == []
    assert acted.stdout.splitlines()[0] == f"C1 svc (disruptive): {shown}"
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["event"], e["command"]) for e in entries] == [("confirmed", shown), ("succeeded", shown)]
    assert entries[1]["output"] and "***" in entries[1]["output"][0]


def test_an_argument_is_redacted_as_a_whole_and_a_header_does_not_swallow_the_next_one():
    action = Action("api", "x", "X", Tier.DISRUPTIVE,
                    argv=("curl", "-H", "X-Auth-Token:tok-1", "--user", "u:pw-2", "-H", "Accept: json", "https://h/x"))
    assert Redactor().command(action) == "curl -H X-Auth-Token:*** --user u:*** -H 'Accept: json' https://h/x"
    assert argv_secrets(action.argv) == {"tok-1", "pw-2"}
    # the output repeats them without their names: the known values go too
    assert Redactor().for_action(action).text("sent tok-1 as u (pw-2)") == "sent *** as u (***)"


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
    assert Redactor().command(argv) == "psql --password *** -c 'select 1'"


def test_option_secrets_keep_the_rule_and_spare_plain_values():
    found = option_secrets([{"headers": {"Authorization": "Bearer abc123", "Accept": "application/json"},
                             "password": "pw-1", "author": "alice@bastion", "url": "http://u:hunter2@h/x?token=tk-9",
                             "actions": [{"http": {"headers": {"X-Key": "k-999"}, "body": '{"secret": "sss"}'}}]}])
    assert {"Bearer abc123", "abc123", "pw-1", "hunter2", "tk-9", "k-999", "sss"} <= found
    assert "application/json" not in found and "alice@bastion" not in found


def test_a_sources_own_argument_list_is_read_as_one():
    """A source's command (a health check run with a password) is redacted like an action's: by argument."""
    found = option_secrets([{"command": ["mysqladmin", "-uroot", "-pqxzw", "ping"], "args": ["curl", "-u", "a:pw-7"]}])
    assert {"qxzw", "pw-7"} <= found and "ping" not in found and "root" not in found
