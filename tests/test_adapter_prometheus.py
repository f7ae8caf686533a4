"""The Prometheus adapters against a real Prometheus, node_exporter and Alertmanager on loopback
(tests/conftest_prometheus.py): gauges and range queries, scrape targets, a fleet of hosts, alerts."""

from __future__ import annotations

import math

import pytest
from conftest_prometheus import closed_port
from helpers import source_for

from backends.adapters.alert_base import alert_key, fingerprint
from backends.adapters.json_api import ApiError
from backends.adapters.prometheus_api import MIN_STEP, POINTS, range_step
from backends.adapters.prometheus_hosts import queries
from backends.adapters.prometheus_metrics import format_value, judge, series_names
from backends.model import AlertReading, CheckReading, GaugeReading, HostReading, Pane, State

pytestmark = pytest.mark.integration
SLOW_OK = {"refresh": "6s", "timeout": "5s"}  # other tests share the 2 cores: room for a slow answer


def metrics(url: str, *gauges: dict, targets: bool = False, **options):
    return source_for("metrics", "prometheus", url=url, gauges=list(gauges), targets=targets, **SLOW_OK, **options)


def hosts(url: str, **options):
    return source_for("hosts", "prometheus", url=url, **SLOW_OK, **options)


def by_key(readings) -> dict:
    for reading in readings:
        assert "\n" not in reading.reason and len(reading.reason) <= 200, reading.reason
    return {r.key: r for r in readings}


def wait_for_history(prometheus, seconds: float = 12.0) -> None:
    """Enough scrapes behind us that a range query with a 5 s step has points before now."""
    prometheus.wait_for(lambda: prometheus.query(f'count_over_time(up{{instance="host-a"}}[1m]) >= {seconds / 2:g}'),
                        40, f"{seconds:g} s of samples")


def count_requests(source) -> list[str]:
    """Every request the adapter's JSON client makes, by path, from now on."""
    made: list[str] = []
    client = source.api.api
    real = client.request

    async def counted(method, path, **kwargs):
        made.append(path)
        return await real(method, path, **kwargs)

    client.request = counted
    return made


# -- pure helpers ------------------------------------------------------------------------------------


def test_values_are_worded_with_their_unit():
    assert format_value(412.34, "ms") == "412.3 ms"
    assert format_value(99.95, "%") == "99.95%"
    assert format_value(12345, "msg/s") == "12,345 msg/s"
    assert format_value(3, "") == "3"
    assert format_value(2.5 * 1024 * 1024, "B/s") == "2.5 MB/s"


def test_levels_either_way_up():
    assert judge(412, {"warn": 300, "critical": 500}, "ms") == (State.WARN, " (warn at 300 ms)")
    assert judge(500, {"warn": 300, "critical": 500}, "ms") == (State.CRITICAL, " (critical at 500 ms)")
    assert judge(99.5, {"warn": 99.9, "critical": 99, "below": True}, "%") == (State.WARN, " (warn at or below 99.9%)")
    assert judge(98, {"warn": 99.9, "critical": 99, "below": True}, "%")[0] is State.CRITICAL
    assert judge(100, {"warn": 99.9, "critical": 99, "below": True}, "%") == (State.OK, "")
    assert judge(5, {}) == (State.OK, "")


def test_series_are_named_by_their_label_or_by_what_differs():
    series = [{"instance": "a", "job": "node"}, {"instance": "b", "job": "node"}]
    assert series_names(series, "instance") == ["a", "b"]
    assert series_names(series, None) == ["a", "b"]
    assert series_names(series, "job") == ["a", "b"]  # does not tell them apart: what differs does
    assert series_names([{"i": "a", "m": "GET"}, {"i": "a", "m": "PUT"}, {"i": "b", "m": "GET"}], None) == \
        ["a,GET", "a,PUT", "b,GET"]


def test_range_step_gives_about_sixty_points():
    assert range_step(3600) == 3600 / POINTS
    assert range_step(60) == MIN_STEP


