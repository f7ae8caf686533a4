"""Metrics and alerts through the console, against a real Prometheus (scraping a real node_exporter as three
hosts and a down one), a real Alertmanager it sends alerts to, and lakedeck's own rules. Keys in; screens,
Alertmanager's state and the audit log out."""

from __future__ import annotations

import json
import time
import urllib.request

import yaml

from backends import config as cfg
from backends.model import AlertReading, HostReading, State
from test_adapter_alertmanager import post_alerts
from tui.app import LakedeckApp
from ui_support import choose, screen_text, until
from widgets.ask_modal import AskModal
from widgets.confirm import ARM_DELAY, ConfirmModal
from widgets.status_table import StatusTable


def make_app(tmp_path, stack, **root) -> LakedeckApp:
    text = yaml.safe_dump({
        "audit_log": str(tmp_path / "audit.jsonl"), "refresh": "2s",
        "store": {"path": str(tmp_path / "history.duckdb")},
        "hosts": [{"name": "fleet", "kind": "prometheus", "url": stack.prometheus_url, "selector": 'job="node"'}],
        "metrics": [{"name": "prom", "url": stack.prometheus_url, "targets": False, "gauges": [
            {"name": "scrapes up", "query": 'avg(up{job="node"}) * 100', "unit": "%",
             "levels": {"warn": 99, "critical": 50, "below": True}}]}],
        "alerts": [{"name": "prom-alerts", "kind": "prometheus", "url": stack.prometheus_url},
                   {"name": "am", "kind": "alertmanager", "url": stack.alertmanager_url, "author": "oncall@bastion"}],
        "rules": [{"name": "node_down", "source": "fleet", "metric": "up", "below": 1, "severity": "critical",
                   "description": "the host stopped answering its scrapes"}],
        **root,
    })
    return LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1")


async def wait_for(pilot, condition, seconds: float = 60.0) -> None:
    """Wait for what the test needs; the bound is generous because on a loaded machine a poll may time out, and
    the source then backs off (doubling from the refresh) before it reads again."""
    assert await until(pilot, condition, seconds), "condition never became true"


def alerts_shown(app) -> list[AlertReading]:
    table = app.dashboard.query_one("#alerts-table", StatusTable)
    return [app.engine.readings[key] for key in table.keys]


def shown_by_name(app) -> dict[str, AlertReading]:
    """The alerts on screen by name (a silence's row is named after the alert it silences: left out)."""
    return {a.name: a for a in alerts_shown(app) if a.status != "silence"}


async def test_fleet_alerts_and_a_silence_through_the_keys(tmp_path, prometheus):
    prometheus.wait_for_alertmanager()
    app = make_app(tmp_path, prometheus)
    rung: list[int] = []
    app.bell = lambda: rung.append(1)
    async with app.run_test(size=(160, 50)) as pilot:
        hosts = app.dashboard.query_one("#hosts-table", StatusTable)
        await wait_for(pilot, lambda: len(hosts.keys) == 4 and hosts.keys[0] == "fleet:host-down")  # red first
        down = app.engine.readings["fleet:host-down"]
        assert isinstance(down, HostReading) and down.state is State.CRITICAL and not down.up
        text = screen_text(app)
        for host in ("host-a", "host-b", "host-c"):
            assert host in text
        assert app.engine.readings["prom:scrapes up"].state is State.WARN  # 3 of 4 up: 75%, at or below 99, above 50

        names = prometheus.alert_names
        await wait_for(pilot, lambda: {names["firing"], names["pending"], names["down"], "node_down"}
                       <= shown_by_name(app).keys())
        shown = shown_by_name(app)
        assert [a.name for a in alerts_shown(app)].count(names["firing"]) == 1  # Prometheus' and Alertmanager's: one row
        assert shown[names["firing"]].origin == "alertmanager" and shown[names["pending"]].status == "pending"
        assert shown["node_down"].status == "firing" and shown["node_down"].target == "fleet:host-down"
        header = screen_text(app).splitlines()[0]
        assert "ALERTS 2 critical 1 warning" in header

        rung.clear()
        post_alerts(prometheus.alertmanager_url, {"alertname": "FreshCritical", "severity": "critical",
                                                  "instance": "db:5432"})
        await wait_for(pilot, lambda: "FreshCritical" in shown_by_name(app))
        await wait_for(pilot, lambda: rung)  # a new critical rings once
        assert len(rung) == 1

        await pilot.press("7")
        table = app.dashboard.query_one("#alerts-table", StatusTable)
        key = shown_by_name(app)[names["firing"]].key
        table.move_cursor(row=table.keys.index(key))
        await pilot.press("a")
        await wait_for(pilot, lambda: "Silence" in screen_text(app))
        await choose(pilot, app, "Silence")
        await wait_for(pilot, lambda: isinstance(app.screen, AskModal))
        await pilot.press(*"45m noisy in tests", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert '"comment": "noisy in tests"' in screen_text(app).replace("\n", "")
        await pilot.pause(ARM_DELAY)
        await pilot.press("tab", "enter")  # Cancel has the focus
        await wait_for(pilot, lambda: shown_by_name(app)[names["firing"]].status == "silenced"
                       and any(a.status == "silence" and a.name == names["firing"] for a in alerts_shown(app)))
        assert "◌ silenced" in screen_text(app) and "⏸ silence" in screen_text(app)

    with urllib.request.urlopen(f"{prometheus.alertmanager_url}/api/v2/silences", timeout=5) as answer:
        silences = json.load(answer)
    assert any(s["comment"] == "noisy in tests" and s["createdBy"] == "oncall@bastion" for s in silences)
    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["event"], e["action"]) for e in events] == [
        ("requested", "silence"), ("confirmed", "silence"), ("succeeded", "silence")]


async def test_sparklines_are_full_right_after_a_restart(tmp_path):
    """The first console writes this machine's gauges to the store; the second draws them at once."""
    text = yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "refresh": "500ms",
                           "store": {"path": str(tmp_path / "history.duckdb"), "every": "1s"},
                           "hosts": [{"name": "local"}]})
    config = cfg.parse(text, "t.yaml", {})
    first = LakedeckApp(config, hostname="bastion-1")
    async with first.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: first.engine.store is not None)  # opened a few seconds after the start
        attached = len(first.engine.history.get("local:memory", ()))
        await wait_for(pilot, lambda: len(first.engine.history["local:memory"]) >= attached + 8)  # 4 s more
        assert first.engine.store.flush()
    stopped = time.time()
    restarted = LakedeckApp(config, hostname="bastion-1")
    async with restarted.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: restarted.engine.store is not None)
        earlier = [ts for ts, _ in restarted.engine.history.get("local:memory", ()) if ts < stopped]
        assert len(earlier) >= 3  # the store keeps one point a second (`every`): about 4 were written
        gauges = restarted.dashboard.query_one("#gauges-table", StatusTable)
        await wait_for(pilot, lambda: "local:memory" in gauges.keys)
        assert "local:memory" in restarted.engine.history
