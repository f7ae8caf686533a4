"""lakedeck.yaml: where it is found, what it may say, and the typed Config it becomes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .config_input import parse_yaml, read_config
from .durations import format_duration
from .keymap import KEY_IDS
from .schema import (
    Bool,
    ConfigError,
    Context,
    Duration,
    Field,
    Int,
    ListOf,
    MapOf,
    Number,
    Obj,
    Str,
    Tagged,
    scalar,
)

THEMES = ("dark", "light", "high-contrast", "ansi")
DEFAULT_REFRESH = 2.0
MAX_DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Thresholds:
    warn: float = 80.0
    critical: float = 90.0


@dataclass(frozen=True)
class SourceSpec:
    """One configured thing to watch. ``options`` holds the kind's own validated fields."""

    section: str
    name: str
    kind: str
    interval: float
    timeout: float
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    origin: str
    refresh: float
    theme: str
    keys: Mapping[str, str]
    thresholds: Thresholds
    history: int
    sources: tuple[SourceSpec, ...]
    read_only: bool = False
    audit_log: str | None = None
    locks: str | None = None  # the directory of the targets' action locks (default: /run/lakedeck)
    secrets: frozenset[str] = frozenset()  # values of secret-named ${VAR}s, never shown or logged
    bell: str = "critical"
    store: Mapping[str, Any] = field(default_factory=lambda: _store(None))  # enabled, path, retention, every

    def section(self, name: str) -> tuple[SourceSpec, ...]:
        return tuple(s for s in self.sources if s.section == name)


class Scalar(Str):
    """Any single value, compared as text (``true``, ``1``, ``UP``)."""

    def check(self, node, ctx, what):
        value = scalar(node, ctx, what)
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None or isinstance(value, (list, dict)):
            raise ctx.error(node, f"{what} must be a single value (got {value!r})")
        return str(value)

    def json(self):
        return {"type": ["string", "number", "boolean"]}


def _level() -> Obj:
    return Obj({
        "warn": Field(Number(0), help="WARN at or above this"),
        "critical": Field(Number(0), help="CRITICAL at or above this"),
    }, validate=_warn_below_critical)


def _warn_below_critical(out: dict, node: yaml.Node, ctx: Context, what: str) -> None:
    if out["warn"] is not None and out["critical"] is not None and out["warn"] > out["critical"]:
        raise ctx.error(node, f"{what}: warn {out['warn']} is above critical {out['critical']} (expected warn <= critical)")


def _common(**fields: Field) -> dict[str, Field]:
    return {
        "name": Field(Str(), required=True, help="a unique name, shown in the panes"),
        "kind": Field(Str()),
        "refresh": Field(Duration(0.1), help="how often to poll (default: the top-level refresh)"),
        "timeout": Field(Duration(0.05), help="give up a poll after this; shorter than refresh"),
        **fields,
    }


TIERS = ("read", "disruptive", "destructive")


def _one_way_to_run(out: dict, node: yaml.Node, ctx: Context, what: str) -> None:
    given = [k for k in ("command", "http") if out.get(k) is not None]
    if len(given) > 1:
        raise ctx.error(node, f"{what} gives both command and http (expected one of them)")
    if not given and out.get("tier") is None:
        raise ctx.error(node, f"{what} has neither command nor http nor tier (expected a command or http "
                              f"request to run, or a tier for one of the adapter's own actions)")


ACTION = Obj({
    "id": Field(Str(), required=True, help="an id such as restart, or one of the adapter's own to change its tier"),
    "title": Field(Str(), help="shown in the action menu (default: from the id)"),
    "tier": Field(Str(TIERS), help="read, disruptive or destructive; never below what the adapter declares"),
    "command": Field(ListOf(Str(), min_items=1), help="argument list, e.g. [make, up]"),
    "http": Field(Obj({
        "method": Field(Str(("GET", "POST", "PUT", "PATCH", "DELETE")), default="POST"),
        "url": Field(Str(), required=True),
        "headers": Field(MapOf(Str(non_empty=False)), default=dict),
        "body": Field(Str(non_empty=False), default=""),
    }), help="an HTTP request, e.g. {url: http://127.0.0.1:8080/actuator/refresh}"),
    "cwd": Field(Str(), help="working directory of the command"),
    "timeout": Field(Duration(0.1), default=60.0, help="kill the command or give up the request after this"),
    "expect": Field(Str(), help="what the row says while it runs, e.g. restarting"),
}, validate=_one_way_to_run)


def _acted_on(refused: str) -> dict[str, Field]:
    """The config's own actions (or tier overrides) and read-only, for anything with actions."""
    return {
        "actions": Field(ListOf(ACTION), default=list, help="more actions, or tier overrides of the adapter's"),
        "read_only": Field(Bool(), default=False, help=f"refuse {refused}"),
    }