def test_host_queries_carry_the_selector_everywhere():
    found = queries('job="node", env="prod"')
    assert found["up"] == 'up{job="node", env="prod"}'
    for name, query in found.items():
        assert query.count("{") == query.count('env="prod"'), name  # every series selector has it
    assert "node_uname_info" in queries("")["up"]  # no selector: only jobs that export node metrics


# -- gauges ------------------------------------------------------------------------------------------


async def test_gauges_with_units_and_levels(prometheus):
    source = metrics(prometheus.prometheus_url,
                     {"name": "nodes up", "query": 'sum(up{job="node"})', "levels": {"warn": 4, "critical": 3,
                                                                                     "below": True}},
                     {"name": "node share", "query": '100 * avg(up{job="node"})', "unit": "%",
                      "levels": {"warn": 70, "critical": 90}},
                     {"name": "scrape", "query": '1000 * max(scrape_duration_seconds{job="node"})', "unit": "ms",
                      "levels": {"critical": 0}},
                     {"name": "load a", "query": 'node_load1{instance="host-a"}'})
    try:
        found = by_key(await source.poll())
    finally:
        await source.close()
    assert set(found) == {"t:nodes up", "t:node share", "t:scrape", "t:load a"}
    up = found["t:nodes up"]
    assert isinstance(up, GaugeReading) and up.amount == 3 and up.percent is None and up.unit == ""
    assert up.state is State.CRITICAL and up.reason == "nodes up 3 (critical at or below 3)"
    share = found["t:node share"]
    assert share.amount == share.percent == 75 and share.state is State.WARN
    assert share.reason == "node share 75% (warn at 70%)" and share.group == ""
    scrape = found["t:scrape"]
    assert scrape.amount > 0 and scrape.unit == "ms" and scrape.state is State.CRITICAL
    assert scrape.reason.endswith(" ms (critical at 0 ms)")
    load = found["t:load a"]
    assert load.state is State.OK and load.amount >= 0 and load.label == "load a"


async def test_several_series_split_by_a_label(prometheus):
    source = metrics(prometheus.prometheus_url, {"name": "up", "query": 'up{job="node"}', "by": "instance"},
                     {"name": "load", "query": 'node_load1{job="node"}', "levels": {"warn": 1000}},
                     {"name": "one", "query": 'up{instance="host-a"}', "by": "instance"})
    try:
        found = by_key(await source.poll())
    finally:
        await source.close()
    ups = {k: r for k, r in found.items() if k.startswith("t:up{")}
    assert set(ups) == {"t:up{host-a}", "t:up{host-b}", "t:up{host-c}", "t:up{host-down}"}
    assert ups["t:up{host-down}"].amount == 0 and ups["t:up{host-a}"].amount == 1
    assert ups["t:up{host-a}"].label == "up host-a" and ups["t:up{host-a}"].group == "up"
    # without `by`, named by the labels that differ: only the instance
    assert {k for k in found if k.startswith("t:load")} == {"t:load{host-a}", "t:load{host-b}", "t:load{host-c}"}
    assert found["t:one{host-a}"].group == "one"  # with `by`, one series keeps the key it has among several


async def test_a_bad_query_says_what_prometheus_said(prometheus):
    source = metrics(prometheus.prometheus_url, {"name": "broken", "query": "sum(up"},
                     {"name": "range", "query": "up[1m]"}, {"name": "fine", "query": "vector(1)"})
    try:
        found = by_key(await source.poll())
    finally:
        await source.close()
    broken = found["t:broken"]
    assert broken.state is State.UNKNOWN and broken.reason.startswith("broken: bad PromQL: ")
    assert "parse error" in broken.reason and "HTTP" not in broken.reason
    assert found["t:range"].state is State.UNKNOWN and "matrix" in found["t:range"].reason
    assert found["t:fine"].state is State.OK  # one bad gauge spoils only itself


