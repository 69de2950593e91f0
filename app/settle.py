"""What one attempt means for its delivery: the attempt record and the delivery's next state."""

from __future__ import annotations

import random
from collections.abc import Sequence

from app.delivery import Outcome
from app.ids import new_id
from app.records import Attempt, Finished, Job
from app.retry import next_attempt_at


def settle(
    job: Job,
    outcome: Outcome,
    schedule: Sequence[float],
    *,
    rng: random.Random | None = None,
) -> Finished:
    """Success ends the delivery; a failure is retried from the schedule until it runs out."""
    number = job.attempts + 1
    attempt = Attempt(
        id=new_id("att", outcome.started_at),
        delivery_id=job.delivery_id,
        attempt=number,
        trigger=job.trigger,
        started_at=outcome.started_at,
        duration_ms=outcome.duration_ms,
        status_code=outcome.status_code,
        error=outcome.error,
        response_body=outcome.response_body,
    )
    if outcome.ok:
        return Finished(job, attempt, "succeeded", None)
    due = next_attempt_at(
        number,
        outcome.started_at + outcome.duration_ms,
        schedule,
        jitter=(rng or random).uniform(-1.0, 1.0),
        retry_after_s=outcome.retry_after_s,
        slow_down=outcome.slow_down,
    )
    return Finished(job, attempt, "failed" if due is None else "pending", due)
