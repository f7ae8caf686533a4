"""KubernetesWorkload against recorded ``kubectl get deployment|statefulset -o json`` output.

kubectl cannot reach a cluster here, so a stand-in executable named ``kubectl`` is put first on PATH: it prints
output recorded in the real shape (tests/fixtures/kubernetes/: apps/v1 objects with spec.replicas and
status.readyReplicas/availableReplicas/updatedReplicas/conditions; the NotFound error; the real
"connection refused" answer of kubectl on this machine) and logs its argument list, so the exact argv of the
poll and of every action is asserted.
"""

from __future__ import annotations

import pytest
from helpers import source_for
from stand_ins import fixture_text

from backends.actions import Tier
from backends.model import CheckReading, State

GET = ["kubectl", "-n", "analytics", "get", "deployment", "trino-coordinator", "-o", "json"]


def workload(**options):
    if "statefulset" not in options:
        options.setdefault("deployment", "trino-coordinator")
    options.setdefault("namespace", "analytics")
    return source_for("services", "kubernetes", refresh="10s", timeout="5s", **options)


async def poll(source) -> CheckReading:
    [reading] = await source.poll()
    assert "\n" not in reading.reason and reading.kind == "kubernetes" and reading.key == source.name
    return reading


@pytest.mark.parametrize("fixture, state, reason", [
    ("deployment-ready.json", State.OK, "3/3 ready"),
    ("deployment-partial.json", State.WARN,
     "1/3 ready, rolling out (2/3 updated) — Deployment does not have minimum availability."),
    ("deployment-none-ready.json", State.CRITICAL,
     '0/2 ready — ReplicaSet "trino-coordinator-7b8c9d6f4a" has timed out progressing.'),
    ("deployment-scaled-to-zero.json", State.OK, "scaled to 0"),
])
async def test_recorded_deployments(stand_ins, fixture, state, reason):
    stand_ins.add("kubectl", fixture_text("kubernetes", fixture))
    source = workload()
    reading = await poll(source)
    assert (reading.state, reading.reason) == (state, reason)
    assert reading.target == "deployment/trino-coordinator in analytics"
    assert stand_ins.calls("kubectl") == [GET]


async def test_details(stand_ins):
    stand_ins.add("kubectl", fixture_text("kubernetes", "deployment-partial.json"))
    details = dict((await poll(workload(context="prod-eu"))).details)
    assert details == {"ready": "1/3", "available": "1", "updated": "2", "images": "trinodb/trino:468",
                       "namespace": "analytics", "context": "prod-eu"}


async def test_statefulset_with_context(stand_ins):
    stand_ins.add("kubectl", fixture_text("kubernetes", "statefulset-2-of-3.json"))
    source = workload(statefulset="kafka", namespace="streaming", context="prod-eu")
    reading = await poll(source)
    assert (reading.state, reading.reason) == (State.WARN, "2/3 ready")
    assert reading.target == "statefulset/kafka in prod-eu/streaming"
    assert stand_ins.calls("kubectl") == [
        ["kubectl", "--context", "prod-eu", "-n", "streaming", "get", "statefulset", "kafka", "-o", "json"]]


async def test_not_found_is_critical(stand_ins):
    stand_ins.add("kubectl", stderr=fixture_text("kubernetes", "not-found.stderr"), code=1)
    reading = await poll(workload())
    assert (reading.state, reading.reason) == (
        State.CRITICAL, "deployment trino-coordinator not found in namespace analytics")


async def test_unreachable_cluster_is_unknown(stand_ins):
    stand_ins.add("kubectl", stderr=fixture_text("kubernetes", "refused.stderr"), code=1)
    reading = await poll(workload())
    assert (reading.state, reading.reason) == (
        State.UNKNOWN, ("kubectl cannot reach the cluster: The connection to the server localhost:8080 was refused "
                       "- did you specify the right host or port?"))


async def test_bad_json_and_missing_kubectl(stand_ins):
    stand_ins.add("kubectl", "<html>proxy login</html>\n")
    reading = await poll(workload())
    assert reading.state is State.UNKNOWN
    assert reading.reason == "kubectl get printed something that is not a deployment in JSON: '<html>proxy login</html>'"
    reading = await poll(workload(kubectl="/opt/nowhere/kubectl"))
    assert (reading.state, reading.reason) == (State.UNKNOWN, "/opt/nowhere/kubectl does not exist here — check the path")


async def test_kubectl_not_installed(only_stand_ins):
    reading = await poll(workload())
    assert (reading.state, reading.reason) == (State.UNKNOWN, "kubectl is not installed here")


async def test_actions_exact_argv(stand_ins):
    source = workload(context="prod-eu")
    prefix = ["kubectl", "--context", "prod-eu", "-n", "analytics"]
    before = {a.id: a for a in source.actions()}
    assert list(before) == ["restart", "rollout-status"]  # how many replicas is not known before a poll
    stand_ins.add("kubectl", fixture_text("kubernetes", "deployment-ready.json"))
    await poll(source)
    actions = {a.id: a for a in source.actions()}
    expected = {
        "restart": (["rollout", "restart", "deployment/trino-coordinator"], Tier.DISRUPTIVE, "restarting"),
        "rollout-status": (["rollout", "status", "deployment/trino-coordinator", "--timeout=30s"], Tier.READ, ""),
        "scale-up": (["scale", "deployment/trino-coordinator", "--replicas=4"], Tier.DISRUPTIVE, "scaling"),
        "scale-down": (["scale", "deployment/trino-coordinator", "--replicas=2"], Tier.DISRUPTIVE, "scaling"),
    }
    assert set(actions) == set(expected)
    for action_id, (args, tier, expect) in expected.items():
        action = actions[action_id]
        assert list(action.argv) == prefix + args
        assert (action.tier, action.expect, action.timeout) == (tier, expect, 60.0)
    assert actions["scale-up"].title == "Scale up to 4" and actions["scale-down"].title == "Scale down to 2"


async def test_no_scale_down_at_zero_and_statefulset_refs(stand_ins):
    stand_ins.add("kubectl", fixture_text("kubernetes", "deployment-scaled-to-zero.json"))
    source = workload()
    await poll(source)
    actions = {a.id: a for a in source.actions()}
    assert "scale-down" not in actions
    assert list(actions["scale-up"].argv) == ["kubectl", "-n", "analytics", "scale", "deployment/trino-coordinator",
                                              "--replicas=1"]
    sts = workload(statefulset="kafka")
    assert list(next(a for a in sts.actions() if a.id == "restart").argv) == [
        "kubectl", "-n", "analytics", "rollout", "restart", "statefulset/kafka"]


async def test_scale_runs_kubectl(stand_ins):
    stand_ins.add("kubectl", fixture_text("kubernetes", "deployment-ready.json"), when=("get",))
    stand_ins.add("kubectl", "deployment.apps/trino-coordinator scaled\n", when=("scale",))
    source = workload()
    await poll(source)
    lines: list[str] = []
    result = await source.run(next(a for a in source.actions() if a.id == "scale-up"), lines.append)
    assert result.ok and lines == ["deployment.apps/trino-coordinator scaled"]
    assert stand_ins.calls("kubectl")[-1] == [
        "kubectl", "-n", "analytics", "scale", "deployment/trino-coordinator", "--replicas=4"]