async def test_no_data_and_not_a_number(prometheus):
    source = metrics(prometheus.prometheus_url, {"name": "nothing", "query": 'up{job="nope"}'},
                     {"name": "ratio", "query": "0/0"}, {"name": "infinite", "query": "vector(1) / 0"},
                     {"name": "brackets", "query": 'label_replace(vector(2), "path", "[/usr/lib/x] near [/", "", "")',
                      "by": "path"})
    try:
        found = by_key(await source.poll())
    finally:
        await source.close()
    assert found["t:nothing"].state is State.UNKNOWN
    assert found["t:nothing"].reason == 'nothing: no data for up{job="nope"}'
    assert found["t:ratio"].state is State.UNKNOWN and "NaN" in found["t:ratio"].reason  # a scalar, read too
    assert found["t:infinite"].state is State.UNKNOWN and "+Inf" in found["t:infinite"].reason
    assert not math.isnan(found["t:ratio"].amount)
    text = found["t:brackets{[/usr/lib/x] near [/}"]
    assert text.label == "brackets [/usr/lib/x] near [/" and text.amount == 2  # labels are data, kept as they are


async def test_sparklines_are_backfilled_once_per_new_series(prometheus):
    wait_for_history(prometheus)
    gauge = {"name": "up", "query": 'up{instance="host-a"}', "by": "instance", "range": "1m"}
    source = metrics(prometheus.prometheus_url, gauge)
    made = count_requests(source)
    try:
        first = by_key(await source.poll())
        points = first["t:up{host-a}"].backfill
        assert len(points) >= 1 and all(value == 1.0 for _, value in points)
        assert all(ts < first["t:up{host-a}"].ts for ts, _ in points)
        assert made == ["/api/v1/query", "/api/v1/query_range"]
        second = by_key(await source.poll())
        assert second["t:up{host-a}"].backfill == () and made[2:] == ["/api/v1/query"]  # the engine keeps it now
        source.gauges[0] = {**source.gauges[0], "query": 'up{instance=~"host-a|host-b"}'}  # a series appears
        third = by_key(await source.poll())
        assert third["t:up{host-b}"].backfill and third["t:up{host-a}"].backfill == ()
        assert made[3:] == ["/api/v1/query", "/api/v1/query_range"]
    finally:
        await source.close()


async def test_one_gauge_unanswered_keeps_its_rows_marked_unknown(prometheus):
    source = metrics(prometheus.prometheus_url, {"name": "up", "query": 'up{job="node"}', "by": "instance"},
                     {"name": "one", "query": "vector(1)"})
    try:
        assert all(r.state is State.OK for r in await source.poll())
        real = source.api.instant

        async def flaky(query, timeout):
            if query.startswith("up"):
                raise ApiError("no answer from 127.0.0.1:9090 within 1.5s (GET /api/v1/query)")
            return await real(query, timeout)

        source.api.instant = flaky
        found = by_key(await source.poll())
    finally:
        await source.close()
    assert {k for k in found if k.startswith("t:up{")} == {"t:up{host-a}", "t:up{host-b}", "t:up{host-c}",
                                                          "t:up{host-down}"}
    held = found["t:up{host-a}"]
    assert held.state is State.UNKNOWN and held.amount == 1 and held.reason.startswith("up host-a: no answer from")
    assert found["t:one"].state is State.OK


async def test_scrape_targets_with_the_down_one_critical(prometheus):
    source = metrics(prometheus.prometheus_url, targets=True)
    try:
        found = by_key(await source.poll())
    finally:
        await source.close()
    assert {k for k in found if k.startswith("t:target:node/")} == {
        "t:target:node/host-a", "t:target:node/host-b", "t:target:node/host-c", "t:target:node/host-down"}
    up = found["t:target:node/host-a"]
    assert isinstance(up, CheckReading) and up.kind == "prometheus-target" and up.state is State.OK
    assert up.target == f"{prometheus.node_exporter_url}/metrics" and up.latency_ms > 0
    down = found["t:target:node/host-down"]
    assert down.state is State.CRITICAL and down.target == f"http://{prometheus.down_target}/metrics"
    assert down.reason.startswith("node/host-down down: ") and "connection refused" in down.reason
    assert any(k.startswith("t:target:prometheus/") and r.state is State.OK for k, r in found.items())


