"""The replay job runner: the worker's periodic job that advances running replays.

A job is a cursor over the tenant's events in a time window. Each run enqueues about a second
of its paced work in small batches, each delivery due at its own moment (stored, so pacing
survives a restart and the worker sends them evenly); a batch's deliveries and the moved cursor
are one transaction, so a restarted hub resumes exactly where the job was. Jobs are claimed
with a lease, so one worker advances a job at a time, however many run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace

from app.clock import Clock
from app.fanout import delivery_to
from app.records import Endpoint, Event, NewEvent, Replay
from app.replays import Request, request_of, selected, window
from app.store import Store

log = logging.getLogger("billhook.replays")

# Small steps keep each one to a few milliseconds, so live traffic interleaves with a replay.
BATCH = 100  # events enqueued per transaction at most
SCAN = 1000  # events looked at per batch at most (a filter may select few of them)
AHEAD_MS = 1000  # a running job keeps about this much of its paced work enqueued
MAX_SLICES = 20  # batches per run, so one job never holds the periodic loop for long
LEASE_MS = 60_000


class ReplayRunner:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.on_enqueue: Callable[[], None] = lambda: None

    async def run_due(self) -> int:
        """Advance every replay that is due by about a second of paced work (the worker's
        periodic loop calls this)."""
        now = self._clock.now_ms()
        due = await self._store.replays.claim(now, now + LEASE_MS, 20)
        for replay in due:
            try:
                await self._advance(replay, now)
            except Exception:
                log.exception(
                    "advancing a replay failed; retried after its lease",
                    extra={"tenant_id": replay.tenant_id, "replay_id": replay.id,
                           "endpoint_id": replay.endpoint_id},
                )  # fmt: skip
        return len(due)

    async def _advance(self, replay: Replay, now: int) -> None:
        """Enqueue the job's next second of work in batches, each delivery due at its paced
        moment (stored, so pacing survives a restart and the worker sends them evenly)."""
        lease = replay.next_run_at
        endpoint = await self._store.endpoints.get(replay.tenant_id, replay.endpoint_id)
        if endpoint is None:  # deleted meanwhile: nothing left to send to
            await self._store.replays.advance(replace(replay, status="cancelled"), lease, [], now)
            return
        request = request_of(replay)
        spacing = 1000 / replay.rate_per_s
        at = float(max(now, replay.paced_until or now))
        horizon = now + AHEAD_MS
        for _ in range(MAX_SLICES):
            room = max(1, min(BATCH, math.ceil((horizon - at) / spacing)))
            batch, replay = await self._slice(replay, endpoint, request, room, at, now)
            at += len(batch) * spacing
            ahead = replay.status == "running" and at < horizon
            replay = replace(
                replay,
                paced_until=round(at),
                next_run_at=lease if ahead else max(now, round(at) - AHEAD_MS // 2),
            )
            if not await self._store.replays.advance(replay, lease, batch, now):
                return  # cancelled, or another worker took the job over
            if batch:
                self.on_enqueue()
            if not ahead:
                return
        await self._store.replays.advance(replace(replay, next_run_at=now), lease, [], now)

    async def _slice(
        self, replay: Replay, endpoint: Endpoint, request: Request, room: int, at: float, now: int
    ) -> tuple[list[NewEvent], Replay]:
        """Up to `room` selected events after the cursor, with their paced deliveries, and the
        job moved past them (done when the window is exhausted)."""
        since_id, until_id = window(request, self._clock.now_ms())
        after = replay.cursor or since_id
        scan = min(SCAN, 2 * room + 16)  # enough for the room when most events are selected
        events = await self._store.replays.candidates(replay.tenant_id, after, until_id, scan)
        chosen, cursor, early = await self._choose(events, endpoint, request, room, after)
        spacing = 1000 / replay.rate_per_s
        batch = [
            NewEvent(
                e,
                (
                    delivery_to(
                        e,
                        endpoint,
                        now,
                        trigger="replay",
                        replay_id=replay.id,
                        due=round(at + n * spacing),
                    ),
                ),
            )
            for n, e in enumerate(chosen)
        ]
        status = "running" if early or len(events) == scan else "done"
        moved = replace(replay, cursor=cursor, enqueued=replay.enqueued + len(batch), status=status)
        return batch, moved

    async def _choose(
        self, events: list[Event], endpoint: Endpoint, request: Request, limit: int, after: str
    ) -> tuple[list[Event], str, bool]:
        """Up to `limit` selected events, the cursor after the last event used, and whether
        it stopped early (more were selected than the pace allows)."""
        picked = [e for e in events if selected(e, endpoint, request)]
        if request.only_failed and picked:
            failed = await self._store.replays.failed_among(endpoint.id, [e.id for e in picked])
            picked = [e for e in picked if e.id in failed]
        if len(picked) > limit:
            return picked[:limit], picked[limit - 1].id, True
        return picked, events[-1].id if events else after, False
