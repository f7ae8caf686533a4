"""Config: the file's rules, its errors (with their exact line and column), and where it is found."""

from __future__ import annotations

import json
import textwrap

import pytest

from backends import config as cfg
from backends.schema import ConfigError


def parse(text: str, environ: dict[str, str] | None = None) -> cfg.Config:
    return cfg.parse(textwrap.dedent(text), "lakedeck.yaml", environ or {})


def error_of(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text, environ)
    return str(caught.value)


def test_defaults_fill_what_is_not_said():
    config = parse("""
        services:
          - name: api
            kind: http
            url: http://127.0.0.1:8080/actuator/health
    """)
    assert config.refresh == 2.0 and config.theme == "dark" and config.history == 300
    assert config.thresholds == cfg.Thresholds(80.0, 90.0)
    (api,) = config.sources
    assert (api.section, api.name, api.kind, api.interval) == ("services", "api", "http", 2.0)
    assert api.timeout == pytest.approx(1.5)
    assert api.options["method"] == "GET" and api.options["verify_tls"] is True
    assert api.options["expect_status"] is None and api.options["headers"] == {}


def test_durations_and_per_source_refresh():
    config = parse("""
        refresh: 10s
        timeout: 500ms
        hosts:
          - name: here
            refresh: 2m
            timeout: 1m
        logs:
          - name: app
            path: /var/log/app.log
    """)
    here, app = config.sources
    assert (here.kind, here.interval, here.timeout) == ("local", 120.0, 60.0)
    assert (app.kind, app.interval, app.timeout) == ("file", 10.0, 0.5)


def test_environment_expansion_with_defaults():
    config = parse("""
        services:
          - name: api
            kind: http
            url: ${API_URL:-http://127.0.0.1:9000/health}
            headers:
              Authorization: Bearer ${TOKEN}
          - name: db
            kind: tcp
            port: ${DB_PORT}
    """, {"TOKEN": "s3cret", "DB_PORT": "5432"})
    api, db = config.sources
    assert api.options["url"] == "http://127.0.0.1:9000/health"
    assert api.options["headers"] == {"Authorization": "Bearer s3cret"}
    assert db.options["port"] == 5432


@pytest.mark.parametrize("text, expected", [
    ("refrsh: 2s\n", "lakedeck.yaml:1:1: unknown key 'refrsh' in the file (expected one of: refresh,"),
    ("services:\n  - name: a\n    kind: http\n    url: http://x\n    tiemout: 1s\n",
     "lakedeck.yaml:5:5: unknown key 'tiemout' in services[0] (expected one of: name, kind,"),
    ("services:\n  - name: a\n    kind: smtp\n",
     "lakedeck.yaml:3:11: services[0].kind is 'smtp' (expected one of: http, tcp, process, command, systemd, compose, "
     "supervisor, kubernetes)"),
    ("services:\n  - name: a\n    kind: tcp\n", "lakedeck.yaml:2:5: services[0] has no 'port' (expected port: a port number)"),
    ("services:\n  - name: a\n    kind: tcp\n    port: 70000\n",
     "lakedeck.yaml:4:11: services[0].port is 70000 (expected at most 65535)"),
    ("refresh: soon\n", "lakedeck.yaml:1:10: refresh is 'soon' (expected a duration such as 500ms, 5s, 2m, 24h)"),
    ("theme: neon\n", "lakedeck.yaml:1:8: theme is 'neon' (expected one of: dark, light, high-contrast, ansi)"),
    ("keys:\n  quitt: ctrl+q\n", "lakedeck.yaml:2:3: unknown key 'quitt' in keys (expected one of: pane.services,"),
    ("services: {name: a}\n", "lakedeck.yaml:1:11: services must be a list (got a mapping)"),
    ("refresh: 2s\nrefresh: 3s\n", "lakedeck.yaml:2:1: 'refresh' appears twice in the file (expected each key once)"),
    ("services:\n  - name: a\n   kind: tcp\n", "lakedeck.yaml:3:4: invalid YAML:"),
    ("thresholds: {warn: 95, critical: 90}\n",
     "lakedeck.yaml:1:13: thresholds: warn 95 is above critical 90 (expected warn <= critical)"),
    ("services:\n  - {name: a, kind: process}\n",
     "lakedeck.yaml:2:5: services[0] gives 0 of process, cmdline, pidfile (expected exactly one)"),
])
def test_errors_name_line_column_and_expectation(text, expected):
    assert error_of(text).startswith(expected)


