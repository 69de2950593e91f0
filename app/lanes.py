"""What a worker keeps per endpoint: attempts in flight, its local queue, its rate-limit bucket
and its observed latency — one small object per endpoint, forgotten once the endpoint has been
idle a while, so a worker's memory follows the endpoints it is serving, not every endpoint it
ever saw.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from app.records import Job

QUEUE_SECONDS = 2.0  # an endpoint's local queue holds about this much of its work
MAX_DEPTH = 64  # … and at most this many times its concurrency
LATENCY_WEIGHT = 0.2
FORGET_AFTER_S = 300.0  # an idle endpoint's lane (and what it learnt) is dropped after this


class Bucket:
    """A token bucket for an endpoint's `rate_limit_per_s` (burst: one second's worth)."""

    def __init__(self, rate: float, now: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.tokens = rate
        self._now = now
        self.at = now()

    def available(self) -> float:
        now = self._now()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens

    def wait(self) -> float:
        """Seconds until a token is there."""
        return max(0.0, (1 - self.available()) / self.rate)


@dataclass(slots=True)
class Lane:
    """One endpoint in one worker."""

    busy: int = 0  # attempts in flight
    queue: deque[Job] = field(default_factory=deque)  # claimed, waiting for a slot
    bucket: Bucket | None = None
    latency: float | None = None  # seconds per attempt, smoothed
    used_at: float = 0.0  # monotonic time it last held work

    @property
    def idle(self) -> bool:
        return not self.busy and not self.queue

    def depth(self, cap: int) -> int:
        """Queue depth: ~QUEUE_SECONDS of the endpoint's work, between 1× and 64× its
        concurrency; an endpoint not measured yet gets 2×. A rate limit bounds it too: more
        than QUEUE_SECONDS of its rate would wait in the queue until their leases ran out."""
        if self.latency is None:
            depth = 2 * cap
        else:
            depth = cap * max(1, min(MAX_DEPTH, int(QUEUE_SECONDS / max(self.latency, 1e-3))))
        if self.bucket is not None:
            depth = min(depth, max(1, int(self.bucket.rate * QUEUE_SECONDS)))
        return depth

    def observe(self, seconds: float) -> None:
        before = seconds if self.latency is None else self.latency
        self.latency = before + LATENCY_WEIGHT * (seconds - before)

    def token(self, rate: float, now: Callable[[], float]) -> bool:
        """Take a token of its rate limit if there is one."""
        if self.bucket is None:
            self.bucket = Bucket(rate, now)
        self.bucket.rate = rate
        if self.bucket.available() >= 1:
            self.bucket.tokens -= 1
            return True
        return False


class Lanes:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._lanes: dict[str, Lane] = {}
        self._now = now
        self._swept_at = now()

    def __getitem__(self, endpoint_id: str) -> Lane:
        lane = self._lanes.get(endpoint_id)
        if lane is None:
            lane = self._lanes[endpoint_id] = Lane()
        lane.used_at = self._now()
        return lane

    def get(self, endpoint_id: str) -> Lane | None:
        return self._lanes.get(endpoint_id)

    def items(self) -> Iterator[tuple[str, Lane]]:
        return iter(list(self._lanes.items()))

    def held(self) -> int:
        """Jobs this worker holds: in flight or queued."""
        return sum(lane.busy + len(lane.queue) for lane in self._lanes.values())

    def forget_idle(self) -> None:
        """Drop lanes idle for FORGET_AFTER_S (looked at once a minute at most)."""
        now = self._now()
        if now - self._swept_at < 60:
            return
        self._swept_at = now
        for endpoint_id, lane in list(self._lanes.items()):
            if lane.idle and now - lane.used_at > FORGET_AFTER_S:
                del self._lanes[endpoint_id]

    def __len__(self) -> int:
        return len(self._lanes)
