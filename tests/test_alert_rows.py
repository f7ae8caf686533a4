"""What the Alerts pane and the header show, as pure functions: one row per alert, firing and worst first,
words that read without colour, and counts that leave acked alerts out."""

from __future__ import annotations

from backends.adapters.alert_base import alert_state, fingerprint, severity_of
from backends.model import AlertReading, State
from tui.app import alert_counts
from tui.rows import alert_row, one_per_alert

NOW = 1_800_000_000.0


def alert(name: str, severity: str = "critical", status: str = "firing", origin: str = "prometheus", *,
          since: float = NOW - 600, acked: bool = False, mark: str = "", until: float | None = None) -> AlertReading:
    mark = mark or fingerprint({"alertname": name})
    return AlertReading(key=f"{origin}:{name}:{mark[:8]}", source=origin, state=alert_state(severity, status),
                        reason=f"{name} {status}", ts=NOW, origin=origin, name=name, severity=severity, status=status,
                        since=since, until=until, target="web-01", why=f"why {name}", fingerprint=mark, acked=acked)


def test_the_same_alert_from_prometheus_and_alertmanager_is_one_row_alertmanagers():
    prom = alert("DiskFull")
    held = alert("DiskFull", origin="alertmanager", status="silenced")
    rows = one_per_alert([prom, held, alert("Other", "warning")])
    assert [a.name for a in rows] == ["Other", "DiskFull"]  # firing before silenced
    assert rows[1].origin == "alertmanager"


def test_order_firing_first_worst_first_unacked_first_newest_first():
    alerts = [alert("resolved", status="resolved", until=NOW - 60), alert("pending", status="pending"),
              alert("warn", "warning"), alert("acked", acked=True), alert("old", since=NOW - 9000),
              alert("new", since=NOW - 60), alert("silence", "info", status="silence", until=NOW + 3600),
              alert("broken", status="error")]
    assert [a.name for a in one_per_alert(alerts)] == [
        "broken", "new", "old", "acked", "warn", "pending", "silence", "resolved"]


def test_rows_say_status_severity_and_for_how_long_in_words():
    texts = lambda a: [cell.text for cell in alert_row(a, False, NOW).cells]  # noqa: E731
    assert texts(alert("DiskFull")) == ["✖ FIRING", "critical", "DiskFull", "web-01", "10m", "why DiskFull", "prometheus"]
    assert texts(alert("DiskFull", acked=True))[0] == "✖ FIRING acked"
    assert texts(alert("x", status="pending"))[0] == "… pending"
    assert texts(alert("x", status="resolved", since=NOW - 7200, until=NOW - 60))[4] == "was 1h"
    silence = texts(alert("x", "info", status="silence", until=NOW + 5400))
    assert silence[0] == "⏸ silence" and silence[1] == "" and silence[4] == "1h30m left"
    assert texts(alert("x", "info", status="silence", until=NOW + 61))[4] == "2m left"
    assert alert_row(alert("x"), True, NOW).cells[0].role == "stale"


def test_header_counts_firing_unacked_alerts_once_by_severity():
    readings = [alert("a"), alert("a", origin="alertmanager"), alert("b", "warning"), alert("c", acked=True),
                alert("d", status="pending"), alert("e", "info")]
    assert alert_counts(readings) == (("critical", 1, "critical"), ("warning", 1, "warn"), ("info", 1, "muted"))


def test_severity_words_and_states():
    assert severity_of({"severity": "page"}) == "critical" and severity_of({"severity": "warn"}) == "warning"
    assert severity_of({}) == "warning" and severity_of({"severity": "bogus"}) == "warning"
    assert alert_state("critical", "firing") is State.CRITICAL and alert_state("critical", "silenced") is State.OK
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