def test_timeout_must_be_shorter_than_refresh():
    message = error_of("refresh: 2s\nservices:\n  - {name: a, kind: tcp, port: 1, timeout: 5s}\n")
    assert message == ("lakedeck.yaml:3:5: services[0]: timeout 5s is not shorter than refresh 2s "
                       "(expected a timeout below the refresh interval)")


def test_names_are_unique_across_sections():
    message = error_of("services:\n  - {name: a, kind: tcp, port: 1}\nlogs:\n  - {name: a, path: /x}\n")
    assert message.startswith("lakedeck.yaml:4:5: logs[0]: the name 'a' is used twice")


def test_missing_environment_variable_is_an_error_at_its_place():
    message = error_of("services:\n  - name: a\n    kind: http\n    url: http://h/${NOPE}\n")
    assert message == ("lakedeck.yaml:4:10: environment variable NOPE is not set "
                       "(export it, or write ${NOPE:-default})")


def test_empty_file_is_a_valid_config():
    assert parse("").sources == ()


def test_path_resolution_order(tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "lakedeck").mkdir(parents=True)
    xdg_file = xdg / "lakedeck" / "lakedeck.yaml"
    assert cfg.resolve_path(None, {"XDG_CONFIG_HOME": str(xdg)}) is None
    xdg_file.write_text("refresh: 3s\n")
    assert cfg.resolve_path(None, {"XDG_CONFIG_HOME": str(xdg)}) == xdg_file
    env = {"XDG_CONFIG_HOME": str(xdg), "LAKEDECK_CONFIG": "/from/env.yaml"}
    assert str(cfg.resolve_path(None, env)) == "/from/env.yaml"
    assert str(cfg.resolve_path("/explicit.yaml", env)) == "/explicit.yaml"
    assert cfg.load(None, {"XDG_CONFIG_HOME": str(xdg)}).refresh == 3.0


def test_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        cfg.load(str(tmp_path / "nope.yaml"), {})
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}:1:1: no such file (expected a lakedeck.yaml; see examples/)"


def test_json_schema_comes_from_the_same_definitions():
    schema = cfg.json_schema()
    json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(cfg.ROOT.fields)
    services = schema["properties"]["services"]["items"]["oneOf"]
    kinds = {branch["properties"]["kind"]["const"] for branch in services}
    assert kinds == set(cfg.SERVICE_KINDS)
    tcp = next(b for b in services if b["properties"]["kind"]["const"] == "tcp")
    assert set(tcp["required"]) == {"name", "kind", "port"}
    assert schema["properties"]["keys"]["propertyNames"]["enum"][0] == "pane.services"


def test_refresh_flag_changes_sources_on_the_default_interval():
    config = parse("services:\n  - {name: a, kind: tcp, port: 1}\n  - {name: b, kind: tcp, port: 2, refresh: 30s}\n")
    faster = cfg.with_refresh(config, 0.2)
    a, b = faster.sources
    assert (a.interval, a.timeout) == (0.2, pytest.approx(0.15))
    assert b.interval == 30.0


def test_examples_are_valid():
    from pathlib import Path

    examples = sorted(Path(__file__).parent.parent.joinpath("examples").glob("*.yaml"))
    assert examples, "examples/ should hold sample configs"
    for example in examples:
        cfg.load_file(example, {"API_TOKEN": "x"})
