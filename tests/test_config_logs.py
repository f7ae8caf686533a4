"""Config of the log kinds (command, journald, compose, supervisor) and of a service's ``logs:`` reference."""

from __future__ import annotations

import textwrap

import pytest

from backends import config as cfg
from backends.schema import ConfigError


def parse(text: str) -> cfg.Config:
    return cfg.parse(textwrap.dedent(text), "lakedeck.yaml", {"SV_PASSWORD": "s3cret"})


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return str(caught.value)


def test_every_log_kind_validates_with_its_defaults():
    config = parse("""
        logs:
          - name: api pods
            kind: command
            command: [kubectl, logs, -f, deploy/api]
          - name: trino
            kind: journald
            unit: trino.service
          - name: shop web
            kind: compose
            file: /srv/shop/compose.yaml
            service: web
          - name: worker
            kind: supervisor
            url: unix:///run/supervisor.sock
            program: worker
            password: ${SV_PASSWORD}
            stream: stderr
          - name: app
            path: /var/log/app.log
    """)
    options = {s.name: (s.kind, dict(s.options)) for s in config.section("logs")}
    assert options == {
        "api pods": ("command", {"command": ["kubectl", "logs", "-f", "deploy/api"], "cwd": None, "env": {},
                                 "resume_since": None}),
        "trino": ("journald", {"unit": "trino.service", "user": False, "lines": 200, "journalctl": "journalctl"}),
        "shop web": ("compose", {"file": "/srv/shop/compose.yaml", "service": "web", "project": None, "lines": 200}),
        "worker": ("supervisor", {"url": "unix:///run/supervisor.sock", "program": "worker", "username": None,
                                  "password": "s3cret", "stream": "stderr", "lines": 200}),
        "app": ("file", {"path": "/var/log/app.log", "lines": 200}),
    }


@pytest.mark.parametrize("text, expected", [
    ("logs:\n  - {name: t, kind: journald}\n",
     "lakedeck.yaml:2:5: logs[0] has no 'unit' (expected unit: the systemd unit, e.g. trino.service)"),
    ("logs:\n  - {name: t, kind: command, command: []}\n",
     "lakedeck.yaml:2:39: logs[0].command has 0 items (expected at least 1)"),
    ("logs:\n  - {name: t, kind: supervisor, url: 'http://h/RPC2', program: p, stream: both}\n",
     "lakedeck.yaml:2:75: logs[0].stream is 'both' (expected one of: stdout, stderr)"),
    ("logs:\n  - {name: t, kind: compose, file: c.yaml}\n",
     "lakedeck.yaml:2:5: logs[0] has no 'service' (expected service: the service in it)"),
    ("logs:\n  - {name: t, kind: journald, unit: u, lines: -1}\n",
     "lakedeck.yaml:2:47: logs[0].lines is -1 (expected at least 0)"),
    ("logs:\n  - {name: t, kind: syslog}\n",
     "lakedeck.yaml:2:21: logs[0].kind is 'syslog' (expected one of: file, command, journald, compose, supervisor)"),
])
def test_log_kind_errors_name_line_and_column(text, expected):
    assert error_of(text) == expected


def test_a_service_names_the_source_that_holds_its_logs():
    config = parse("""
        services:
          - {name: trino, kind: systemd, unit: trino.service, logs: trino journal}
          - {name: api, kind: tcp, port: 8080}
        logs:
          - {name: trino journal, kind: journald, unit: trino.service}
    """)
    trino, api = config.section("services")
    assert trino.options["logs"] == "trino journal" and api.options["logs"] is None


def test_an_unknown_logs_reference_is_an_error_at_its_place():
    message = error_of("""
        services:
          - name: api
            kind: tcp
            port: 8080
          - name: trino
            kind: systemd
            unit: trino.service
            logs: trino jurnal
        logs:
          - {name: trino journal, kind: journald, unit: trino.service}
          - {name: app, path: /var/log/app.log}
    """)
    assert message == ("lakedeck.yaml:9:11: services[1].logs is 'trino jurnal', which is not the name of a log source "
                       "(expected one of: trino journal, app)")
    message = error_of("services:\n  - {name: api, kind: tcp, port: 1, logs: api}\n")
    assert message == ("lakedeck.yaml:2:43: services[0].logs is 'api', which is not the name of a log source "
                       "(expected a source defined under logs:, and there is none)")


def test_the_schema_has_the_log_kinds_and_the_logs_reference():
    schema = cfg.json_schema()
    logs = schema["properties"]["logs"]["items"]["oneOf"]
    assert {branch["properties"]["kind"]["const"] for branch in logs} == set(cfg.LOG_KINDS)
    journald = next(b for b in logs if b["properties"]["kind"]["const"] == "journald")
    assert set(journald["required"]) == {"name", "kind", "unit"}
    assert journald["properties"]["lines"]["default"] == 200
    supervisor = next(b for b in logs if b["properties"]["kind"]["const"] == "supervisor")
    assert supervisor["properties"]["stream"]["enum"] == ["stdout", "stderr"]
    for branch in schema["properties"]["services"]["items"]["oneOf"]:
        assert branch["properties"]["logs"]["type"] == "string"


def test_the_schema_command_lists_the_log_kinds():
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tui.cli", "config", "schema"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"lakedeck config schema is not runnable this way: {out.stderr.strip()[-200:]}")
    kinds = {b["properties"]["kind"]["const"] for b in json.loads(out.stdout)["properties"]["logs"]["items"]["oneOf"]}
    assert kinds == {"file", "command", "journald", "compose", "supervisor"}


def test_log_specs_made_in_code_get_the_same_defaults():
    spec = cfg.log_source_spec("journald", "trino logs", 2.0, 1.5, unit="trino.service", user=True)
    assert (spec.section, spec.name, spec.kind, spec.interval, spec.timeout) == ("logs", "trino logs", "journald",
                                                                                 2.0, 1.5)
    assert dict(spec.options) == {"unit": "trino.service", "user": True, "lines": 200, "journalctl": "journalctl"}
    with pytest.raises(ValueError):
        cfg.log_source_spec("journald", "x", 2.0, 1.5, unit="u", colour=True)
    with pytest.raises(ValueError):
        cfg.log_source_spec("compose", "x", 2.0, 1.5, file="c.yaml")
