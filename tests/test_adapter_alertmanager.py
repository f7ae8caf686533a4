"""The Alertmanager adapter against a real Alertmanager 0.25 on loopback: alerts posted to its API v2 (as
Prometheus posts them), silences created and expired through the engine's action path, local acks."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import urllib.request

import pytest

from backends import headless
from backends.adapters.alert_base import fingerprint
from backends.adapters.alertmanager import parse_silence
from backends.engine import Engine
from backends.model import AlertReading, State
from conftest_prometheus import free_port
from helpers import config_for

DISK = {"alertname": "DiskAlmostFull", "severity": "critical", "instance": "web-01:9100"}
LATENCY = {"alertname": "HighLatency", "severity": "warn", "instance": "api:8080"}


def post_alerts(url: str, *alerts: dict, ends_in: float | None = None) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    body = []
    for labels in alerts:
        item = {"labels": labels, "annotations": {"summary": f"{labels['alertname']} [b]on[/b] {labels['instance']}"},
                "startsAt": (now - dt.timedelta(minutes=3)).isoformat()}
        if ends_in is not None:
            item["endsAt"] = (now + dt.timedelta(seconds=ends_in)).isoformat()
        body.append(item)
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def engine_for(url: str, tmp_path, **options) -> Engine:
    return Engine(config_for("alerts", "alertmanager", name="am", url=url, timeout="3s", refresh="5s",
                             root={"audit_log": str(tmp_path / "audit.jsonl")}, **options))


async def alerts_of(engine: Engine) -> dict[str, AlertReading]:
    update = await engine.poll_once("am")
    out = {}
    for reading in update.readings:
        assert isinstance(reading, AlertReading) and "\n" not in reading.reason
        out[reading.name if reading.status != "silence" else f"silence:{reading.name}"] = reading
    return out


async def settle(engine: Engine, check, seconds: float = 10.0) -> dict[str, AlertReading]:
    """Alertmanager applies a new silence or alert within a moment: poll until ``check`` holds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        alerts = await alerts_of(engine)
        if check(alerts) or asyncio.get_running_loop().time() > deadline:
            return alerts
        await asyncio.sleep(0.2)


async def test_alerts_read_with_severity_since_target_and_why(alertmanager, tmp_path):
    post_alerts(alertmanager.url, DISK, LATENCY)
    engine = engine_for(alertmanager.url, tmp_path)
    engine.build()
    alerts = await settle(engine, lambda a: {"DiskAlmostFull", "HighLatency"} <= a.keys())
    disk, latency = alerts["DiskAlmostFull"], alerts["HighLatency"]
    assert (disk.state, disk.severity, disk.status, disk.origin) == (State.CRITICAL, "critical", "firing", "alertmanager")
    assert latency.severity == "warning" and latency.state is State.WARN  # "warn" read as warning
    assert disk.target == "web-01:9100" and disk.why == "DiskAlmostFull [b]on[/b] web-01:9100"  # text, not markup
    assert disk.fingerprint == fingerprint(DISK)  # the same identity Prometheus' copy of it gets
    assert disk.key == f"am:DiskAlmostFull:{fingerprint(DISK)[:8]}"
    assert 150 < engine.clock() - disk.since < 250  # started 3 minutes ago
    await engine.stop()


async def test_silence_then_expire_through_the_engine_with_the_audit_trail(alertmanager, tmp_path):
    post_alerts(alertmanager.url, DISK)
    engine = engine_for(alertmanager.url, tmp_path, author="oncall@bastion")
    engine.build()
    disk = (await settle(engine, lambda a: "DiskAlmostFull" in a))["DiskAlmostFull"]
    silence = engine.find_action(disk.key, "silence")
    assert silence.ask and engine.refusal(silence) == ""
    with pytest.raises(ValueError, match="between 1m and 30d"):
        engine.sources["am"].with_value(silence, "30s too short")
    filled = engine.sources["am"].with_value(silence, "90m disk swap INC-42")
    sent = json.loads(filled.call.split(" ", 2)[2])
    assert sent["comment"] == "disk swap INC-42" and sent["createdBy"] == "oncall@bastion"
    assert {m["name"]: m["value"] for m in sent["matchers"]} == DISK

    result = await engine.run_action(filled, lambda line: None)
    assert result.ok, result.summary
    alerts = await settle(engine, lambda a: a["DiskAlmostFull"].status == "silenced")
    assert alerts["DiskAlmostFull"].status == "silenced" and alerts["DiskAlmostFull"].state is State.OK
    row = alerts["silence:DiskAlmostFull"]
    assert row.status == "silence" and row.why == "disk swap INC-42 — oncall@bastion"
    assert 88 * 60 < row.until - engine.clock() <= 90 * 60

    expire = engine.find_action(row.key, "expire")
    assert expire.tier.label == "disruptive"
    result = await engine.run_action(expire, lambda line: None)
    assert result.ok, result.summary
    alerts = await settle(engine, lambda a: a["DiskAlmostFull"].status == "firing" and "silence:DiskAlmostFull" not in a)
    assert alerts["DiskAlmostFull"].status == "firing" and "silence:DiskAlmostFull" not in alerts

    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["event"], e["action"]) for e in events] == [
        ("confirmed", "silence"), ("succeeded", "silence"), ("confirmed", "expire"), ("succeeded", "expire")]
    assert "disk swap INC-42" in events[0]["command"]
    await engine.stop()