def _service(**fields: Field) -> dict[str, Field]:
    """A service: its kind's fields, the config's own actions, and read-only."""
    return _common(
        **fields,
        **_acted_on("every action above read on this service"),
        logs=Field(Str(), help="the name of a source in logs: that holds this service's logs (shown by l)"),
    )


def _overrides_known(kind: str, validate=None, section: str = "services"):
    """An ``actions:`` entry without a command or a request only changes the tier of one of the adapter's
    own actions: naming one the adapter does not have (a typo of ``restart``) would silently change nothing."""
    from .adapters import ACTION_IDS

    ids = ACTION_IDS.get((section, kind), ())
    noun = {"services": "service", "pipelines": "pipeline source", "alerts": "alerts source",
            "backups": "backup job", "tables": "catalog"}[section]

    def check(out: dict, node: yaml.Node, ctx: Context, what: str) -> None:
        if validate is not None:
            validate(out, node, ctx, what)
        for index, entry in enumerate(out.get("actions") or ()):
            if entry.get("command") or entry.get("http") or entry["id"] in ids:
                continue
            offered = ", ".join(ids) if ids else "none"
            raise ctx.error(_entry_node(node, "actions", index) or node,
                            f"{what}.actions[{index}]: {entry['id']!r} is not an action of a {kind} {noun}, so a "
                            f"tier for it changes nothing (expected one of its actions: {offered}; or give the new "
                            "action a command or http)")
    return check


