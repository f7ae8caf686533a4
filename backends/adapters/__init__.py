"""Adapters, one module per kind, imported only when the config uses that kind."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config, SourceSpec
    from .base import Source

# (section, kind) -> "module:Class"
REGISTRY: dict[tuple[str, str], str] = {
    ("services", "http"): "http_check:HttpCheck",
    ("services", "tcp"): "tcp_check:TcpCheck",
    ("services", "process"): "process_check:ProcessCheck",
    ("services", "command"): "command_check:CommandCheck",
    ("services", "systemd"): "systemd:SystemdUnit",
    ("services", "compose"): "compose:ComposeService",
    ("services", "supervisor"): "supervisor:SupervisorProgram",
    ("services", "kubernetes"): "kubernetes:KubernetesWorkload",
    ("hosts", "local"): "host:LocalHost",
    ("hosts", "prometheus"): "prometheus_hosts:PrometheusHosts",
    ("metrics", "prometheus"): "prometheus_metrics:PrometheusMetrics",
    ("alerts", "prometheus"): "prometheus_alerts:PrometheusAlerts",
    ("alerts", "alertmanager"): "alertmanager:Alertmanager",
    ("alerts", "rules"): "rules_source:RulesSource",
    ("backups", "files"): "backups:BackupJob",
    ("backups", "sqlite"): "backups:BackupJob",
    ("backups", "postgres"): "backups:BackupJob",
    ("backups", "command"): "backups:BackupJob",
    ("tables", "sql"): "iceberg_tables:IcebergCatalog",
    ("tables", "rest"): "iceberg_tables:IcebergCatalog",
    ("pipelines", "airflow"): "airflow:AirflowInstance",
    ("pipelines", "dbt"): "dbt:DbtProject",
    ("pipelines", "rest"): "pipeline_rest:RestPipelines",
    ("pipelines", "lineage"): "lineage:MarquezLineage",
    ("logs", "file"): "log_file:LogFile",
    ("logs", "command"): "log_command:LogCommand",
    ("logs", "journald"): "log_journald:LogJournald",
    ("logs", "compose"): "log_compose:LogCompose",
    ("logs", "supervisor"): "log_supervisor:LogSupervisor",
}

# The ids of the actions each kind can offer (some only in some states, like scale-down): what a config's
# tier override may name. tests/test_actions.py keeps this true to the adapters.
ACTION_IDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("services", "systemd"): ("start", "stop", "restart", "reload"),
    ("services", "compose"): ("start", "stop", "restart", "up", "scale-up", "scale-down"),
    ("services", "supervisor"): ("start", "stop", "restart", "tail"),
    ("services", "kubernetes"): ("restart", "rollout-status", "scale-up", "scale-down"),
    ("pipelines", "airflow"): ("trigger", "pause", "unpause", "clear", "mark-failed", "mark-success"),
    ("pipelines", "dbt"): ("build", "run", "test"),
    ("pipelines", "rest"): ("start", "stop", "restart", "pause", "retry", "clear-errors"),
    ("pipelines", "lineage"): (),
    ("alerts", "prometheus"): ("ack", "unack"),
    ("alerts", "rules"): ("ack", "unack"),
    **{("backups", kind): ("run", "verify", "prune", "restore") for kind in ("files", "sqlite", "postgres", "command")},
    **{("tables", kind): ("expire", "rollback", "tag") for kind in ("sql", "rest")},
    ("alerts", "alertmanager"): ("ack", "unack", "silence", "expire"),
}


def build_source(spec: "SourceSpec", config: "Config") -> "Source":
    module_name, class_name = REGISTRY[(spec.section, spec.kind)].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)(spec, config.thresholds)
