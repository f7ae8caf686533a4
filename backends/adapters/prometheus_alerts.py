"""Prometheus' own view of its alerting rules (``/api/v1/alerts``): what is pending and what fires, before
Alertmanager groups, silences or routes any of it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..model import AlertReading, Reading
from .alert_base import AlertSource, labelled_alert
from .json_api import ApiError
from .pipeline_base import epoch
from .prometheus_api import ReadsPrometheus, number


class PrometheusAlerts(ReadsPrometheus, AlertSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connect(self.spec.options)

    async def poll(self) -> list[Reading]:
        if self.api is None:
            return self.failed(self.bad_url)
        try:
            alerts = await self.api.alerts(self.timeout * 0.9)
        except ApiError as exc:
            return self.failed(str(exc))
        now = self.clock()
        return self.with_acks(self._alert(a, now) for a in alerts if a.get("state") in ("pending", "firing"))

    def _alert(self, alert: Mapping[str, Any], now: float) -> AlertReading:
        value = number(alert.get("value"))
        return labelled_alert(self.name, "prometheus", alert.get("labels") or {}, alert.get("annotations") or {},
                              str(alert["state"]), epoch(alert.get("activeAt")), now,
                              amount=value if math.isfinite(value) else None)
