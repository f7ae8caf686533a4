"""The config of metrics, fleet hosts, alert sources, rules, the bell and the history store: defaults, and
errors that name the place and say what was expected."""

from __future__ import annotations

import pytest

from backends import config as cfg
from backends.durations import parse_duration
from backends.schema import ConfigError


def parse(text: str) -> cfg.Config:
    return cfg.parse(text, "t.yaml", {})


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return str(caught.value)


def test_rules_become_one_source_after_the_others_with_their_defaults():
    config = parse("""
refresh: 5s
services: [{name: api, kind: tcp, port: 80}]
rules:
  - {name: api_down, source: api, state: critical}
""")
    rules = config.sources[-1]
    assert (rules.section, rules.name, rules.kind, rules.interval) == ("alerts", "rules", "rules", 5.0)
    (rule,) = rules.options["rules"]
    assert rule["for"] == 0.0 and rule["clear_for"] == 60.0 and rule["severity"] == "warning" and rule["metric"] == "value"
    assert config.bell == "critical"
    assert config.store == {"enabled": True, "path": None, "retention": 7 * 86400.0, "every": 10.0}


def test_no_rules_no_rules_source():
    assert [s.name for s in parse("services: [{name: api, kind: tcp, port: 80}]").sources] == ["api"]


@pytest.mark.parametrize("rule, expected", [
    ("{name: r, source: a, above: 1, below: 2}", "t.yaml:3:5: rules[0] gives 2 of above, below, state (expected exactly one condition)"),
    ("{name: r, source: a}", "t.yaml:3:5: rules[0] gives 0 of above, below, state (expected exactly one condition)"),
    ("{name: r, source: a, above: 90, clear: 95}", "t.yaml:3:5: rules[0].clear 95 does not lie on the good side of the threshold"),
    ("{name: r, source: a, below: 10, clear: 5}", "t.yaml:3:5: rules[0].clear 5 does not lie on the good side of the threshold"),
    ("{name: r, source: a, above: 1, severity: page}", "t.yaml:3:46: rules[0].severity is 'page' (expected one of: info, warning, critical)"),
    ("{name: r, source: a, state: down}", "t.yaml:3:33: rules[0].state is 'down' (expected one of: warn, unknown, critical)"),
])
def test_rule_errors_name_the_place(rule, expected):
    text = f"services: [{{name: a, kind: tcp, port: 80}}]\nrules:\n  - {rule}\n"
    assert error_of(text).startswith(expected)


def test_rule_names_are_unique():
    text = "services: [{name: a, kind: tcp, port: 80}]\nrules:\n  - {name: r, source: a, above: 1}\n  - {name: r, source: a, below: 0}\n"
    assert error_of(text) == "t.yaml:4:5: rules[1]: the name 'r' is used twice (expected unique rule names)"


def test_a_source_cannot_take_the_rules_sources_name():
    text = "services: [{name: rules, kind: tcp, port: 80}]\nrules: [{name: r, source: rules, above: 1}]\n"
    assert "a source is named 'rules'" in error_of(text)


def test_gauge_levels_either_way_up():
    config = parse("""
metrics:
  - name: prom
    url: http://127.0.0.1:9090
    gauges:
      - {name: success, query: up, unit: "%", levels: {warn: 99, critical: 95, below: true}}
""")
    (gauge,) = config.sources[0].options["gauges"]
    assert config.sources[0].kind == "prometheus"  # the default kind of metrics:
    assert gauge["levels"] == {"warn": 99, "critical": 95, "below": True} and gauge["range"] == 3600.0
    assert "with below: true, warn 95 is below critical 99" in error_of("""
metrics: [{name: p, url: "http://x", gauges: [{name: s, query: up, levels: {warn: 95, critical: 99, below: true}}]}]
""")


def test_alert_sources_and_their_tier_overrides():
    config = parse("""
alerts:
  - {name: am, kind: alertmanager, url: http://127.0.0.1:9093, silence: 4h, actions: [{id: silence, tier: destructive}]}
  - {name: prom, kind: prometheus, url: http://127.0.0.1:9090}
""")
    am = config.sources[0]
    assert am.options["silence"] == 4 * 3600.0 and am.options["author"] is None
    problem = error_of("alerts: [{name: am, kind: alertmanager, url: http://x, actions: [{id: mute, tier: read}]}]")
    assert "'mute' is not an action of a alertmanager alerts source" in problem and "ack, unack, silence, expire" in problem


def test_store_and_bell_settings():
    config = parse("store: {retention: 2d, every: 30s, path: /tmp/h.duckdb}\nbell: off\n")
    assert config.store["retention"] == 2 * 86400.0 and config.store["every"] == 30.0
    assert config.store["path"] == "/tmp/h.duckdb" and config.bell == "off"
    assert error_of("store: {retention: 1m}") == "t.yaml:1:20: store.retention is '1m' (expected at least 3600s)"


def test_durations_read_back_what_they_print():
    for text, seconds in (("1h30m", 5400.0), ("2d04h", 187200.0), ("3m12s", 192.0), ("2h00m", 7200.0)):
        assert parse_duration(text) == seconds
    with pytest.raises(ValueError):
        parse_duration("1h 30m x")
