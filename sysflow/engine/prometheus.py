"""PromQL measurements for metric checks (``analysis:`` with ``prometheus:`` and ``query:``).

The query is rendered over the wave's hosts (``{{ hosts | join('|') }}``; the sandbox and strict
undefined of file templates), then sent to ``/api/v1/query`` (instant) or ``/api/v1/query_range``
(over the last ``range`` seconds of wall-clock time, every ``step``). Every sample of the answer is a value the check's
bounds judge. An unreachable Prometheus, an error answer or an empty result gives no value: the
measurement counts as inconclusive (``inconclusive_limit``). HTTP runs in a worker thread (httpx),
as the other providers' does, so the simulator's virtual clock never jumps past a request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sysflow.clock import Clock
from sysflow.engine.state import StateReading, judge
from sysflow.model.analysis import MetricCheck
from sysflow.model.state_checks import StateCheck
from sysflow.model.templates import TemplateError, render_file

__all__ = ["PromResult", "PrometheusStateProvider", "query_prometheus", "render_query"]

PromResult = tuple[list[float], str]  # the samples (empty: no value) and why, when there are none


def render_query(check: MetricCheck | StateCheck, hosts: Sequence[str]) -> str:
    assert check.query is not None
    return render_file(check.query, {"hosts": [h for h in hosts if not h.startswith("@")]})


def _samples(data: dict[str, Any]) -> list[float]:
    result = data.get("result") or []
    if data.get("resultType") == "scalar":
        result = [{"value": result}]
    values: list[float] = []
    for series in result:
        pairs = series.get("values") or ([series["value"]] if "value" in series else [])
        values += [float(v) for _, v in pairs]
    return [v for v in values if not math.isnan(v)]


def _get(check: MetricCheck | StateCheck, query: str, now: float) -> PromResult:
    assert check.prometheus is not None
    base = check.prometheus.rstrip("/")
    timeout = check.timeout if isinstance(check, MetricCheck) else check.request_timeout
    if not isinstance(check, MetricCheck) or check.range is None:
        url, params = f"{base}/api/v1/query", {"query": query}  # at Prometheus's own now
    else:
        url = f"{base}/api/v1/query_range"
        params = {
            "query": query,
            "start": f"{now - check.range:.3f}",
            "end": f"{now:.3f}",
            "step": f"{check.step:g}",
        }
    try:
        response = httpx.get(url, params=params, timeout=timeout)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return [], f"Prometheus {base} unreachable ({type(exc).__name__})"
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        return [], f"Prometheus error: {error or response.status_code}"
    values = _samples(body.get("data") or {})
    return values, "" if values else f"empty result for {query}"


async def query_prometheus(check: MetricCheck | StateCheck, hosts: Sequence[str], clock: Clock) -> PromResult:
    """The samples of one measurement, or none and why."""
    try:
        query = render_query(check, hosts)
    except TemplateError as exc:
        return [], f"query template: {exc}"
    # Prometheus holds the real world's samples: ranges end at the wall clock, even on a simulator's
    return await asyncio.to_thread(_get, check, query, time.time())


@dataclass
class PrometheusStateProvider:
    """A state check over PromQL: ``json.value`` (the largest sample), ``json.values``, ``ok``
    (an answer with samples) for the check's ``expect``; no answer is unhealthy, with the reason."""

    spec: StateCheck
    clock: Clock

    @property
    def name(self) -> str:
        return self.spec.name

    async def read(self, hosts: Sequence[str]) -> StateReading:
        samples, why = await query_prometheus(self.spec, hosts, self.clock)
        if not samples:
            return StateReading(False, f"{self.name}: {why}")
        values = {"json": {"value": max(samples), "values": samples}, "ok": True, "status": 200,
                  "stdout": "", "stderr": "", "rc": None}  # fmt: skip
        return judge(self.name, self.spec.expect, values)
