"""What attempts did over a window, for the console's charts: per-slice counts and success,
and latency percentiles. A window is cut into equal slices; of each the store reads a bounded
sample of the latest attempts and, when the sample is full, counts the rest from an index, so
a page stays fast on a hub that made a million attempts today. Pure: no I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SLICES = 60
SAMPLE = 300  # attempts read per slice at most


@dataclass(frozen=True, slots=True)
class Slice:
    start: int  # unix ms
    count: int  # attempts in the slice (exact)
    sample: Sequence[tuple[int, bool]]  # (duration_ms, ok) of the latest of them


@dataclass(frozen=True, slots=True)
class Bucket:
    start: int
    attempts: int
    ok: int  # estimated from the sample when the slice had more than SAMPLE
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class Activity:
    since: int
    until: int
    bucket_ms: int
    buckets: tuple[Bucket, ...]
    attempts: int
    success_rate: float | None
    p50_ms: float | None
    p99_ms: float | None
    sampled: bool  # some slice had more attempts than were read: rates are estimates

    @property
    def per_minute(self) -> float:
        return self.attempts / max((self.until - self.since) / 60_000, 1e-9)


def bounds(since: int, until: int) -> list[tuple[int, int]]:
    """The [start, end) of each slice of the window."""
    width = max(1, math.ceil((until - since) / SLICES))
    return [(since + i * width, since + (i + 1) * width) for i in range(SLICES)]


def summarise(slices: Sequence[Slice], since: int, until: int) -> Activity:
    buckets = tuple(_bucket(s) for s in slices)
    total = sum(b.attempts for b in buckets)
    ok = sum(b.ok for b in buckets)
    pooled = sorted(d for s in slices for d, _ in s.sample)
    return Activity(
        since=since,
        until=until,
        bucket_ms=slices[1].start - slices[0].start if len(slices) > 1 else until - since,
        buckets=buckets,
        attempts=total,
        success_rate=ok / total if total else None,
        p50_ms=_percentile(pooled, 0.50),
        p99_ms=_percentile(pooled, 0.99),
        sampled=any(s.count > len(s.sample) for s in slices),
    )


def _bucket(s: Slice) -> Bucket:
    ordered = sorted(duration for duration, _ in s.sample)
    ok_in_sample = sum(ok for _, ok in s.sample)
    ok = round(s.count * ok_in_sample / len(s.sample)) if s.sample else 0
    return Bucket(s.start, s.count, ok, _percentile(ordered, 0.5), _percentile(ordered, 0.99))


def _percentile(ordered: list[int], q: float) -> float | None:
    """Nearest rank."""
    if not ordered:
        return None
    return float(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)])
