"""Recording what attempts did, and what follows from it, inside the worker's turn transaction:
the attempts, each delivery's next state, its endpoint's health (circuit, auto-disable), the
next delivery of an ordering key, and the operational events — all or nothing (an outbox).

Health rules are not decided here: the worker passes `judge` (app/health.py, pure).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.fanout import deliveries_for, operational
from app.health import Health, Result, Verdict
from app.records import Finished, NewEvent
from app.store.connector import Row, Tx
from app.store.endpoints import endpoint_from_row
from app.store.events import insert_events, promote_next

log = logging.getLogger("billhook.health")
Judge = Callable[[Health, Sequence[Result], Sequence[int]], Verdict]


@dataclass(frozen=True, slots=True)
class Rules:
    judge: Judge
    backoff_ms: tuple[int, ...]  # the pace of a failing endpoint's probes


# A healthy endpoint's `last_success_at` is refreshed at this granularity, so that a steady
# stream of successes does not rewrite its row in every turn.
SUCCESS_STAMP_MS = 1000


@dataclass(frozen=True, slots=True)
class Plan:
    """A turn's outcomes judged: what the endpoints' health was and becomes, and the rows the
    attempts and their deliveries are written as."""

    finished: Sequence[Finished]
    before: dict[str, Health]
    verdicts: dict[str, Verdict]
    attempts: list[dict[str, Any]]
    finishes: list[dict[str, Any]]

    @property
    def deferrable(self) -> bool:
        """Whether the rows may be written last, with the claim (one statement on PostgreSQL):
        nothing else this turn reads them — no queue held or released, no head promoted."""
        if any(v.hold_all or v.release_all for v in self.verdicts.values()):
            return False
        return not any(_promotes(f) for f in self.finished)


async def judge(tx: Tx, finished: Sequence[Finished], now: int, rules: Rules) -> Plan:
    """Locks the endpoints concerned and judges their results (the first step of a turn)."""
    before, verdicts = await _verdicts(tx, finished, rules)
    held = {f.job.delivery_id for f in finished if verdicts[f.job.endpoint_id].holding}
    attempts = [_attempt_row(f) for f in finished]
    finishes = [_finish_row(f, now, held) for f in finished]
    return Plan(finished, before, verdicts, attempts, finishes)


async def write(tx: Tx, plan: Plan) -> None:
    await tx.executemany("attempt_insert", plan.attempts)
    await tx.executemany("delivery_finish", plan.finishes)


async def settle(tx: Tx, plan: Plan, now: int) -> bool:
    """What follows from the verdicts: health rows, held or released queues, operational
    events, promoted heads. Returns whether an endpoint's health or status changed."""
    changed = await _apply(tx, plan.before, plan.verdicts, now)
    await _promote(tx, plan.finished, plan.verdicts, now)
    return changed


async def record(tx: Tx, finished: Sequence[Finished], now: int, rules: Rules) -> bool:
    """Returns whether an endpoint's health or status changed (callers drop caches)."""
    plan = await judge(tx, finished, now, rules)
    await write(tx, plan)
    return await settle(tx, plan, now)


_ATTEMPT = ("id", "delivery_id", "tenant_id", "endpoint_id", "attempt", "trigger",
            "started_at", "duration_ms", "status_code", "error", "response_body")  # fmt: skip
_FINISH = ("id", "status", "next_attempt_at", "status_code", "error", "lease_until")


def arrays(plan: Plan | None) -> dict[str, list[Any]]:
    """The plan's rows as one array per column (`:a_<column>` for attempts, `:f_<column>` for
    finished deliveries), for a statement that unnests them (PostgreSQL's claim)."""
    attempts = plan.attempts if plan else []
    finishes = plan.finishes if plan else []
    found = {f"a_{c}": [row[c] for row in attempts] for c in _ATTEMPT}
    return found | {f"f_{c}": [row[c] for row in finishes] for c in _FINISH}


async def _verdicts(
    tx: Tx, finished: Sequence[Finished], rules: Rules
) -> tuple[dict[str, Health], dict[str, Verdict]]:
    """Each endpoint's health before, and the verdict on this turn's results."""
    results: dict[str, list[Result]] = defaultdict(list)
    for f in finished:
        results[f.job.endpoint_id].append(_result(f))
    rows = await tx.fetch("endpoint_health", {"ids": tx.ids(sorted(results))})
    before = {row["id"]: _health(row) for row in rows}
    verdicts = {
        endpoint_id: rules.judge(health, results[endpoint_id], rules.backoff_ms)
        for endpoint_id, health in before.items()
    }
    for endpoint_id in results.keys() - verdicts.keys():  # deleted meanwhile: nothing to judge
        verdicts[endpoint_id] = Verdict(Health(endpoint_id, "", "", "disabled", "active"))
    return before, verdicts


def _stale(old: Health | None, new: Health) -> bool:
    """Whether the stored health must be rewritten: anything changed but a fresh success
    stamp, or the stamp is older than SUCCESS_STAMP_MS."""
    if old is None or replace(old, last_success_at=new.last_success_at) != new:
        return True
    if new.last_success_at == old.last_success_at:
        return False
    return (new.last_success_at or 0) - (old.last_success_at or 0) >= SUCCESS_STAMP_MS