async def test_an_unreachable_prometheus_is_one_reading_saying_why():
    sock, port = closed_port()
    try:
        for source in (metrics(f"http://127.0.0.1:{port}", {"name": "up", "query": "up"}, targets=True),
                       hosts(f"http://127.0.0.1:{port}"),
                       source_for("alerts", "prometheus", url=f"http://127.0.0.1:{port}", **SLOW_OK)):
            try:
                readings = await source.poll()
            finally:
                await source.close()
            assert len(readings) == 1, readings
            reading = readings[0]
            assert reading.key == "t" and reading.state is State.UNKNOWN
            assert reading.reason == f"connection refused on 127.0.0.1:{port} — is the service running?"
            # where the source's rows would be: a fleet's failure in the hosts table, alerts' in the Alerts pane
            assert reading.pane is {"hosts": Pane.RESOURCES, "alerts": Pane.ALERTS}.get(source.spec.section,
                                                                                   Pane.SERVICES)
            if source.spec.section == "hosts":
                assert isinstance(reading, HostReading) and not reading.up
    finally:
        sock.close()


async def test_a_bad_url_is_a_reading_too():
    source = metrics("ftp://example", {"name": "up", "query": "up"})
    readings = await source.poll()
    assert len(readings) == 1 and readings[0].state is State.UNKNOWN and "bad url" in readings[0].reason


# -- hosts -------------------------------------------------------------------------------------------


async def test_hosts_each_with_their_figures(prometheus):
    wait_for_history(prometheus)
    source = hosts(prometheus.prometheus_url, selector='job="node"', range="1m",
                   thresholds={m: {"warn": 100, "critical": 100} for m in ("cpu", "memory", "disk")})
    try:
        found = by_key(await source.poll())
        again = by_key(await source.poll())
    finally:
        await source.close()
    assert set(found) == {"t:host-a", "t:host-b", "t:host-c", "t:host-down"}
    for name in prometheus.hosts:
        host = found[f"t:{name}"]
        assert isinstance(host, HostReading) and host.instance == name and host.up
        for figure in (host.cpu, host.memory, host.disk):
            assert figure is not None and 0 <= figure <= 100
        assert host.disk_mount.startswith("/")
        assert host.load is not None and host.load >= 0 and host.rx >= 0 and host.tx >= 0
        assert host.metrics()["cpu"] == host.cpu == host.value
        if host.load * 100 < 80:
            assert host.state is State.OK and host.reason == "ok"
        assert host.backfill and all(0 <= v <= 100 for _, v in host.backfill)  # the first poll: a range query
        assert again[f"t:{name}"].backfill == ()
    down = found["t:host-down"]
    assert not down.up and down.state is State.CRITICAL and down.reason.startswith("down: up=0")
    assert down.cpu is None and down.memory is None


async def test_hosts_filtered_by_instance_globs(prometheus):
    source = hosts(prometheus.prometheus_url, selector='job="node"', instances=["host-a", "host-b*"])
    try:
        found = by_key(await source.poll())
    finally:
        await source.close()
    assert set(found) == {"t:host-a", "t:host-b"}


async def test_hosts_without_a_selector_are_the_node_exporter_jobs(prometheus):
    source = hosts(prometheus.prometheus_url)
    try:
        found = by_key(await source.poll())
    finally:
        await source.close()
    assert set(found) == {"t:host-a", "t:host-b", "t:host-c", "t:host-down"}  # not Prometheus' own target


async def test_host_thresholds_name_the_worst_metric(prometheus):
    source = hosts(prometheus.prometheus_url, selector='job="node"', instances="host-a",
                   thresholds={"memory": {"warn": 0.01, "critical": 0.02}, "cpu": {"warn": 100, "critical": 100},
                               "disk": {"warn": 0, "critical": 100}, "load": {"warn": 1e6, "critical": 1e6}})
    load = hosts(prometheus.prometheus_url, selector='job="node"', instances="host-a",
                 thresholds={m: {"warn": 100, "critical": 100} for m in ("cpu", "memory", "disk")}
                 | {"load": {"warn": 0, "critical": 0}})
    try:
        host = (await source.poll())[0]
        loaded = (await load.poll())[0]
    finally:
        await source.close()
        await load.close()
    assert host.state is State.CRITICAL
    assert host.reason == f"memory {host.memory:.0f}% (critical at 0.02%)"
    assert loaded.state is State.CRITICAL
    assert loaded.reason == f"load {loaded.load:.2f} per core (critical at 0 per core)"


