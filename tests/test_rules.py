"""lakedeck's own rules, as pure unit tests with an explicit clock: `for`, hysteresis, flapping, resolution,
missing data and the wording of why; then the rules source built from a config file."""

from __future__ import annotations

import fnmatch
import math
import time
from pathlib import Path

import pytest

from backends import config as cfg
from backends.adapters.alert_base import fingerprint
from backends.model import AlertReading, CheckReading, GaugeReading, HostReading, Reading, State
from backends.rules import GONE_AFTER, NO_DATA_EVALS, RESOLVED_KEEP, Rule, RuleBook

T0 = 1_700_000_000.0


def rule(**options) -> Rule:
    return Rule.from_options({"name": "high_cpu", "source": "fleet", **options})


def host(instance: str = "web-1", cpu: float | None = 50.0, source: str = "fleet", **more) -> HostReading:
    return HostReading(key=f"{source}:{instance}", source=source, state=State.OK, reason="", ts=T0,
                       instance=instance, cpu=cpu, **more)


def gauge(name: str, amount: float, source: str = "kpis", unit: str = "", state: State = State.OK,
          **more) -> GaugeReading:
    return GaugeReading(key=f"{source}:{name}", source=source, state=state, reason="", ts=T0, label=name,
                        amount=amount, unit=unit, **more)


def by_key(readings: list[Reading]) -> dict[str, Reading]:
    return {r.key: r for r in readings}


def run(book: RuleBook, *readings: Reading, at: float) -> list[AlertReading]:
    return book.evaluate(by_key(list(readings)), at)


def status(alerts: list[AlertReading]) -> str | None:
    assert len(alerts) <= 1
    return alerts[0].status if alerts else None


# -- for ---------------------------------------------------------------------------------------------


def test_pending_then_firing_exactly_when_for_has_passed():
    book = RuleBook([rule(above=85, **{"for": 300})])
    assert run(book, host(cpu=50), at=T0) == []
    (pending,) = run(book, host(cpu=91.2), at=T0 + 10)
    assert (pending.status, pending.since, pending.state) == ("pending", T0 + 10, State.OK)
    assert status(run(book, host(cpu=92), at=T0 + 10 + 299.9)) == "pending"
    (firing,) = run(book, host(cpu=92), at=T0 + 10 + 300)
    assert (firing.status, firing.since, firing.state, firing.amount) == ("firing", T0 + 310, State.WARN, 92)


def test_pending_that_stops_holding_goes_back_to_nothing_and_starts_over():
    book = RuleBook([rule(above=85, **{"for": 60})])
    run(book, host(cpu=90), at=T0)
    assert run(book, host(cpu=80), at=T0 + 50) == []
    (again,) = run(book, host(cpu=90), at=T0 + 55)
    assert (again.status, again.since) == ("pending", T0 + 55)
    assert status(run(book, host(cpu=90), at=T0 + 110)) == "pending"
    assert status(run(book, host(cpu=90), at=T0 + 115)) == "firing"


def test_for_zero_fires_at_once_with_the_severity_as_state():
    book = RuleBook([rule(above=85, severity="critical")])
    (alert,) = run(book, host(cpu=99), at=T0)
    assert (alert.status, alert.state, alert.severity, alert.since) == ("firing", State.CRITICAL, "critical", T0)


def test_info_severity_fires_without_counting_as_a_problem():
    (alert,) = run(RuleBook([rule(above=85, severity="info")]), host(cpu=99), at=T0)
    assert (alert.status, alert.state) == ("firing", State.OK)


# -- resolve, hysteresis, flapping -------------------------------------------------------------------


def test_resolves_only_after_clear_for_then_is_listed_for_a_while_then_dropped():
    book = RuleBook([rule(above=85, clear_for=60)])
    run(book, host(cpu=90), at=T0)
    assert status(run(book, host(cpu=70), at=T0 + 10)) == "firing"  # clear since T0+10
    assert status(run(book, host(cpu=70), at=T0 + 69)) == "firing"
    (resolved,) = run(book, host(cpu=70), at=T0 + 70)
    assert (resolved.status, resolved.state, resolved.since, resolved.until) == ("resolved", State.OK, T0, T0 + 70)
    assert status(run(book, host(cpu=70), at=T0 + 70 + RESOLVED_KEEP - 1)) == "resolved"
    assert run(book, host(cpu=70), at=T0 + 70 + RESOLVED_KEEP) == []
    assert book._tracks == {}


