"""A Kubernetes deployment or statefulset: ready replicas from ``kubectl get -o json``; restart and scale."""

from __future__ import annotations

import json
from typing import Any

from ..actions import Action, Tier
from ..config import SourceSpec
from ..model import CheckReading, State
from .service_base import Captured, PollFailed, ServiceSource

LOG_BACKLOG = 200
UNREACHABLE = ("was refused", "Unable to connect to the server", "no such host", "i/o timeout",
               "connection refused", "dial tcp")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class KubernetesWorkload(ServiceSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.resource = "deployment" if options["deployment"] else "statefulset"
        self.workload: str = options["deployment"] or options["statefulset"]
        self.namespace: str = options["namespace"]
        self.context: str | None = options["context"]
        self.kubectl: str = options["kubectl"]
        self.desired: int | None = None  # spec.replicas at the last poll: what scaling starts from

    @property
    def ref(self) -> str:
        return f"{self.resource}/{self.workload}"

    def describe(self) -> str:
        where = f"{self.context}/{self.namespace}" if self.context else self.namespace
        return f"{self.ref} in {where}"

    def log_spec(self) -> SourceSpec:
        """``kubectl logs -f`` of the workload (kubectl picks one of its pods)."""
        argv = [self.kubectl, "logs", "-f", f"--tail={LOG_BACKLOG}", "--timestamps", self.ref, "-n", self.namespace,
                *(["--context", self.context] if self.context else [])]
        return self.log_spec_of("command", command=argv, resume_since="--since-time")  # a new pod: no repeats

    def kubectl_argv(self, *args: str) -> list[str]:
        return [self.kubectl, *(["--context", self.context] if self.context else []), "-n", self.namespace, *args]

    async def check(self) -> CheckReading:
        captured = await self.capture(self.kubectl_argv("get", self.resource, self.workload, "-o", "json"),
                                      what="kubectl get")
        if captured.code != 0:
            raise PollFailed(*self._failure(captured))
        try:
            workload = json.loads(captured.stdout)
            spec, status = workload.get("spec") or {}, workload.get("status") or {}
        except (ValueError, AttributeError):
            raise PollFailed(State.UNKNOWN, f"kubectl get printed something that is not a {self.resource} in "
                                            f"JSON: {captured.stdout.strip()[:80]!r}") from None
        return self._verdict(workload, spec, status)

    def _failure(self, captured: Captured) -> tuple[State, str]:
        line = captured.last_line() or "no output"
        if "(NotFound)" in line:
            return State.CRITICAL, f"{self.resource} {self.workload} not found in namespace {self.namespace}"
        if any(sign in line for sign in UNREACHABLE):
            return State.UNKNOWN, f"kubectl cannot reach the cluster: {line}"
        if "(Forbidden)" in line:
            return State.UNKNOWN, f"kubectl is not allowed to read {self.ref}: {line}"
        return State.UNKNOWN, f"kubectl get failed: {line} (exit {captured.code})"

    def _verdict(self, workload: dict[str, Any], spec: dict[str, Any], status: dict[str, Any]) -> CheckReading:
        desired = spec["replicas"] if isinstance(spec.get("replicas"), int) else 1  # the API's default
        ready, updated = _count(status.get("readyReplicas")), _count(status.get("updatedReplicas"))
        available = _count(status.get("availableReplicas"))
        self.desired = desired
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        details = (("ready", f"{ready}/{desired}"), ("available", str(available)), ("updated", str(updated)),
                   ("images", ", ".join(str(c.get("image", "?")) for c in containers if isinstance(c, dict))),
                   ("namespace", self.namespace), *((("context", self.context),) if self.context else ()))
        details = tuple((label, value) for label, value in details if value)
        if desired == 0:
            return self.reading(State.OK, "scaled to 0", details)
        generation = _count((workload.get("metadata") or {}).get("generation"))
        rolling = updated < desired or _count(status.get("observedGeneration")) < generation
        reason = f"{ready}/{desired} ready" + (f", rolling out ({updated}/{desired} updated)" if rolling else "")
        if ready >= desired:
            return self.reading(State.OK, reason, details)
        hint = self._stuck_hint(status)
        reason += f" — {hint}" if hint else ""
        return self.reading(State.WARN if ready > 0 else State.CRITICAL, reason, details)

    @staticmethod
    def _stuck_hint(status: dict[str, Any]) -> str:
        """The condition that says why replicas are missing, e.g. a rollout past its progress deadline."""
        conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
        for condition in conditions:
            if condition.get("reason") == "ProgressDeadlineExceeded":
                return str(condition.get("message") or "rollout past its progress deadline")
        for condition in conditions:
            if condition.get("status") == "False" and condition.get("message"):
                return str(condition["message"])
        return ""

    def actions(self) -> list[Action]:
        actions = [
            self.action("restart", "Rollout restart", self.kubectl_argv("rollout", "restart", self.ref), "restarting"),
            self.action("rollout-status", "Rollout status",
                        self.kubectl_argv("rollout", "status", self.ref, "--timeout=30s"), tier=Tier.READ),
        ]
        n = self.desired
        if n is not None:
            actions.append(self.action("scale-up", f"Scale up to {n + 1}",
                                       self.kubectl_argv("scale", self.ref, f"--replicas={n + 1}"), "scaling"))
            if n > 0:
                actions.append(self.action("scale-down", f"Scale down to {n - 1}",
                                           self.kubectl_argv("scale", self.ref, f"--replicas={n - 1}"), "scaling"))
        return actions