async def test_hosts_cost_the_same_requests_whatever_the_fleet(prometheus):
    one = hosts(prometheus.prometheus_url, selector='job="node", instance="host-a"')
    every = hosts(prometheus.prometheus_url, selector='job="node"')
    counts = {}
    try:
        for source in (one, every):
            made = count_requests(source)
            readings = await source.poll()
            first = list(made)
            await source.poll()
            counts[len(readings)] = (first, made[len(first):])
    finally:
        await one.close()
        await every.close()
    assert set(counts) == {1, 4}
    for first, later in counts.values():
        assert first.count("/api/v1/query") == 7 and first.count("/api/v1/query_range") == 1 and len(first) == 8
        assert later == ["/api/v1/query"] * 7


async def test_a_bad_selector_says_so(prometheus):
    source = hosts(prometheus.prometheus_url, selector='job="node')
    try:
        readings = await source.poll()
    finally:
        await source.close()
    assert len(readings) == 1 and readings[0].state is State.UNKNOWN
    assert readings[0].reason.startswith("bad PromQL: ") and "check the selector" in readings[0].reason


# -- alerts ------------------------------------------------------------------------------------------


async def test_prometheus_alerts_firing_and_pending(prometheus):
    source = source_for("alerts", "prometheus", url=prometheus.prometheus_url, **SLOW_OK)
    try:
        found = {r.name: r for r in await source.poll()}
    finally:
        await source.close()
    assert set(found) == {"AlwaysFiring", "StaysPending", "TargetDown"}
    firing = found["AlwaysFiring"]
    assert isinstance(firing, AlertReading) and firing.origin == "prometheus"
    assert firing.status == "firing" and firing.severity == "critical" and firing.state is State.CRITICAL
    assert firing.why == "always firing: the test stack is up" and firing.amount == 1.0 and firing.since
    labels = {"alertname": "AlwaysFiring", "severity": "critical"}
    assert firing.fingerprint == fingerprint(labels) and firing.labels == tuple(sorted(labels.items()))
    assert firing.key == alert_key("t", "AlwaysFiring", firing.fingerprint)
    assert firing.reason == "critical AlwaysFiring firing: always firing: the test stack is up"
    pending = found["StaysPending"]
    assert pending.status == "pending" and pending.state is State.OK and pending.severity == "warning"
    down = found["TargetDown"]
    assert down.status == "firing" and down.state is State.WARN and down.target == "host-down"
    assert down.why == "host-down of job node is down" and down.amount == 0.0


async def test_an_ack_holds_until_the_alert_resolves(prometheus):
    source = source_for("alerts", "prometheus", url=prometheus.prometheus_url, **SLOW_OK)
    try:
        firing = next(r for r in await source.poll() if r.name == "AlwaysFiring")
        (ack,) = [a for a in source.item_actions(firing) if a.id == "ack"]
        assert (await source.run(ack, lambda line: None)).ok
        assert next(r for r in await source.poll() if r.name == "AlwaysFiring").acked
    finally:
        await source.close()


async def test_alertmanager_gets_the_same_alert(prometheus):
    """The fixture's Alertmanager receives Prometheus' alerts, and both adapters give them one identity."""
    received = prometheus.wait_for_alertmanager("AlwaysFiring")
    assert received["labels"] == {"alertname": "AlwaysFiring", "severity": "critical"}
    ours = source_for("alerts", "prometheus", url=prometheus.prometheus_url, **SLOW_OK)
    theirs = source_for("alerts", "alertmanager", url=prometheus.alertmanager_url, **SLOW_OK)
    try:
        mine = next(r for r in await ours.poll() if r.name == "AlwaysFiring")
        other = next(r for r in await theirs.poll() if getattr(r, "name", "") == "AlwaysFiring")
    finally:
        await ours.close()
        await theirs.close()
    assert mine.fingerprint == other.fingerprint