def _entry_node(node: yaml.Node, key: str, index: int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key and isinstance(value_node, yaml.SequenceNode) and index < len(value_node.value):
                return value_node.value[index]
    return None


def _exactly_one(*names: str):
    def validate(out: dict, node: yaml.Node, ctx: Context, what: str) -> None:
        given = [n for n in names if out.get(n) is not None]
        if len(given) != 1:
            raise ctx.error(node, f"{what} gives {len(given)} of {', '.join(names)} (expected exactly one)")
    return validate


SERVICE_KINDS = {
    "http": Obj(_service(
        url=Field(Str(), required=True, help="http:// or https:// URL"),
        method=Field(Str(("GET", "HEAD", "POST", "PUT", "OPTIONS")), default="GET"),
        expect_status=Field(ListOf(Int(100, 599), single_ok=True), help="status codes that mean OK (default: any 2xx)"),
        expect_json=Field(MapOf(Scalar()), help="dotted JSON field: expected value, e.g. status: UP"),
        headers=Field(MapOf(Str(non_empty=False)), default=dict, help="request headers; use ${VAR} for secrets"),
        verify_tls=Field(Bool(), default=True, help="verify TLS certificates"),
        ca_file=Field(Str(), help="a CA bundle to verify against"),
        warn_latency=Field(Duration(), help="WARN when slower than this"),
    ), validate=_overrides_known("http")),
    "tcp": Obj(_service(
        host=Field(Str(), default="127.0.0.1"),
        port=Field(Int(1, 65535), required=True, help="a port number"),
        warn_latency=Field(Duration(), help="WARN when connecting takes longer than this"),
    ), validate=_overrides_known("tcp")),
    "process": Obj(_service(
        process=Field(Str(), help="the process name, exactly"),
        cmdline=Field(Str(), help="text to find in the command line"),
        pidfile=Field(Str(), help="a file holding the pid"),
        min_count=Field(Int(1), default=1, help="CRITICAL below this many matching processes"),
    ), validate=_overrides_known("process", _exactly_one("process", "cmdline", "pidfile"))),
    "command": Obj(_service(
        command=Field(ListOf(Str(), min_items=1), required=True, help="argument list, e.g. [pg_isready, -q]"),
        ok_codes=Field(ListOf(Int(0, 255), single_ok=True), default=lambda: [0]),
        warn_codes=Field(ListOf(Int(0, 255), single_ok=True), default=lambda: [1]),
        cwd=Field(Str()),
        env=Field(MapOf(Str(non_empty=False)), default=dict, help="extra environment variables"),
    ), validate=_overrides_known("command")),
    "systemd": Obj(_service(
        unit=Field(Str(), required=True, help="the unit, e.g. streamlit.service"),
        user=Field(Bool(), default=False, help="a --user unit"),
        sudo=Field(Bool(), default=False, help="run actions through sudo -n (never prompts)"),
    ), validate=_overrides_known("systemd")),
    "compose": Obj(_service(
        file=Field(Str(), required=True, help="the compose file"),
        service=Field(Str(), required=True, help="the service in it"),
        project=Field(Str(), help="the project name (-p)"),
    ), validate=_overrides_known("compose")),
    "supervisor": Obj(_service(
        url=Field(Str(), required=True, help="http://127.0.0.1:9001/RPC2 or unix:///run/supervisor.sock"),
        program=Field(Str(), required=True, help="the program name in supervisord"),
        username=Field(Str()),
        password=Field(Str(), help="use ${VAR}; it is redacted from the audit log"),
    ), validate=_overrides_known("supervisor")),
    "kubernetes": Obj(_service(
        deployment=Field(Str(), help="a deployment's name"),
        statefulset=Field(Str(), help="a statefulset's name"),
        namespace=Field(Str(), default="default"),
        context=Field(Str(), help="the kubectl context (default: the current one)"),
        kubectl=Field(Str(), default="kubectl", help="the kubectl binary"),
    ), validate=_overrides_known("kubernetes", _exactly_one("deployment", "statefulset"))),
}

def _http_api(**fields: Field) -> dict[str, Field]:
    """The fields of a source read over an HTTP API: its URL, headers and TLS."""
    return dict(
        url=Field(Str(), required=True, help="the API's base URL, e.g. http://127.0.0.1:9090"),
        headers=Field(MapOf(Str(non_empty=False)), default=dict, help="request headers; use ${VAR} for secrets"),
        verify_tls=Field(Bool(), default=True),
        ca_file=Field(Str(), help="a CA bundle to verify against"),
        **fields,
    )


class OffOr(Str):
    """A choice where YAML's ``off`` (read as false) means "off"."""

    def check(self, node, ctx, what):
        if scalar(node, ctx, what) is False:
            return "off"
        return super().check(node, ctx, what)


def _signed_level() -> Obj:
    """Levels for any number (a latency, a lag, a success rate), either way up."""
    return Obj({
        "warn": Field(Number(), help="WARN at or beyond this"),
        "critical": Field(Number(), help="CRITICAL at or beyond this"),
        "below": Field(Bool(), default=False, help="lower is worse (a success rate): WARN at or below warn"),
    }, validate=_levels_in_order)


def _levels_in_order(out: dict, node: yaml.Node, ctx: Context, what: str) -> None:
    warn, critical = out.get("warn"), out.get("critical")
    if warn is None or critical is None:
        return
    if out.get("below") and warn < critical:
        raise ctx.error(node, f"{what}: with below: true, warn {warn} is below critical {critical} "
                              "(expected warn >= critical: lower is worse)")
    if not out.get("below") and warn > critical:
        raise ctx.error(node, f"{what}: warn {warn} is above critical {critical} (expected warn <= critical)")


PROMETHEUS_GAUGE = Obj({
    "name": Field(Str(), required=True, help="the gauge's label, e.g. api p95"),
    "query": Field(Str(), required=True, help="PromQL for an instant query; each series it returns is a gauge"),
    "unit": Field(Str(non_empty=False), default="", help="shown after the value: %, ms, s, B, B/s, msg/s..."),
    "levels": Field(_signed_level(), default=dict, help="{warn, critical, below}"),
    "by": Field(Str(), help="the label that names each series, e.g. instance (default: the labels that differ)"),
    "range": Field(Duration(), default=3600.0, help="the sparkline's window, read with a range query (0: none)"),
})

METRIC_KINDS = {
    "prometheus": Obj(_common(**_http_api(
        gauges=Field(ListOf(PROMETHEUS_GAUGE), default=list, help="PromQL gauges shown in Resources"),
        targets=Field(Bool(), default=True, help="scrape targets' health as rows in Services"),
    ))),
}

HOST_THRESHOLDS = MapOf(_level(), key_choices=("cpu", "memory", "swap", "disk", "load"))

HOST_KINDS = {
    "prometheus": Obj(_common(**_http_api(
        selector=Field(Str(non_empty=False), default="", help='label matchers for node_exporter series, e.g. '
                                                               'job="node" (default: every node_exporter)'),
        instances=Field(ListOf(Str(), single_ok=True), default=list, help="instances to show, names or globs "
                                                                         "(default: all)"),
        thresholds=Field(HOST_THRESHOLDS, default=dict, help="per-metric warn/critical levels (load: per core)"),
        range=Field(Duration(), default=3600.0, help="the CPU sparkline's window (0: none)"),
    ))),
    "local": Obj(_common(
        thresholds=Field(HOST_THRESHOLDS, default=dict, help="per-metric warn/critical levels in percent (load: per core)"),
        exclude_mounts=Field(ListOf(Str()), default=lambda: ["/snap/*", "/boot/efi", "/var/lib/docker/*"],
                             help="mount points to leave out (globs)"),
        top=Field(Int(1, 50), default=8, help="how many top processes to list"),
    )),
}

def _backlog() -> Field:
    return Field(Int(0, 100_000), default=200, help="lines of history to show at start")


LOG_KINDS = {
    "file": Obj(_common(
        path=Field(Str(), required=True, help="a file, or a glob of files"),
        lines=_backlog(),
    )),
    "command": Obj(_common(
        command=Field(ListOf(Str(), min_items=1), required=True,
                      help="argument list of a command that streams lines, e.g. [kubectl, logs, -f, deploy/api]"),
        cwd=Field(Str(), help="working directory of the command"),
        env=Field(MapOf(Str(non_empty=False)), default=dict, help="extra environment variables"),
        resume_since=Field(Str(), help="after a restart, drop --tail and add FLAG=<time of the newest line seen>, "
                                       "skipping lines not newer, e.g. --since-time for kubectl logs --timestamps"),
    )),
    "journald": Obj(_common(
        unit=Field(Str(), required=True, help="the systemd unit, e.g. trino.service"),
        user=Field(Bool(), default=False, help="a --user unit"),
        lines=_backlog(),
        journalctl=Field(Str(), default="journalctl", help="the journalctl binary"),
    )),
    "compose": Obj(_common(
        file=Field(Str(), required=True, help="the compose file"),
        service=Field(Str(), required=True, help="the service in it"),
        project=Field(Str(), help="the project name (-p)"),
        lines=_backlog(),
    )),
    "supervisor": Obj(_common(
        url=Field(Str(), required=True, help="http://127.0.0.1:9001/RPC2 or unix:///run/supervisor.sock"),
        program=Field(Str(), required=True, help="the program name in supervisord"),
        username=Field(Str()),
        password=Field(Str(), help="use ${VAR}; it is redacted from the audit log"),
        stream=Field(Str(("stdout", "stderr")), default="stdout", help="which of the program's logs"),
        lines=_backlog(),
    )),
}

def _pipelines(**fields: Field) -> dict[str, Field]:
    """A pipeline source: its kind's fields, freshness, tier overrides and read-only."""
    return _service(
        **fields,
        max_age=Field(Duration(), help="late (WARN) when a pipeline's last success is older; CRITICAL at twice"),
        max_age_for=Field(MapOf(Duration()), default=dict,
                          help="max age per pipeline, by name or glob, e.g. {nightly_*: 26h}"),
    )


PIPELINE_KINDS = {
    "airflow": Obj(_pipelines(
        url=Field(Str(), required=True, help="the API server, e.g. http://127.0.0.1:8080"),
        api=Field(Str(("v2", "v1")), default="v2", help="v2: Airflow 3 (token from /auth/token); v1: Airflow 2 (basic auth)"),
        username=Field(Str()),
        password=Field(Str(non_empty=False), help="use ${VAR}; it is redacted from the audit log"),
        dags=Field(ListOf(Str(), single_ok=True), default=list, help="DAG ids or globs to show (default: all)"),
        verify_tls=Field(Bool(), default=True),
        ca_file=Field(Str(), help="a CA bundle to verify against"),
    ), validate=_overrides_known("airflow", section="pipelines")),
    "dbt": Obj(_pipelines(
        project_dir=Field(Str(), required=True, help="the dbt project (where dbt_project.yml is)"),
        profiles_dir=Field(Str(), help="where profiles.yml is (default: the project directory)"),
        target_path=Field(Str(), default="target", help="dbt's target directory, relative to the project"),
        dbt=Field(Str(), default="dbt", help="the dbt executable"),
        target=Field(Str(), help="the profile target (--target)"),
    ), validate=_overrides_known("dbt", section="pipelines")),
    "rest": Obj(_pipelines(
        url=Field(Str(), required=True, help="the pipelines API, e.g. http://127.0.0.1:8080/api/v1/analytics/pipelines"),
        paths=Field(MapOf(Str(), key_choices=("status", "item", "errors", "start", "stop", "restart", "pause",
                                              "retry", "clear_errors")), default=dict,
                    help="URL templates under url, e.g. {item: /{name}/status} (defaults: the analytics engine's)"),
        fields=Field(MapOf(Str(), key_choices=("list", "name", "status", "last_run", "last_success", "duration",
                                               "errors", "message")), default=dict,
                     help="dotted JSON fields, e.g. {list: pipelines, status: state}"),
        headers=Field(MapOf(Str(non_empty=False)), default=dict, help="request headers; use ${VAR} for secrets"),
        verify_tls=Field(Bool(), default=True),
        ca_file=Field(Str(), help="a CA bundle to verify against"),
    ), validate=_overrides_known("rest", section="pipelines")),
    "lineage": Obj(_pipelines(
        url=Field(Str(), required=True, help="the Marquez (OpenLineage) API, e.g. http://127.0.0.1:5000"),
        namespaces=Field(ListOf(Str(), single_ok=True), default=list, help="namespaces to show (default: all)"),
        depth=Field(Int(1, 20), default=5, help="how deep the upstream and downstream trees go"),
        headers=Field(MapOf(Str(non_empty=False)), default=dict, help="request headers; use ${VAR} for secrets"),
    ), validate=_overrides_known("lineage", section="pipelines")),
}

def _alert_source(**fields: Field) -> dict[str, Field]:
    return _common(
        **fields,
        **_acted_on("silences and every other action above read"),
    )


def _backup(**fields: Field) -> dict[str, Field]:
    """A backup job: where its sets go, how fresh the newest must be, what is kept, where a restore goes."""
    return _common(
        dest=Field(Str(), required=True, help="the directory sets are written under, as DEST/JOB/<UTC time>/"),
        rpo=Field(Duration(60.0), help="WARN when the last good set is older; CRITICAL at twice"),
        keep=Field(Duration(3600.0), help="prune sets older than this (the newest verified set is never pruned)"),
        keep_last=Field(Int(1, 100_000), help="prune all but the newest N sets (with keep: a set goes only when "
                                               "both say so)"),
        service=Field(Str(), help="a source under services: stopped before a restore and started after it"),
        action_timeout=Field(Duration(1.0), default=3600.0, help="give up a backup, verify or restore after this"),
        **fields,
        **_acted_on("run, prune and restore on this job"),
    )


BACKUP_KINDS = {
    "files": Obj(_backup(
        paths=Field(ListOf(Str(), min_items=1, single_ok=True), required=True, help="files and directories to archive"),
        exclude=Field(ListOf(Str(), single_ok=True), default=list, help="globs to leave out, e.g. *.tmp"),
        restore_to=Field(Str(), help="the directory a restore unpacks into (default: asked for)"),
    ), validate=_overrides_known("files", section="backups")),
    "sqlite": Obj(_backup(
        database=Field(Str(), required=True, help="the SQLite file, e.g. warehouse/catalog.db"),
        restore_to=Field(Str(), help="the file a restore writes (default: asked for)"),
    ), validate=_overrides_known("sqlite", section="backups")),
    "postgres": Obj(_backup(
        dbname=Field(Str(), required=True, help="the database to dump"),
        host=Field(Str(), default="127.0.0.1"),
        port=Field(Int(1, 65535), default=5432),
        user=Field(Str()),
        password=Field(Str(non_empty=False), help="use ${VAR}; passed as PGPASSWORD, redacted from the audit log"),
        pg_dump=Field(Str(), default="pg_dump"),
        pg_restore=Field(Str(), default="pg_restore"),
        restore_to=Field(Str(), help="the database a restore goes into (default: asked for)"),
    ), validate=_overrides_known("postgres", section="backups")),
    "command": Obj(_backup(
        command=Field(ListOf(Str(), min_items=1), required=True,
                      help="argument list; {dir} is replaced by the set's (temporary) directory, e.g. "
                           "[mc, mirror, local/lake, {dir}]"),
        restore=Field(ListOf(Str(), min_items=1), help="argument list of a restore; {dir} is the set's directory"),
        cwd=Field(Str()),
        env=Field(MapOf(Str(non_empty=False)), default=dict),
    ), validate=_overrides_known("command", section="backups")),
}


def _tables(**fields: Field) -> dict[str, Field]:
    return _common(
        namespaces=Field(ListOf(Str(), single_ok=True), default=list, help="namespaces to show (default: all)"),
        max_age=Field(Duration(), help="WARN when a table's current snapshot is older; CRITICAL at twice"),
        small_file=Field(Int(1), default=32 * 1024 * 1024,
                         help="bytes: an average data file below this (with many files) suggests compaction"),
        checks=Field(ListOf(DATA_CHECK), default=list, help="data checks run with DuckDB"),
        **fields,
        **_acted_on("expire, rollback and tag on this catalog"),
    )


def _one_target(out: dict, node: yaml.Node, ctx: Context, what: str) -> None:
    _exactly_one("table", "path")(out, node, ctx, what)
    if not any(out.get(k) is not None for k in ("rows", "nulls", "unique", "fresh")):
        raise ctx.error(node, f"{what} checks nothing (expected at least one of rows, nulls, unique, fresh)")


DATA_CHECK = Obj({
    "name": Field(Str(), help="shown in the Tables pane (default: from the table or path)"),
    "table": Field(Str(), help="namespace.table in this catalog"),
    "path": Field(Str(), help="a Parquet or CSV file (or glob) instead of a table"),
    "limit": Field(Int(1), default=1_000_000, help="rows read at most"),
    "rows": Field(Obj({"min": Field(Int(0)), "max": Field(Int(0))}), help="row count bounds"),
    "nulls": Field(MapOf(Number(0, 1)), help="column: the largest fraction of nulls allowed, e.g. {user_id: 0.01}"),
    "unique": Field(ListOf(Str(), single_ok=True), help="columns that together must be unique"),
    "fresh": Field(Obj({"column": Field(Str(), required=True), "max_age": Field(Duration(), required=True)}),
                   help="the newest value of a timestamp column must be this recent"),
}, validate=_one_target)

TABLE_KINDS = {
    "sql": Obj(_tables(
        uri=Field(Str(), required=True,
                  help="the catalog database: sqlite:///PATH or postgresql+psycopg2://USER@HOST:PORT/DB"),
        catalog=Field(Str(), help="the catalog's name in that database (default: the source's name)"),
        warehouse=Field(Str(), help="e.g. file:///srv/warehouse"),
    ), validate=_overrides_known("sql", section="tables")),
    "rest": Obj(_tables(
        uri=Field(Str(), required=True, help="the REST catalog, e.g. http://127.0.0.1:8181"),
        warehouse=Field(Str()),
        token=Field(Str(), help="use ${VAR}; redacted from the audit log"),
    ), validate=_overrides_known("rest", section="tables")),
}


ALERT_KINDS = {
    "alertmanager": Obj(_alert_source(**_http_api(
        author=Field(Str(), help="who silences are created by (default: user@host of the console)"),
        silence=Field(Duration(60.0), default=7200.0, help="how long a silence lasts when no duration is typed"),
    )), validate=_overrides_known("alertmanager", section="alerts")),
    "prometheus": Obj(_alert_source(**_http_api()), validate=_overrides_known("prometheus", section="alerts")),
}

SECTIONS = {
    "services": SERVICE_KINDS,
    "hosts": HOST_KINDS,
    "metrics": METRIC_KINDS,
    "pipelines": PIPELINE_KINDS,
    "logs": LOG_KINDS,
    "backups": BACKUP_KINDS,
    "tables": TABLE_KINDS,
    "alerts": ALERT_KINDS,
}
SECTION_DEFAULT_KIND = {"services": None, "hosts": "local", "metrics": "prometheus", "pipelines": None,
                        "logs": "file", "backups": None, "tables": "sql", "alerts": None}
# Sections whose polls read more than a socket (a catalog's metadata, a directory of backup sets) poll at most
# this often unless a source says otherwise.
SECTION_MIN_REFRESH = {"backups": 30.0, "tables": 60.0}
RULES_SOURCE = "rules"  # the source that evaluates the config's rules: its alerts are keyed "rules:<rule>:<target>"


def _one_condition(out: dict, node: yaml.Node, ctx: Context, what: str) -> None:
    given = [k for k in ("above", "below", "state") if out.get(k) is not None]
    if len(given) != 1:
        raise ctx.error(node, f"{what} gives {len(given)} of above, below, state (expected exactly one condition)")
    clear = out.get("clear")
    if clear is not None and (given[0] == "state"
                              or (given[0] == "above" and clear > out["above"])
                              or (given[0] == "below" and clear < out["below"])):
        raise ctx.error(node, f"{what}.clear {clear} does not lie on the good side of the threshold (expected "
                              f"clear <= above, or clear >= below; no clear with state)")


RULE = Obj({
    "name": Field(Str(), required=True, help="the alert's name, e.g. high_cpu"),
    "source": Field(Str(), required=True, help="the source whose readings it tests: a name or a glob"),
    "target": Field(Str(), help="only readings whose key matches this glob, e.g. fleet:web-*"),
    "metric": Field(Str(), default="value", help="which number of the reading: value (what its sparkline shows), "
                                                 "or cpu, memory, disk, load, rx, tx, up of a host"),
    "above": Field(Number(), help="fires when the metric is above this"),
    "below": Field(Number(), help="fires when the metric is below this"),
    "state": Field(Str(("warn", "unknown", "critical")), help="fires when the reading is at least this bad"),
    "clear": Field(Number(), help="resolves only once the metric is back past this level (hysteresis; "
                                  "default: the threshold)"),
    "for": Field(Duration(), default=0.0, help="pending until the condition has held this long, then firing"),
    "clear_for": Field(Duration(), default=60.0, help="firing until the condition has been clear this long: "
                                                      "a flapping condition pages once"),
    "severity": Field(Str(("info", "warning", "critical")), default="warning"),
    "description": Field(Str(non_empty=False), default="", help="what it means and what to do"),
}, validate=_one_condition)

STORE = Obj({
    "enabled": Field(Bool(), default=True, help="keep history on disk (samples and state changes)"),
    "path": Field(Str(), help="the DuckDB file (default: $XDG_STATE_HOME/lakedeck/history.duckdb)"),
    "retention": Field(Duration(3600.0), default=7 * 86400.0, help="how long samples are kept"),
    "every": Field(Duration(1.0), default=10.0, help="at most one sample per reading and metric this often"),
})

ROOT = Obj({
    "refresh": Field(Duration(0.1), default=DEFAULT_REFRESH, help="how often sources are polled"),
    "timeout": Field(Duration(0.05), help="default poll timeout (default: 3/4 of refresh, at most 5s)"),
    "theme": Field(Str(THEMES), default="dark"),
    "keys": Field(MapOf(Str(), key_choices=KEY_IDS), default=dict, help="binding id: keys, e.g. quit: ctrl+q"),
    "thresholds": Field(_level(), help="default warn/critical percent for gauges"),
    "history": Field(Int(10, 100_000), default=300, help="points of history kept per reading"),
    "read_only": Field(Bool(), default=False, help="refuse every action above read, everywhere"),
    "audit_log": Field(Str(), help="where actions are recorded (default: $XDG_STATE_HOME/lakedeck/audit.jsonl)"),
    "locks": Field(Str(), help="directory of the per-target action locks, shared by every lakedeck of the host "
                               "(default: /run/lakedeck, else $XDG_STATE_HOME/lakedeck/locks)"),
    "rules": Field(ListOf(RULE), default=list, help="lakedeck's own alert rules, evaluated with hysteresis"),
    "bell": Field(OffOr(("critical", "warning", "off")), default="critical",
                  help="ring the terminal bell when a new alert of this severity or worse fires"),
    "store": Field(STORE, default=dict, help="history on disk, for sparklines after a restart and lakedeck history"),
    **{name: Field(ListOf(Tagged(kinds, SECTION_DEFAULT_KIND[name])), default=list) for name, kinds in SECTIONS.items()},
})


def log_source_spec(kind: str, name: str, interval: float, timeout: float, **options: Any) -> SourceSpec:
    """A ``logs`` SourceSpec made in code (a service's own logs), with the defaults the file would get."""
    fields = LOG_KINDS[kind].fields
    unknown = options.keys() - fields.keys()
    missing = [k for k, f in fields.items() if f.required and k not in options and k != "name"]
    if unknown or missing:
        raise ValueError(f"{kind} log options: unknown {sorted(unknown)}, missing {missing}")
    filled = {k: f.default() if callable(f.default) else f.default
              for k, f in fields.items() if k not in ("name", "kind", "refresh", "timeout")}
    return SourceSpec("logs", name, kind, interval, timeout, {**filled, **options})


def json_schema() -> dict[str, Any]:
    schema = ROOT.json()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lakedeck configuration"
    return schema


def resolve_path(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """Which file to read: ``-c FILE``, else ``$LAKEDECK_CONFIG``, else the XDG path if it exists."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get("LAKEDECK_CONFIG"):
        return Path(environ["LAKEDECK_CONFIG"])
    xdg = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".config")
    candidate = Path(xdg) / "lakedeck" / "lakedeck.yaml"
    return candidate if candidate.is_file() else None


def load(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The Config to run with; the built-in default when no file is named or found."""
    path = resolve_path(explicit, environ)
    if path is None:
        from .defaults import default_config

        return default_config()
    return load_file(path, environ)


def load_file(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """The Config in ``path``: a regular file of bounded size, nesting and alias expansion (config_input)."""
    return parse(read_config(path), str(path), environ)


def parse(text: str, origin: str, environ: Mapping[str, str] | None = None) -> Config:
    ctx = Context(origin, dict(os.environ if environ is None else environ))
    node = parse_yaml(text, origin)
    if node is None:
        raw = ROOT.check(yaml.ScalarNode("tag:yaml.org,2002:null", None), ctx, "the file")
    else:
        raw = ROOT.check(node, ctx, "the file")
    return build(raw, origin, node, ctx)


def build(raw: dict[str, Any], origin: str, node: yaml.Node | None = None, ctx: Context | None = None) -> Config:
    refresh = raw["refresh"]
    default_timeout = raw["timeout"]
    level = raw["thresholds"] or {}
    defaults = Thresholds()
    thresholds = Thresholds(
        defaults.warn if level.get("warn") is None else level["warn"],
        defaults.critical if level.get("critical") is None else level["critical"],
    )
    sources: list[SourceSpec] = []
    names: set[str] = set()
    for section in SECTIONS:
        for index, item in enumerate(raw[section]):
            where = f"{section}[{index}]"
            item_node = _item_node(node, section, index)
            interval = item.pop("refresh") or max(refresh, SECTION_MIN_REFRESH.get(section, 0.0))
            timeout = item.pop("timeout") or default_timeout or min(MAX_DEFAULT_TIMEOUT, interval * 0.75)
            if timeout >= interval:
                _fail(ctx, item_node, f"{where}: timeout {format_duration(timeout)} is not shorter than refresh "
                      f"{format_duration(interval)} (expected a timeout below the refresh interval)")
            name, kind = item.pop("name"), item.pop("kind")
            if name in names:
                _fail(ctx, item_node, f"{where}: the name {name!r} is used twice (expected unique names)")
            names.add(name)
            sources.append(SourceSpec(section, name, kind, interval, timeout, item))
    _check_log_references(sources, node, ctx)
    if raw.get("rules"):
        if RULES_SOURCE in names:
            _fail(ctx, node, f"a source is named {RULES_SOURCE!r}, the name of the source that evaluates rules: "
                             "(expected another name)")
        seen_rules: set[str] = set()
        for index, rule in enumerate(raw["rules"]):
            if rule["name"] in seen_rules:
                _fail(ctx, _item_node(node, "rules", index), f"rules[{index}]: the name {rule['name']!r} is used "
                                                              "twice (expected unique rule names)")
            seen_rules.add(rule["name"])
        sources.append(SourceSpec("alerts", RULES_SOURCE, "rules", refresh, min(MAX_DEFAULT_TIMEOUT, refresh * 0.75),
                                  {"rules": raw["rules"]}))
    return Config(
        origin=origin,
        refresh=refresh,
        theme=raw["theme"],
        keys=raw["keys"],
        thresholds=thresholds,
        history=raw["history"],
        sources=tuple(sources),
        read_only=raw["read_only"],
        audit_log=raw["audit_log"],
        locks=raw.get("locks"),
        secrets=frozenset(ctx.secrets) if ctx is not None else frozenset(),
        bell=raw.get("bell") or "critical",
        store=_store(raw.get("store")),
    )


def _store(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The store's settings with their defaults, also for a Config built without a file."""
    fields = STORE.fields
    out = {k: f.default() if callable(f.default) else f.default for k, f in fields.items()}
    out.update({k: v for k, v in (given or {}).items() if v is not None})
    return out


def _check_log_references(sources: list[SourceSpec], root: yaml.Node | None, ctx: Context | None) -> None:
    """A service's ``logs:`` must name a source in the logs section."""
    logs = [s.name for s in sources if s.section == "logs"]
    for section in ("services", "pipelines"):
        for index, spec in enumerate(s for s in sources if s.section == section):
            wanted = spec.options.get("logs")
            if wanted is None or wanted in logs:
                continue
            item_node = _item_node(root, section, index)
            value_node = _value_node(item_node, "logs") or item_node
            expected = f"one of: {', '.join(logs)}" if logs else "a source defined under logs:, and there is none"
            _fail(ctx, value_node, f"{section}[{index}].logs is {wanted!r}, which is not the name of a log source "
                                   f"(expected {expected})")


def _value_node(item: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(item, yaml.MappingNode):
        for key_node, value_node in item.value:
            if key_node.value == key:
                return value_node
    return None


def _item_node(root: yaml.Node | None, section: str, index: int) -> yaml.Node | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    for key_node, value_node in root.value:
        if key_node.value == section and isinstance(value_node, yaml.SequenceNode):
            return value_node.value[index]
    return None


def _fail(ctx: Context | None, node: yaml.Node | None, message: str) -> None:
    if ctx is not None and node is not None:
        raise ctx.error(node, message)
    raise ConfigError(ctx.file if ctx else "<config>", 1, 1, message)


TAIL_REFRESH = 0.25  # how often `lakedeck tail` looks at a quiet file (a busy one every FOLLOW_INTERVAL)


def tail_config(paths: Sequence[str], lines: int) -> Config:
    """`lakedeck tail FILE...`: one log source per file and nothing else. One file is read from its end by
    the console itself (so that it can page back), so its source starts at the end."""
    sources, names = [], set()
    for path in paths:
        name = base = os.path.basename(path) or path
        number = 2
        while name in names:
            name, number = f"{base}#{number}", number + 1
        names.add(name)
        backlog = 0 if len(paths) == 1 else lines
        sources.append(SourceSpec("logs", name, "file", TAIL_REFRESH, 2.0,  # a read of 1 MiB on a loaded machine
                                  {"path": os.path.abspath(path), "lines": backlog}))
    return Config(origin="lakedeck tail", refresh=TAIL_REFRESH, theme="dark", keys={}, thresholds=Thresholds(),
                  history=10, sources=tuple(sources))


def with_refresh(config: Config, seconds: float) -> Config:
    """``--refresh``: a new interval for every source that uses the top-level one."""
    sources = tuple(
        replace(s, interval=seconds, timeout=min(s.timeout, seconds * 0.75)) if s.interval == config.refresh else s
        for s in config.sources
    )
    return replace(config, refresh=seconds, sources=sources)


def dump_schema() -> str:
    return json.dumps(json_schema(), indent=2)
