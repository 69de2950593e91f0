"""Endpoint health: what a batch of attempt outcomes does to an endpoint. Pure: no I/O, no clock.

    active ──5 failures in a row──► failing ──5 days of nothing but failures──► disabled
       ▲                              │  circuit open: its deliveries are held; one at a time
       └──────── a success ───────────┘  is let through as a probe, at `probe_at`
    any state ──410 Gone──► disabled at once

The probe's pace is the endpoint's, not a delivery's: after each failed probe the next waits
the following step of the retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, …), so a dead
endpoint costs one request per step, not one per event. Each transition yields a notice that
becomes an operational event (endpoint.failing, endpoint.recovered, endpoint.disabled); a
delivery that runs out of attempts yields message.attempt.exhausted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.records import OPERATIONAL_TYPES

FAILING_AFTER = 5
DISABLE_AFTER_MS = 5 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Health:
    endpoint_id: str
    tenant_id: str
    url: str
    status: str  # active | disabled (the operator's switch, and auto-disable)
    health: str  # active | failing
    consecutive_failures: int = 0
    failing_since: int | None = None
    last_success_at: int | None = None
    probe_at: int | None = None  # failing: when the next held delivery goes out as a probe
    probes_failed: int = 0
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    delivery_id: str
    at: int
    ok: bool
    status_code: int | None
    error: str | None
    exhausted: bool = False  # the delivery ran out of attempts with this one
    event_id: str = ""
    event_type: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    type: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    health: Health
    notices: tuple[Notice, ...] = ()
    hold_all: bool = False  # the circuit opened (or the endpoint was disabled): hold its queue
    release_all: bool = False  # the circuit closed: send what was held

    @property
    def holding(self) -> bool:
        """Failed deliveries wait for the probe instead of their own retry."""
        return self.health.status == "disabled" or self.health.health == "failing"


def judge(health: Health, results: Sequence[Result], backoff_ms: Sequence[int]) -> Verdict:
    """Apply outcomes in the order they happened; `backoff_ms` paces the probes."""
    if health.status != "disabled" and health.health == "active" and all(r.ok for r in results):
        # The common case, decided once per endpoint and turn rather than once per attempt.
        last = max((r.at for r in results), default=health.last_success_at)
        fine = replace(health, consecutive_failures=0, failing_since=None, last_success_at=last)
        return Verdict(fine)
    verdict = Verdict(health)
    for result in sorted(results, key=lambda r: r.at):
        verdict = _step(verdict, result, backoff_ms)
    return verdict


def _step(verdict: Verdict, result: Result, backoff_ms: Sequence[int]) -> Verdict:
    if verdict.health.status == "disabled":
        return verdict
    if result.status_code == 410:
        return _disable(verdict, "gone", result.at)
    if result.ok:
        return _success(verdict, result)
    return _failure(verdict, result, backoff_ms)


def _success(verdict: Verdict, result: Result) -> Verdict:
    h = verdict.health
    healthy = replace(
        h,
        health="active",
        consecutive_failures=0,
        failing_since=None,
        last_success_at=result.at,
        probe_at=None,
        probes_failed=0,
    )
    if h.health != "failing":
        return replace(verdict, health=healthy)
    notice = Notice(
        "endpoint.recovered",
        {**_about(h), "failingSince": h.failing_since, "recoveredAt": result.at},
    )
    return replace(
        verdict,
        health=healthy,
        notices=(*verdict.notices, notice),
        release_all=True,
        hold_all=False,
    )


def _failure(verdict: Verdict, result: Result, backoff_ms: Sequence[int]) -> Verdict:
    h = verdict.health
    since = h.failing_since if h.failing_since is not None else result.at
    h = replace(h, consecutive_failures=h.consecutive_failures + 1, failing_since=since)
    notices = verdict.notices
    if result.exhausted and result.event_type not in OPERATIONAL_TYPES:  # no notices about notices
        notices = (*notices, _exhausted(h, result))
    verdict = replace(verdict, health=h, notices=notices)
    if result.at - since >= DISABLE_AFTER_MS:
        return _disable(verdict, "failing", result.at)
    if h.health == "failing":  # a failed probe: the next waits the following step
        probes = h.probes_failed + 1
        step = backoff_ms[min(probes, len(backoff_ms) - 1)] if backoff_ms else 0
        return replace(verdict, health=replace(h, probes_failed=probes, probe_at=result.at + step))
    if h.consecutive_failures >= FAILING_AFTER:
        notice = Notice(
            "endpoint.failing",
            {
                **_about(h),
                "failingSince": since,
                "consecutiveFailures": h.consecutive_failures,
                "lastStatusCode": result.status_code,
                "lastError": result.error,
            },
        )
        first = backoff_ms[0] if backoff_ms else 0
        failing = replace(h, health="failing", probe_at=result.at + first, probes_failed=0)
        return replace(
            verdict,
            health=failing,
            notices=(*verdict.notices, notice),
            hold_all=True,
            release_all=False,
        )
    return verdict


def _disable(verdict: Verdict, reason: str, at: int) -> Verdict:
    h = verdict.health
    notice = Notice(
        "endpoint.disabled",
        {**_about(h), "reason": reason, "failingSince": h.failing_since, "disabledAt": at},
    )
    disabled = replace(h, status="disabled", disabled_reason=reason, probe_at=None)
    return replace(
        verdict,
        health=disabled,
        notices=(*verdict.notices, notice),
        hold_all=True,
        release_all=False,
    )


def _exhausted(h: Health, result: Result) -> Notice:
    return Notice(
        "message.attempt.exhausted",
        {
            "endpointId": h.endpoint_id,
            "eventId": result.event_id,
            "eventType": result.event_type,
            "deliveryId": result.delivery_id,
            "lastStatusCode": result.status_code,
            "lastError": result.error,
        },
    )


def _about(h: Health) -> dict[str, Any]:
    return {"endpointId": h.endpoint_id, "url": h.url}