def test_clear_for_zero_resolves_at_the_first_clear_evaluation():
    book = RuleBook([rule(above=85, clear_for=0)])
    run(book, host(cpu=90), at=T0)
    assert status(run(book, host(cpu=85), at=T0 + 2)) == "resolved"


def test_firing_again_after_resolving_is_a_new_alert():
    book = RuleBook([rule(above=85, clear_for=0)])
    run(book, host(cpu=90), at=T0)
    run(book, host(cpu=10), at=T0 + 5)
    (again,) = run(book, host(cpu=95), at=T0 + 20)
    assert (again.status, again.since, again.until) == ("firing", T0 + 20, None)


def test_hysteresis_fires_above_the_threshold_and_stays_until_at_or_below_clear():
    book = RuleBook([rule(above=85, clear=80, clear_for=0)])
    assert run(book, host(cpu=84), at=T0) == []  # between clear and threshold: does not fire
    assert status(run(book, host(cpu=86), at=T0 + 2)) == "firing"
    assert status(run(book, host(cpu=81), at=T0 + 4)) == "firing"  # below the threshold, still above clear
    assert status(run(book, host(cpu=80.5), at=T0 + 6)) == "firing"
    assert status(run(book, host(cpu=80), at=T0 + 8)) == "resolved"
    assert status(run(book, host(cpu=84), at=T0 + 10)) == "resolved"  # needs the threshold again to fire
    assert status(run(book, host(cpu=85.1), at=T0 + 12)) == "firing"


def test_hysteresis_for_a_below_rule_works_the_other_way_up():
    book = RuleBook([Rule.from_options({"name": "success_low", "source": "kpis", "below": 95, "clear": 97,
                                        "clear_for": 0})])
    assert run(book, gauge("success", 96), at=T0) == []
    assert status(run(book, gauge("success", 94.9), at=T0 + 2)) == "firing"
    assert status(run(book, gauge("success", 96.5), at=T0 + 4)) == "firing"
    assert status(run(book, gauge("success", 97), at=T0 + 6)) == "resolved"


