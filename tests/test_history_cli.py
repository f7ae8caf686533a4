"""`lakedeck history` and `lakedeck report` over a real history store and a real audit log."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("duckdb")

from backends.actions import Action, ActionResult, Tier  # noqa: E402
from backends.audit import AuditLog  # noqa: E402
from backends.config import parse  # noqa: E402
from backends.history_cli import episodes, md, run_history, run_report, stamp  # noqa: E402
from backends.model import AlertReading, CheckReading, GaugeReading, State  # noqa: E402
from backends.store import HistoryStore  # noqa: E402
from backends.store_read import AlertEvent  # noqa: E402
from tui.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_800_000_000.0


def check(ts: float, latency: float, state: State = State.OK, reason: str = "200 OK") -> CheckReading:
    return CheckReading(key="api", source="api", state=state, reason=reason, ts=ts, kind="http", latency_ms=latency)


def gauge(key: str, ts: float, value: float) -> GaugeReading:
    return GaugeReading(key=key, source="host", state=State.OK, reason="", ts=ts, label=key, amount=value)


def alert(name: str, status: str, ts: float, **more) -> AlertReading:
    return AlertReading(key=f"am:{name}", source="am", state=State.OK, reason="", ts=ts, origin="alertmanager",
                        name=name, severity=more.pop("severity", "critical"), status=status, fingerprint=name,
                        target=more.pop("target", "db-1"), **more)


def fill(path: Path, now: float = NOW) -> None:
    """An hour of an HTTP check (down for 5 minutes), two gauges, one alert that fired and resolved, one firing."""
    store = HistoryStore(path, every=10.0, clock=lambda: now)
    for i in range(360):
        ts = now - 3600 + 10 * i
        down = now - 1800 <= ts < now - 1500
        reading = check(ts, 500.0, State.CRITICAL, "connection refused | port 8080\nretrying") if down \
            else check(ts, 10.0 + i % 5)
        store.record([reading, gauge("host:cpu", ts, 50.0), gauge("host:mem", ts, 70.0)])
    why = "disk 97% | over 90%\n<b>second line</b>"
    store.record([alert("DiskFull", "pending", now - 3100, since=now - 3100, why=why)], source="am")
    store.record([alert("DiskFull", "firing", now - 3000, since=now - 3100, why=why)], source="am")
    store.record([alert("DiskFull", "resolved", now - 2690, since=now - 3100, until=now - 2700, why=why)], source="am")
    store.record([alert("LagHigh", "firing", now - 600, since=now - 600, severity="warning", target="kafka",
                        why="lag 12000 > 10000")], source="am")
    assert store.flush()
    store.close()


def write_audit(path: Path, now: float = NOW) -> None:
    log = AuditLog(path)
    action = Action(target="api", id="restart", title="Restart", tier=Tier.DISRUPTIVE,
                    argv=("systemctl", "restart", "api.service"))
    log.append(log.entry("confirmed", action, now=now - 1600))
    log.append(log.entry("done", action, ActionResult(action, True, 0, ["restarted"], 2.4), now=now - 1590))


@pytest.fixture
def setup(tmp_path):
    db, audit = tmp_path / "history.duckdb", tmp_path / "audit.jsonl"
    text = yaml.safe_dump({"store": {"path": str(db)}, "audit_log": str(audit)})
    (tmp_path / "lakedeck.yaml").write_text(text)
    return parse(text, str(tmp_path / "lakedeck.yaml")), db, audit


def history(config, name, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    code = run_history(config, name, out=out, err=err, now=NOW, **kwargs)
    return code, out.getvalue(), err.getvalue()


def report(config, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    code = run_report(config, out=out, err=err, now=NOW, **kwargs)
    return code, out.getvalue(), err.getvalue()


def test_history_prints_each_metric_and_the_state_changes(setup):
    config, db, _ = setup
    fill(db)
    code, out, err = history(config, "api")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"history of 'api' since 6h ago ({stamp(NOW - 6 * 3600)} to {stamp(NOW)})")
    assert lines[1].split() == ["KEY", "METRIC", "SAMPLES", "FIRST", "LAST", "MIN", "AVG", "MAX", "LAST", "VALUE"]
    assert lines[2].split() == ["api", "value", "360", stamp(NOW - 3600), stamp(NOW - 10), "10", "52.67", "500",
                                "14"]
    assert lines[3] == "state changes (2):"
    assert lines[4] == f"  {stamp(NOW - 1800)}  api  OK → CRITICAL  connection refused | port 8080 retrying"
    assert lines[5].endswith("api  CRITICAL → OK  200 OK")


def test_history_of_one_key_one_metric_and_a_shorter_window(setup):
    config, db, _ = setup
    fill(db)
    code, out, _ = history(config, "host:cpu")
    assert code == 0 and "host:mem" not in out and "no state changes" in out
    code, out, _ = history(config, "host", metric="value", since=600)
    assert code == 0 and [line.split()[:3] for line in out.splitlines()[2:4]] == \
        [["host:cpu", "value", "60"], ["host:mem", "value", "60"]]
    code, out, _ = history(config, "api", since=600)
    assert "no state changes" in out  # the outage was half an hour ago


def test_history_as_json(setup):
    config, db, _ = setup
    fill(db)
    code, out, _ = history(config, "api", as_json=True)
    data = json.loads(out)
    assert code == 0 and data["name"] == "api" and data["store"] == str(db)
    (series,) = data["series"]
    assert (series["key"], series["metric"], series["count"], len(series["samples"])) == ("api", "value", 360, 360)
    assert series["samples"][0] == [NOW - 3600, 10.0] and series["first_time"] == stamp(NOW - 3600)
    assert [(t["old"], t["new"], t["time"]) for t in data["transitions"]] == \
        [("OK", "CRITICAL", stamp(NOW - 1800)), ("CRITICAL", "OK", stamp(NOW - 1500))]


def test_history_of_an_alert_source_lists_its_events(setup):
    config, db, _ = setup
    fill(db)
    code, out, _ = history(config, "am")
    assert code == 0 and "no samples" in out and "alert events (4):" in out
    assert f"  {stamp(NOW - 3000)}  DiskFull  critical  firing  on db-1  disk 97% | over 90% <b>second line</b>" in out


def test_history_errors_are_one_line_with_exit_2(setup):
    config, db, _ = setup
    code, out, err = history(config, "api")
    assert (code, out) == (2, "") and err == f"lakedeck history: no history store at {db} (the console writes it " \
                                             f"while it runs)\n"
    fill(db)
    code, out, err = history(config, "nope")
    assert (code, out) == (2, "")
    assert err == f"lakedeck history: no history for 'nope' since 6h ago in {db} (sources with history: am, api, " \
                  f"host)\n"
    code, _, err = history(config, "api", metric="cpu")
    assert code == 2 and err == "lakedeck history: no samples of metric 'cpu' for 'api' since 6h ago " \
                                "(its metrics: value)\n"
    code, _, err = history(config, "api", since=1)  # nothing in the last second
    assert code == 2 and "(no source has history in that window)" in err
    db.unlink()
    db.write_text("garbage " * 100)
    code, _, err = history(config, "api")
    assert code == 2 and err.count("\n") == 1 and "not a DuckDB file" in err


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the Markdown table under ``heading``, split on unescaped pipes."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def test_report_has_the_alerts_changes_actions_timeline_and_headings_to_fill(setup):
    config, db, audit = setup
    fill(db)
    write_audit(audit)
    code, out, err = report(config)
    assert (code, err) == (0, "")
    assert out.startswith(f"# Incident report: {stamp(NOW - 86400)} to {stamp(NOW)} (last 24h)\n")
    assert "- Alerts fired: 2 (1 critical, 1 warning); 1 still firing." in out
    assert "- State changes: 2 across 1 reading; worst CRITICAL: api." in out
    assert "- Actions: 2 audit entries (1 confirmed, 1 done) by " in out
    alerts = table_rows(out, "Alerts")
    assert alerts == [
        ["DiskFull", "critical", "db-1", stamp(NOW - 3000), stamp(NOW - 2700), "5m00s",
         "disk 97% \\| over 90% \\<b\\>second line\\</b\\>"],
        ["LagHigh", "warning", "kafka", stamp(NOW - 600), "still firing", "10m00s so far", "lag 12000 > 10000"
         .replace(">", "\\>")],
    ]
    changes = table_rows(out, "State changes")
    assert changes == [[stamp(NOW - 1800), "api", "OK → CRITICAL", "connection refused \\| port 8080 retrying"],
                       [stamp(NOW - 1500), "api", "CRITICAL → OK", "200 OK"]]
    actions = table_rows(out, "Actions")
    assert [row[2:6] for row in actions] == [["confirmed", "api", "restart", ""],
                                            ["done", "api", "restart", "exit 0, 2s"]]
    assert actions[1][6] == "systemctl restart api.service"
    timeline = out.split("## Timeline\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split(" ", 2)[1] for line in timeline] == [stamp(NOW - 3000), stamp(NOW - 2700), stamp(NOW - 1600),
                                                            stamp(NOW - 1590), stamp(NOW - 600)]
    assert timeline[0].endswith("alert **DiskFull** (critical) fired on db-1: disk 97% \\| over 90% "
                                "\\<b\\>second line\\</b\\>")
    assert timeline[1].endswith("alert **DiskFull** resolved after 5m00s")
    assert "done restart on api (exit 0, 2s)" in timeline[3]
    for heading in ("Impact", "Root cause", "Follow-ups"):
        assert f"\n## {heading}\n" in out


def test_report_window_and_output_file(setup, tmp_path):
    config, db, _ = setup
    fill(db)
    code, out, _ = report(config, since=900)  # the last 15 minutes: only LagHigh, no actions, no changes
    assert code == 0 and "- Alerts fired: 1 (1 warning); 1 still firing." in out and "DiskFull" not in out
    assert "No reading changed state in this window." in out and "No action in the audit log" in out
    target = tmp_path / "incident.md"
    code, out, err = report(config, output=str(target))
    assert (code, out, err) == (0, f"lakedeck report: wrote {target}\n", "")
    assert target.read_text().startswith("# Incident report:")
    code, _, err = report(config, output=str(tmp_path / "missing-dir" / "x.md"))
    assert code == 2 and err.startswith("lakedeck report: cannot write") and err.count("\n") == 1


def test_report_without_a_store_exits_2(setup):
    config, db, _ = setup
    code, out, err = report(config)
    assert (code, out) == (2, "") and err == f"lakedeck report: no history store at {db} (the console writes it " \
                                             f"while it runs)\n"


def test_episodes_use_what_the_alert_says_and_what_was_seen():
    def event(ts, status, since=None, until=None):
        return AlertEvent(ts, "am", "am:X", "X", "alertmanager", "X", "warning", status, since, until, "t", "why")

    first_seen_firing = episodes([event(100, "firing", since=40), event(200, "gone")])
    assert [(e.fired, e.resolved, e.ended_by) for e in first_seen_firing] == [(40, 200, "gone")]
    seen_going = episodes([event(100, "pending", since=90), event(130, "firing", since=90), event(160, "resolved")])
    assert [(e.fired, e.resolved) for e in seen_going] == [(130, 160)]
    twice = episodes([event(1, "firing"), event(2, "resolved", until=2), event(3, "firing"), event(4, "gone")])
    assert [(e.fired, e.resolved) for e in twice] == [(1, 2), (3, 4)]
    assert md("a|b\nc <x>") == "a\\|b c \\<x\\>"


def test_the_commands_through_the_cli(setup, tmp_path, capsys):
    _, db, _ = setup
    cfg = str(tmp_path / "lakedeck.yaml")
    assert main(["history", "api", "-c", cfg]) == 2
    assert capsys.readouterr().err == f"lakedeck history: no history store at {db} (the console writes it while it " \
                                      f"runs)\n"
    fill(db, now=time.time())
    assert main(["history", "api", "--since", "2h", "--metric", "value", "-c", cfg]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[:3] == ["api", "value", "360"]
    assert main(["report", "--since", "2h", "-o", str(tmp_path / "r.md"), "-c", cfg]) == 0
    assert "DiskFull" in (tmp_path / "r.md").read_text()
    with pytest.raises(SystemExit) as exited:
        main(["history", "api", "--since", "soon", "-c", cfg])
    assert exited.value.code == 2 and "expected a duration" in capsys.readouterr().err


def test_the_headless_verbs_do_not_import_textual(setup, tmp_path):
    code = ("import sys\nfrom tui.cli import main\n"
            f"main(['history', 'api', '-c', {str(tmp_path / 'lakedeck.yaml')!r}])\n"
            f"main(['report', '-c', {str(tmp_path / 'lakedeck.yaml')!r}])\n"
            "print(any(m.startswith('textual') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
