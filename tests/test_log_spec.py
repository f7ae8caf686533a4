"""Each service adapter's ``log_spec()``: the logs source the console opens when `l` is pressed on its row."""

from __future__ import annotations

from helpers import config_for, source_for

from backends.adapters import build_source

TIMING = {"refresh": "10s", "timeout": "4s"}


def test_sources_without_logs_have_none():
    assert source_for("services", "tcp", port=80).log_spec() is None


def test_systemd_follows_the_units_journal():
    spec = source_for("services", "systemd", name="trino", unit="trino.service", user=True, **TIMING).log_spec()
    assert (spec.section, spec.name, spec.kind, spec.interval, spec.timeout) == (
        "logs", "trino logs", "journald", 10.0, 4.0)
    assert dict(spec.options) == {"unit": "trino.service", "user": True, "lines": 200, "journalctl": "journalctl"}


def test_compose_follows_the_services_containers():
    spec = source_for("services", "compose", name="shop web", file="/srv/shop/compose.yaml", service="web",
                      project="shop", **TIMING).log_spec()
    assert (spec.name, spec.kind, spec.interval) == ("shop web logs", "compose", 10.0)
    assert dict(spec.options) == {"file": "/srv/shop/compose.yaml", "service": "web", "project": "shop", "lines": 200}


def test_supervisor_follows_the_programs_stdout_with_the_same_credentials():
    spec = source_for("services", "supervisor", name="worker", url="http://127.0.0.1:9001/RPC2", program="worker",
                      username="u", password="p", **TIMING).log_spec()
    assert (spec.name, spec.kind) == ("worker logs", "supervisor")
    assert dict(spec.options) == {"url": "http://127.0.0.1:9001/RPC2", "program": "worker", "username": "u",
                                  "password": "p", "stream": "stdout", "lines": 200}


def test_kubernetes_runs_kubectl_logs_of_the_workload():
    spec = source_for("services", "kubernetes", name="api", deployment="api", namespace="shop", context="prod",
                      kubectl="/opt/bin/kubectl", **TIMING).log_spec()
    assert (spec.name, spec.kind, spec.timeout) == ("api logs", "command", 4.0)
    assert spec.options["resume_since"] == "--since-time"
    assert spec.options["command"] == ["/opt/bin/kubectl", "logs", "-f", "--tail=200", "--timestamps",
                                       "deployment/api", "-n", "shop", "--context", "prod"]
    spec = source_for("services", "kubernetes", name="db", statefulset="pg").log_spec()
    assert spec.options["command"] == ["kubectl", "logs", "-f", "--tail=200", "--timestamps", "statefulset/pg",
                                       "-n", "default"]


def test_a_log_spec_builds_the_source_it_describes():
    config = config_for("services", "systemd", name="trino", unit="trino.service")
    spec = build_source(config.sources[0], config).log_spec()
    source = build_source(spec, config)
    assert type(source).__name__ == "LogJournald" and source.describe() == "journalctl -u trino.service"