def test_a_flapping_condition_fires_once_and_stays_firing():
    """Toggling every 10 s for 5 minutes around the threshold: one alert, one since, never resolved."""
    book = RuleBook([rule(above=85, clear_for=60)])
    seen = set()
    for step in range(0, 300, 2):
        cpu = 90 if (step // 10) % 2 == 0 else 70
        alerts = run(book, host(cpu=cpu), at=T0 + step)
        seen.update((a.status, a.since) for a in alerts)
    assert seen == {("firing", T0)}
    # and once it stops flapping (clear from T0+300), it resolves a clear_for later
    assert status(run(book, host(cpu=70), at=T0 + 300)) == "firing"
    assert status(run(book, host(cpu=70), at=T0 + 360)) == "resolved"


def test_a_flapping_condition_with_for_never_gets_past_pending():
    book = RuleBook([rule(above=85, **{"for": 30})])
    statuses = set()
    for step in range(0, 300, 2):
        statuses.add(status(run(book, host(cpu=90 if (step // 10) % 2 == 0 else 70), at=T0 + step)))
    assert statuses == {"pending", None}


# -- what rules match --------------------------------------------------------------------------------


def test_below_rule():
    book = RuleBook([Rule.from_options({"name": "low", "source": "kpis", "below": 95})])
    assert run(book, gauge("success", 95), at=T0) == []
    (alert,) = run(book, gauge("success", 94), at=T0 + 1)
    assert alert.status == "firing" and alert.amount == 94


@pytest.mark.parametrize("level, fires", [
    ("warn", {State.WARN, State.UNKNOWN, State.CRITICAL}),
    ("unknown", {State.UNKNOWN, State.CRITICAL}),
    ("critical", {State.CRITICAL}),
])
def test_state_rules_fire_at_or_beyond_their_level(level, fires):
    for state in State:
        book = RuleBook([Rule.from_options({"name": "api_down", "source": "api", "state": level})])
        reading = CheckReading(key="api", source="api", state=state, reason="connection refused", ts=T0)
        alerts = run(book, reading, at=T0)
        assert bool(alerts) == (state in fires), state


def test_state_rule_why_is_the_readings_state_and_reason():
    book = RuleBook([Rule.from_options({"name": "api_down", "source": "api", "state": "critical",
                                        "severity": "critical", "description": "restart it"})])
    reading = CheckReading(key="api", source="api", state=State.CRITICAL, reason="HTTP 503 from /health", ts=T0)
    (alert,) = run(book, reading, at=T0)
    assert alert.why == "CRITICAL: HTTP 503 from /health · restart it"
    assert alert.amount is None and alert.target == "api"


def test_source_and_target_globs():
    book = RuleBook([rule(source="fleet-*", target="*:web-*", above=85)])
    readings = [host("web-1", 90, source="fleet-eu"), host("db-1", 99, source="fleet-eu"),
                host("web-2", 90, source="other")]
    alerts = run(book, *readings, at=T0)
    assert [a.key for a in alerts] == ["rules:high_cpu:fleet-eu:web-1"]


def test_metric_picks_a_hosts_number():
    book = RuleBook([rule(metric="disk", above=90)])
    (alert,) = run(book, host(cpu=10, disk=95.5), at=T0)
    assert alert.amount == 95.5 and alert.why.startswith("disk 95.5% > 90%")


def test_alerts_and_the_rules_own_readings_are_never_judged():
    book = RuleBook([Rule.from_options({"name": "any", "source": "*", "state": "warn"})])
    other = AlertReading(key="am:x", source="am", state=State.CRITICAL, reason="", ts=T0)
    own = CheckReading(key="rules:x", source="rules", state=State.CRITICAL, reason="", ts=T0)
    assert run(book, other, own, at=T0) == []


def test_each_target_has_its_own_alert():
    book = RuleBook([rule(above=85)])
    alerts = run(book, host("web-2", 90), host("web-1", 95), host("web-3", 10), at=T0)
    assert [(a.key, a.target, a.amount) for a in alerts] == [
        ("rules:high_cpu:fleet:web-1", "fleet:web-1", 95), ("rules:high_cpu:fleet:web-2", "fleet:web-2", 90)]


# -- missing data ------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [None, math.nan])
def test_no_value_moves_nothing_for_a_firing_alert_and_says_so_after_a_few_evaluations(missing):
    book = RuleBook([rule(above=85, clear_for=10)])
    run(book, host(cpu=90), at=T0)
    for n in range(1, NO_DATA_EVALS):
        (alert,) = run(book, host(cpu=missing), at=T0 + 60 * n)
        assert alert.status == "firing" and "no data" not in alert.why
    (alert,) = run(book, host(cpu=missing), at=T0 + 60 * NO_DATA_EVALS)
    assert alert.status == "firing" and alert.amount == 90
    assert alert.why.endswith(f" · no data since {time.strftime('%H:%M', time.localtime(T0))}")
    (back,) = run(book, host(cpu=91), at=T0 + 3600)
    assert back.status == "firing" and back.since == T0 and "no data" not in back.why


def test_no_value_for_a_pending_alert_sends_it_back_to_nothing():
    book = RuleBook([rule(above=85, **{"for": 60})])
    run(book, host(cpu=90), at=T0)
    assert run(book, host(cpu=None), at=T0 + 30) == []
    assert run(book, host(cpu=90), at=T0 + 70)[0].since == T0 + 70  # `for` starts over


def test_an_unreadable_gauge_is_no_data_not_zero():
    """A gauge whose query failed or returned nothing is UNKNOWN with a placeholder 0: a below-rule must not fire."""
    book = RuleBook([Rule.from_options({"name": "success_low", "source": "kpis", "below": 95})])
    assert run(book, gauge("success", 0.0, state=State.UNKNOWN), at=T0) == []
    run(book, gauge("success", 50.0), at=T0 + 1)
    (alert,) = run(book, gauge("success", 0.0, state=State.UNKNOWN), at=T0 + 2)
    assert alert.status == "firing" and alert.amount == 50.0


def test_no_value_does_not_start_an_alert():
    assert run(RuleBook([rule(above=85)]), host(cpu=None), at=T0) == []


def test_a_reading_gone_keeps_its_alert_firing_for_a_while_then_it_resolves():
    book = RuleBook([rule(above=85)])
    run(book, host(cpu=90), at=T0)
    (alert,) = book.evaluate({}, T0 + 10)
    assert alert.status == "firing"
    assert book.evaluate({}, T0 + 10 + GONE_AFTER - 1)[0].status == "firing"
    (gone,) = book.evaluate({}, T0 + 10 + GONE_AFTER)
    assert (gone.status, gone.until) == ("resolved", T0 + 10 + GONE_AFTER)
    assert gone.why == f"fleet:web-1 is gone from fleet since {time.strftime('%H:%M', time.localtime(T0 + 10))}: resolved"
    assert book.evaluate({}, T0 + 10 + GONE_AFTER + RESOLVED_KEEP) == []
    assert book._tracks == {}


def test_memory_stays_bounded_across_churning_targets():
    book = RuleBook([rule(above=85, **{"for": 30}, clear_for=0)])
    for step in range(1000):  # a new host every evaluation, each pending once, then gone
        book.evaluate(by_key([host(f"pod-{step}", 90)]), T0 + step)
    assert len(book._tracks) == 1


# -- identity and wording ----------------------------------------------------------------------------


def test_fingerprint_key_and_labels_are_stable_across_evaluations():
    book = RuleBook([rule(above=85, **{"for": 10})])
    first = run(book, host(cpu=90), at=T0)[0]
    later = run(book, host(cpu=99), at=T0 + 20)[0]
    assert first.status == "pending" and later.status == "firing"
    assert first.fingerprint == later.fingerprint == fingerprint({"alertname": "high_cpu", "target": "fleet:web-1"})
    assert first.key == later.key == "rules:high_cpu:fleet:web-1"
    assert later.labels == (("alertname", "high_cpu"), ("severity", "warning"), ("source", "fleet"),
                            ("target", "fleet:web-1"))
    assert (later.source, later.origin, later.name, later.ts) == ("rules", "lakedeck", "high_cpu", T0 + 20)


def test_the_why_says_value_against_threshold_through_the_alerts_life():
    book = RuleBook([rule(above=85, clear=80, clear_for=60, **{"for": 300}, description="scale out the web tier")])
    assert run(book, host(cpu=91.2), at=T0)[0].why == "cpu 91.2% > 85%, firing if it lasts 5m · scale out the web tier"
    (firing,) = run(book, host(cpu=91.2), at=T0 + 300)
    assert firing.why == "cpu 91.2% > 85% for 5m · scale out the web tier"
    assert firing.reason == "warning high_cpu firing on fleet:web-1: cpu 91.2% > 85% for 5m · scale out the web tier"
    tail = " · scale out the web tier"
    assert run(book, host(cpu=82), at=T0 + 310)[0].why == "cpu 82%, not yet ≤ 80% (fired > 85%)" + tail
    assert run(book, host(cpu=79), at=T0 + 320)[0].why == "cpu 79% ≤ 80%, resolves after 1m clear" + tail
    assert run(book, host(cpu=75), at=T0 + 380)[0].why == "cpu 75% ≤ 80%: resolved" + tail


def test_the_why_names_a_gauge_and_its_unit():
    book = RuleBook([Rule.from_options({"name": "lag", "source": "kpis", "above": 10000})])
    (alert,) = run(book, gauge("consumer lag{analytics}", 12345, unit="msg"), at=T0)
    assert alert.why == "consumer lag{analytics} 12,345 msg > 10,000 msg"
    book = RuleBook([Rule.from_options({"name": "slow", "source": "api", "above": 500})])
    check = CheckReading(key="api", source="api", state=State.OK, reason="", ts=T0, latency_ms=812.5)
    assert run(book, check, at=T0)[0].why == "latency 812.5 ms > 500 ms"


def test_untrusted_text_in_the_why_stays_on_one_line():
    book = RuleBook([Rule.from_options({"name": "down", "source": "api", "state": "critical"})])
    reading = CheckReading(key="api", source="api", state=State.CRITICAL, reason="bad\nthing\x1b[31m " + "x" * 300,
                           ts=T0)
    (alert,) = run(book, reading, at=T0)
    assert "\n" not in alert.why and "\x1b" not in alert.why and len(alert.why) <= 200


def test_two_rules_with_one_name_are_refused():
    with pytest.raises(ValueError, match="rules named twice: high_cpu"):
        RuleBook([rule(above=85), rule(above=95)])


# -- through the config and the source ---------------------------------------------------------------

CONFIG = """
refresh: 2s
services: [{name: api, kind: tcp, port: 80}]
rules:
  - name: api_down
    source: api
    state: critical
    severity: critical
    description: the API does not answer
  - {name: api_slow, source: api, above: 500, for: 1m}
"""


def rules_source(text: str = CONFIG, clock=lambda: T0):
    from backends.adapters import build_source
    from backends.adapters.rules_source import RulesSource

    config = cfg.parse(text, "t.yaml", {})
    spec = config.sources[-1]
    source = build_source(spec, config)
    assert isinstance(source, RulesSource)
    source.clock = clock
    return source


async def test_the_rules_source_judges_the_readings_it_watches():
    now = [T0]
    source = rules_source(clock=lambda: now[0])
    assert source.describe() == "2 rules"
    assert await source.poll() == []  # nothing watched yet
    readings: dict[str, Reading] = {}
    source.watch(readings)
    assert await source.poll() == []
    readings["api"] = CheckReading(key="api", source="api", state=State.CRITICAL, reason="connection refused", ts=T0,
                                   latency_ms=900)
    alerts = by_key(await source.poll())
    assert alerts["rules:api_down:api"].status == "firing"
    assert alerts["rules:api_down:api"].why == "CRITICAL: connection refused · the API does not answer"
    assert alerts["rules:api_slow:api"].status == "pending"
    now[0] += 60
    assert by_key(await source.poll())["rules:api_slow:api"].status == "firing"


async def test_an_ack_lasts_until_the_alert_resolves():
    now = [T0]
    source = rules_source(clock=lambda: now[0])
    readings = {"api": CheckReading(key="api", source="api", state=State.CRITICAL, reason="refused", ts=T0)}
    source.watch(readings)
    (alert,) = await source.poll()
    (ack,) = source.item_actions(alert)
    await source.run(ack, lambda line: None)
    assert (await source.poll())[0].acked
    readings["api"] = CheckReading(key="api", source="api", state=State.OK, reason="", ts=T0)
    now[0] += 10
    (clearing,) = await source.poll()
    assert clearing.status == "firing" and clearing.acked  # clear, but not yet for clear_for (1m)
    now[0] += 60
    (resolved,) = await source.poll()
    assert resolved.status == "resolved" and not resolved.acked and source.acked == set()


def test_one_rule_reads_describe_as_singular():
    assert rules_source("services: [{name: a, kind: tcp, port: 80}]\nrules: [{name: r, source: a, above: 1}]\n"
                        ).describe() == "1 rule"


def test_the_example_kpi_rules_load_and_name_real_sources():
    path = Path(__file__).parent.parent / "examples" / "rules-kpis.yaml"
    config = cfg.load_file(path, {})
    names = [s.name for s in config.sources]
    spec = config.sources[-1]
    assert spec.name == "rules" and spec.kind == "rules"
    rules = [Rule.from_options(o) for o in spec.options["rules"]]
    assert len(rules) >= 9 and len({r.name for r in rules}) == len(rules)
    for r in rules:  # every rule's source glob names at least one source of the file
        assert any(fnmatch.fnmatchcase(n, r.source) for n in names), r.name
        assert r.description, r.name
    RuleBook(rules)