async def test_ack_is_local_and_lasts_until_the_alert_resolves(alertmanager, tmp_path):
    labels = {"alertname": "AckMe", "severity": "critical", "instance": "db:5432"}
    post_alerts(alertmanager.url, labels)
    engine = engine_for(alertmanager.url, tmp_path)
    engine.build()
    alert = (await settle(engine, lambda a: "AckMe" in a))["AckMe"]
    ack = engine.find_action(alert.key, "ack")
    assert ack.tier.label == "read"
    assert (await engine.run_action(ack, lambda line: None)).ok
    alert = (await alerts_of(engine))["AckMe"]
    assert alert.acked and alert.state is State.CRITICAL  # still counts in `lakedeck check`: ack is not a fix
    assert engine.find_action(alert.key, "unack")

    post_alerts(alertmanager.url, labels, ends_in=-1)  # resolved
    alerts = await settle(engine, lambda a: "AckMe" not in a)
    assert "AckMe" not in alerts and engine.sources["am"].acked == set()
    post_alerts(alertmanager.url, labels)  # fires again: a new alert, not acked
    assert not (await settle(engine, lambda a: "AckMe" in a))["AckMe"].acked
    await engine.stop()


def test_silence_text_defaults_and_refusals():
    assert parse_silence("4h disk swap", 7200) == (14400, "disk swap")
    assert parse_silence("disk swap INC-42", 7200) == (7200, "disk swap INC-42")  # no duration: the default
    assert parse_silence("1h30m swap", 7200) == (5400, "swap")
    for text, problem in (("2h", "say why"), ("", "say why"), ("31d x", "between 1m and 30d")):
        with pytest.raises(ValueError, match=problem):
            parse_silence(text, 7200)


async def test_an_alertmanager_that_cannot_be_reached_is_a_red_row_in_the_alerts_pane(tmp_path):
    engine = engine_for(f"http://127.0.0.1:{free_port()}", tmp_path)
    engine.build()
    update = await engine.poll_once("am")
    (row,) = update.readings
    assert isinstance(row, AlertReading) and row.status == "error" and row.state is State.UNKNOWN
    assert "refused" in row.reason and "127.0.0.1" in row.reason
    await engine.stop()


def test_silence_headless_with_lakedeck_action(alertmanager, tmp_path):
    labels = {"alertname": "Headless", "severity": "warning", "instance": "etl:1"}
    post_alerts(alertmanager.url, labels)
    config = config_for("alerts", "alertmanager", name="am", url=alertmanager.url, timeout="3s", refresh="5s",
                        root={"audit_log": str(tmp_path / "audit.jsonl")})
    key = f"am:Headless:{fingerprint(labels)[:8]}"
    out, err = io.StringIO(), io.StringIO()
    assert headless.run_action(config, key, "silence", value="oops", out=out, err=err) == headless.EXIT_NOT_CONFIRMED
    assert "add --yes" in err.getvalue() and '"comment": "oops"' in out.getvalue()
    out, err = io.StringIO(), io.StringIO()
    code = headless.run_action(config, key, "silence", value="45m ETL rerun in progress", yes=True, out=out, err=err)
    assert code == 0, err.getvalue()
    assert "silence " in out.getvalue() and "until" in out.getvalue()
    with urllib.request.urlopen(f"{alertmanager.url}/api/v2/silences", timeout=5) as answer:
        silences = json.load(answer)
    assert any(s["comment"] == "ETL rerun in progress" and s["status"]["state"] == "active" for s in silences)


def test_lakedeck_check_lists_alerts_from_alertmanager_and_from_rules(alertmanager, tmp_path):
    from backends.check import run_check
    from backends.config import parse

    post_alerts(alertmanager.url, {"alertname": "Checked", "severity": "warning", "instance": "etl:2"})
    closed = free_port()
    config = parse(json.dumps({
        "audit_log": str(tmp_path / "audit.jsonl"),
        "services": [{"name": "api", "kind": "tcp", "port": closed}],
        "alerts": [{"name": "am", "kind": "alertmanager", "url": alertmanager.url}],
        "rules": [{"name": "api_down", "source": "api", "state": "critical", "severity": "critical",
                   "description": "restart it"},
                  {"name": "api_down_long", "source": "api", "state": "critical", "for": "5m"}],
    }), "t.yaml", {})
    out = io.StringIO()
    assert run_check(config, out, as_json_output=True) == 2
    alerts = {r["key"]: r["alert"] for r in json.loads(out.getvalue())["readings"] if "alert" in r}
    fired = alerts["rules:api_down:api"]
    assert (fired["origin"], fired["severity"], fired["status"], fired["target"]) == ("lakedeck", "critical", "firing", "api")
    assert "restart it" in fired["why"]
    assert alerts["rules:api_down_long:api"]["status"] == "pending"  # one check cannot see 5 minutes pass
    checked = next(a for a in alerts.values() if a["name"] == "Checked")
    assert checked["severity"] == "warning" and checked["labels"]["instance"] == "etl:2"
    out = io.StringIO()
    run_check(config, out)
    table = out.getvalue()
    assert "rules:api_down:api" in table and "lakedeck critical firing" in table