def _result(f: Finished) -> Result:
    a = f.attempt
    return Result(
        delivery_id=f.job.delivery_id,
        at=a.started_at,
        ok=f.status == "succeeded",
        status_code=a.status_code,
        error=a.error,
        exhausted=f.status == "failed" and f.job.trigger != "test",  # a ping is not a message
        event_id=f.job.event_id,
        event_type=f.job.event_type,
    )


def _health(row: Row) -> Health:
    return Health(
        endpoint_id=row["id"],
        tenant_id=row["tenant_id"],
        url=row["url"],
        status=row["status"],
        health=row["health"],
        consecutive_failures=row["consecutive_failures"],
        failing_since=row["failing_since"],
        last_success_at=row["last_success_at"],
        probe_at=row["probe_at"],
        probes_failed=row["probes_failed"],
        disabled_reason=row["disabled_reason"],
    )


async def _apply(tx: Tx, before: dict[str, Health], verdicts: dict[str, Verdict], now: int) -> bool:
    changed = False
    notices: dict[str, list[Any]] = defaultdict(list)
    updates = []
    for endpoint_id, verdict in verdicts.items():
        h = verdict.health
        if not h.tenant_id:  # an endpoint deleted meanwhile
            continue
        scope = {"endpoint_id": endpoint_id, "now": now}
        if verdict.hold_all:
            await tx.execute("deliveries_hold_for_endpoint", scope)
        if verdict.release_all:
            await tx.execute("deliveries_release_for_endpoint", scope)
            await tx.execute("notify_due")
        if _stale(before.get(endpoint_id), h):
            updates.append(_health_row(h, now))
        changed = changed or verdict.hold_all or verdict.release_all
        notices[h.tenant_id] += list(verdict.notices)
    if updates:
        await tx.executemany("endpoint_health_update", updates)
    if changed:
        await tx.execute("counter_bump", {"name": "endpoints"})
    for tenant_id, tenant_notices in notices.items():
        if tenant_notices:
            await _raise(tx, tenant_id, tenant_notices, now)
    return changed


def _health_row(h: Health, now: int) -> dict[str, Any]:
    return {
        "id": h.endpoint_id,
        "status": h.status,
        "disabled_reason": h.disabled_reason,
        "health": h.health,
        "consecutive_failures": h.consecutive_failures,
        "failing_since": h.failing_since,
        "last_success_at": h.last_success_at,
        "probe_at": h.probe_at,
        "probes_failed": h.probes_failed,
        "now": now,
    }


async def _raise(tx: Tx, tenant_id: str, notices: Sequence[Any], now: int) -> None:
    """Operational events fan out like any event, in this same transaction."""
    rows = await tx.fetch("endpoints_of_tenant", {"tenant_id": tenant_id})
    endpoints = [endpoint_from_row(r, None) for r in rows]  # matched, never signed with
    batch = []
    for notice in notices:
        event = operational(tenant_id, notice.type, notice.parameters, now)
        batch.append(NewEvent(event, deliveries_for(event, endpoints, now)))
        if notice.type.startswith("endpoint."):  # health changes, for whoever reads the logs
            ids = {"tenant_id": tenant_id, "endpoint_id": event.about_endpoint_id}
            log.info(notice.type, extra={**ids, "event_id": event.id})
    await insert_events(tx, batch, {})


async def _promote(
    tx: Tx, finished: Sequence[Finished], verdicts: dict[str, Verdict], now: int
) -> None:
    """A finished head lets the next delivery of its ordering key go (held if its endpoint is)."""
    for f in finished:
        if not _promotes(f):
            continue
        accepting = not verdicts[f.job.endpoint_id].holding
        due = now if accepting else None
        await promote_next(tx, f.job.endpoint_id, f.job.ordering_key or "", due, now)


def _promotes(f: Finished) -> bool:
    return f.job.ordering_key is not None and f.status in ("succeeded", "failed")


def _attempt_row(f: Finished) -> dict[str, Any]:
    a = f.attempt
    return {
        "id": a.id,
        "delivery_id": a.delivery_id,
        "tenant_id": f.job.tenant_id,
        "endpoint_id": f.job.endpoint_id,
        "attempt": a.attempt,
        "trigger": a.trigger,
        "started_at": a.started_at,
        "duration_ms": a.duration_ms,
        "status_code": a.status_code,
        "error": a.error,
        "response_body": a.response_body,
    }


def _finish_row(f: Finished, now: int, held: set[str]) -> dict[str, Any]:
    """A failure while the circuit is open waits for the probe, it is not retried on its own."""
    retry_at = None if f.job.delivery_id in held and f.status == "pending" else f.next_attempt_at
    return {
        "id": f.job.delivery_id,
        "status": f.status,
        "next_attempt_at": retry_at,
        "status_code": f.attempt.status_code,
        "error": f.attempt.error,
        "now": now,
        "lease_until": f.job.lease_until,
    }
