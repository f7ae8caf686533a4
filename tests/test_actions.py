"""Actions without a screen: tiers, read-only, one at a time, the audit log, and `lakedeck action`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from backends import config as cfg
from backends.actions import Action, ActionRefused, Tier, merge
from backends.audit import AuditLog
from backends.redact import option_secrets
from backends.engine import Engine


def make_config(tmp_path: Path, services: list[dict], **root) -> cfg.Config:
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "services": services, **root})
    return cfg.parse(text, str(tmp_path / "lakedeck.yaml"), {})


def audit_events(tmp_path: Path) -> list[tuple[str, str]]:
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    return [(json.loads(line)["event"], json.loads(line)["action"]) for line in lines]


SERVICE = {
    "name": "api", "kind": "tcp", "port": 1,
    "actions": [
        {"id": "hello", "tier": "read", "command": ["sh", "-c", "echo hi; echo there"]},
        {"id": "restart", "command": ["sh", "-c", "echo restarting; sleep 0.3; echo done"], "expect": "restarting"},
        {"id": "break", "command": ["sh", "-c", "echo oops >&2; exit 7"]},
    ],
}


def test_config_can_raise_a_tier_but_never_lower_it():
    declared = [Action("svc", "restart", "Restart", Tier.DISRUPTIVE, argv=("systemctl", "restart", "x")),
                Action("svc", "status", "Status", Tier.READ, argv=("systemctl", "status", "x"))]
    merged = {a.id: a for a in merge(declared, [
        {"id": "restart", "tier": "read"},  # lower: ignored
        {"id": "status", "tier": "destructive"},  # higher: taken
        {"id": "make-up", "command": ["make", "up"], "tier": None},
        {"id": "restart", "command": ["true"], "tier": "read"},  # a replacement keeps the declared floor
    ], "svc")}
    assert merged["status"].tier is Tier.DESTRUCTIVE
    assert merged["restart"].tier is Tier.DISRUPTIVE and merged["restart"].argv == ("true",)
    assert merged["make-up"].tier is Tier.DISRUPTIVE and merged["make-up"].argv == ("make", "up")


async def test_run_streams_output_and_leaves_audit_lines(tmp_path):
    engine = Engine(make_config(tmp_path, [SERVICE]))
    engine.build()
    lines: list[str] = []
    result = await engine.run_action(engine.find_action("api", "hello"), lines.append)
    assert result.ok and result.exit_code == 0 and lines == ["hi", "there"]
    failed = await engine.run_action(engine.find_action("api", "break"), lines.append)
    assert not failed.ok and failed.exit_code == 7 and failed.output == ["oops"]
    assert audit_events(tmp_path) == [("confirmed", "hello"), ("succeeded", "hello"),
                                      ("confirmed", "break"), ("failed", "break")]
    entry = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["exit_code"] == 7 and entry["output"] == ["oops"] and entry["tier"] == "disruptive"
    assert entry["command"] == "sh -c 'echo oops >&2; exit 7'" and entry["user"] and entry["host"]


async def test_a_second_action_on_the_same_target_is_refused_while_one_runs(tmp_path):
    engine = Engine(make_config(tmp_path, [SERVICE]))
    engine.build()
    first = asyncio.create_task(engine.run_action(engine.find_action("api", "restart"), lambda line: None))
    await asyncio.sleep(0.1)
    assert engine.transitions["api"] == "restarting"
    with pytest.raises(ActionRefused, match=rf"api is busy: restart by \S+ \(pid {os.getpid()}\) since "):
        await engine.run_action(engine.find_action("api", "hello"), lambda line: None)
    assert (await first).ok
    assert ("refused", "hello") in audit_events(tmp_path)


async def test_read_only_hides_and_refuses_everything_above_read(tmp_path):
    for config in (make_config(tmp_path, [SERVICE], read_only=True),
                   make_config(tmp_path, [{**SERVICE, "read_only": True}])):
        engine = Engine(config)
        engine.build()
        assert [a.id for a in engine.actions_for("api")] == ["hello"]
        restart = engine.find_action("api", "restart")
        with pytest.raises(ActionRefused, match="read-only"):
            await engine.run_action(restart, lambda line: None)
    assert audit_events(tmp_path)[-1] == ("refused", "restart")


async def test_unknown_action_names_what_there_is(tmp_path):
    engine = Engine(make_config(tmp_path, [SERVICE]))
    engine.build()
    with pytest.raises(ActionRefused, match=r"api has no action 'nope' \(it has: hello, break, restart\)"):
        engine.find_action("api", "nope")


async def test_a_hung_action_is_killed_at_its_timeout(tmp_path):
    service = {**SERVICE, "actions": [{"id": "hang", "command": ["sleep", "60"], "timeout": "300ms"}]}
    engine = Engine(make_config(tmp_path, [service]))
    engine.build()
    result = await engine.run_action(engine.find_action("api", "hang"), lambda line: None)
    assert not result.ok and result.error == "still running after 0.3s; killed"


async def test_http_action_against_a_real_server(tmp_path, http_server):
    service = {"name": "api", "kind": "tcp", "port": 1, "actions": [
        {"id": "refresh", "http": {"url": f"{http_server}/actuator/refresh", "headers": {"X-Token": "t0ps3cret"}}},
        {"id": "gone", "http": {"method": "GET", "url": f"{http_server}/nowhere"}},
    ]}
    engine = Engine(make_config(tmp_path, [service]))
    engine.build()
    lines: list[str] = []
    ok = await engine.run_action(engine.find_action("api", "refresh"), lines.append)
    assert ok.ok and ok.exit_code == 201 and lines == ["HTTP 201 Created", '{"created": true}']
    missing = await engine.run_action(engine.find_action("api", "gone"), lines.append)
    assert not missing.ok and missing.error == "HTTP 404 Not Found"
    log = (tmp_path / "audit.jsonl").read_text()
    assert "t0ps3cret" not in log and "X-Token: ***" in log


def test_secrets_are_found_in_headers_passwords_and_urls():
    secrets = option_secrets([{"headers": {"Authorization": "Bearer abc123"}, "password": "pw-1",
                           "url": "http://u:hunter2@127.0.0.1:9001/RPC2",
                           "actions": [{"http": {"headers": {"X-Key": "k-999"}}}]}])
    assert {"Bearer abc123", "abc123", "pw-1", "hunter2", "k-999"} <= secrets
    log = AuditLog(Path("/nonexistent"), secrets)
    assert log.redact("curl -H 'Authorization: Bearer abc123' http://u:hunter2@h") == \
        "curl -H 'Authorization: ***' http://u:***@h"


def test_damaged_audit_lines_are_skipped(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"time": "2026-01-01T00:00:00Z", "event": "confirmed"}\nnot json\n')
    assert [e["event"] for e in AuditLog(path).read()] == ["confirmed"]


def lakedeck(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LAKEDECK_CONFIG"}
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=30,
                          env=env, cwd=Path(__file__).parent.parent)


def test_headless_action_exit_codes(tmp_path):
    path = tmp_path / "lakedeck.yaml"
    path.write_text(yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "services": [SERVICE]}))
    c = str(path)
    out = lakedeck("action", "-c", c, "api", "hello", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.splitlines()[1:3] == ["hi", "there"]
    out = lakedeck("action", "-c", c, "api", "restart", cwd=tmp_path)
    assert out.returncode == 3 and "add --yes to run it" in out.stderr
    assert out.stdout.splitlines() == ["Restart api (disruptive): sh -c 'echo restarting; sleep 0.3; echo done'"]
    out = lakedeck("action", "-c", c, "api", "restart", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0 and "dry run: nothing was run" in out.stdout
    out = lakedeck("action", "-c", c, "api", "restart", "--yes", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.splitlines()[1:3] == ["restarting", "done"]
    out = lakedeck("action", "-c", c, "api", "break", "--yes", cwd=tmp_path)
    assert out.returncode == 1 and "failed: exit 7" in out.stderr
    out = lakedeck("action", "-c", c, "api", "restart", "--yes", "--read-only", cwd=tmp_path)
    assert out.returncode == 2 and "read-only" in out.stderr
    out = lakedeck("action", "-c", c, "nope", "restart", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip() == "lakedeck: no source or pipeline named 'nope' (see lakedeck check)"
    assert [e for e, _ in audit_events(tmp_path)] == [
        "confirmed", "succeeded", "requested", "confirmed", "succeeded", "confirmed", "failed", "refused"]
    out = lakedeck("audit", "-c", c, "--since", "1h", cwd=tmp_path)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 8 and "refused" in out.stdout
    out = lakedeck("audit", "-c", c, "--json", cwd=tmp_path)
    assert len(json.loads(out.stdout)) == 8


@pytest.mark.parametrize("kind, options, state", [
    ("systemd", {"unit": "web.service"}, {}),
    ("compose", {"file": "compose.yaml", "service": "web"}, {"running": 2}),
    ("supervisor", {"url": "http://127.0.0.1:9001/RPC2", "program": "web"}, {}),
    ("kubernetes", {"deployment": "web"}, {"desired": 2}),
])
def test_the_action_ids_config_may_override_are_exactly_what_each_adapter_offers(kind, options, state):
    """ACTION_IDS is what config validation checks tier overrides against: it must not drift from the adapters."""
    from backends.adapters import ACTION_IDS
    from helpers import source_for

    source = source_for("services", kind, name="web", **options)
    for attribute, value in state.items():  # a polled state, in which every action is offered
        setattr(source, attribute, value)
    assert tuple(action.id for action in source.actions()) == ACTION_IDS[("services", kind)]


def test_a_tier_override_for_an_action_the_adapter_lacks_is_a_config_error():
    from backends import config as cfg
    from backends.schema import ConfigError

    text = ("services:\n  - name: web\n    kind: supervisor\n    url: http://127.0.0.1:9001/RPC2\n    program: web\n"
            "    actions:\n      - {id: restrat, tier: destructive}\n      - {id: flush, command: [\"true\"]}\n")
    with pytest.raises(ConfigError) as raised:
        cfg.parse(text, "x.yaml", {})
    assert str(raised.value) == (
        "x.yaml:7:9: services[0].actions[0]: 'restrat' is not an action of a supervisor service, so a tier for it "
        "changes nothing (expected one of its actions: start, stop, restart, tail; or give the new action a command "
        "or http)")
    fixed = cfg.parse(text.replace("restrat", "restart"), "x.yaml", {})
    assert [entry["id"] for entry in fixed.sources[0].options["actions"]] == ["restart", "flush"]
